"""Pure geo core: distances, travel-time model, H3 indexing helpers, nearby search, zones.

Nothing in this package performs I/O; adapters (Redis, HTTP) live elsewhere and call in.
"""
