"""Commerce domains (accounts, chefs, menus, cart, orders, payments, reviews, admin)."""

from __future__ import annotations

from api.observability import Metrics
from api.parts import Parts
from api.settings import Settings


def commerce_parts(settings: Settings, metrics: Metrics) -> Parts:
    """Everything commerce serves and runs besides /health and /metrics."""
    return Parts()
