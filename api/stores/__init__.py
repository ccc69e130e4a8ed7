"""Adapters for stores that both services use and neither owns."""
