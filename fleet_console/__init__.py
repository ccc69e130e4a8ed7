"""fleet_console package."""
