"""Commerce: admin."""
