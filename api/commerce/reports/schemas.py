"""Wire shapes of earnings, analytics and dashboards (money in cents)."""

from __future__ import annotations

from datetime import date

import msgspec


class PeriodEarnings(msgspec.Struct, frozen=True, kw_only=True):
    orders: int
    earnings_cents: int


class ChefEarnings(msgspec.Struct, frozen=True, kw_only=True):
    """A chef earns the food subtotal of delivered orders (fees and tax are the platform's)."""

    today: PeriodEarnings
    last_7_days: PeriodEarnings
    last_30_days: PeriodEarnings
    all_time: PeriodEarnings
    pending_cents: int
    """Subtotal of paid orders not yet delivered."""


class DayPoint(msgspec.Struct, frozen=True, kw_only=True):
    day: date
    orders: int
    amount_cents: int


class TopItem(msgspec.Struct, frozen=True, kw_only=True):
    menu_item_id: str
    name: str
    quantity: int
    revenue_cents: int


class ChefAnalytics(msgspec.Struct, frozen=True, kw_only=True):
    orders_by_status: dict[str, int]
    rating: float
    total_reviews: int
    average_order_cents: int
    top_items: list[TopItem]
    daily: list[DayPoint]
    """Last 30 days of delivered orders."""


class DeliveryEarnings(msgspec.Struct, frozen=True, kw_only=True):
    """A courier earns the delivery fee plus the tip of each delivered order."""

    today: PeriodEarnings
    last_7_days: PeriodEarnings
    last_30_days: PeriodEarnings
    all_time: PeriodEarnings
    tips_cents: int


class AdminDashboard(msgspec.Struct, frozen=True, kw_only=True):
    orders_total: int
    orders_today: int
    orders_in_progress: int
    gmv_cents: int
    """Total of paid orders, refunds excluded."""
    gmv_today_cents: int
    users_total: int
    active_chefs: int
    """Approved chefs online now."""
    pending_chefs: int
    active_couriers: int
    """Couriers with an order in the last 24 hours."""


class AdminAnalytics(msgspec.Struct, frozen=True, kw_only=True):
    orders_by_status: dict[str, int]
    users_by_role: dict[str, int]
    daily: list[DayPoint]
    """Last 30 days: paid orders and GMV."""
    average_order_cents: int
