"""Fleet: nearby couriers and the fleet console (its reads and static shell)."""
