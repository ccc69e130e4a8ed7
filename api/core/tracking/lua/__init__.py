"""Lua scripts of the orders view (`api.core.tracking.orders_view`), shipped as package data."""
