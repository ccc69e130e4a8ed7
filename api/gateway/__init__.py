"""The single entry point: one port in front of core and commerce (docs/gateway.md)."""
