"""Commerce: earnings, analytics and dashboards (read-only aggregates)."""
