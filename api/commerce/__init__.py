"""Commerce domains (accounts, chefs, menus, cart, orders, payments, reviews, admin)."""

from __future__ import annotations

from api.parts import Parts


def commerce_parts() -> Parts:
    """Everything commerce serves and runs besides /health and /metrics."""
    return Parts()
