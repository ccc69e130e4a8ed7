"""Aggregates over orders for chefs, couriers and admins (SQL only; no writes)."""

from __future__ import annotations

import uuid

import asyncpg

from api.commerce.ids import user_uuid
from api.commerce.reports import schemas as s
from api.commerce.rows import many
from api.problems import Problem
from api.resources import Resources

_PERIODS = """
    count(*) FILTER (WHERE {t} >= date_trunc('day', now())) AS today_n,
    coalesce(sum({m}) FILTER (WHERE {t} >= date_trunc('day', now())), 0) AS today_c,
    count(*) FILTER (WHERE {t} >= now() - interval '7 days') AS d7_n,
    coalesce(sum({m}) FILTER (WHERE {t} >= now() - interval '7 days'), 0) AS d7_c,
    count(*) FILTER (WHERE {t} >= now() - interval '30 days') AS d30_n,
    coalesce(sum({m}) FILTER (WHERE {t} >= now() - interval '30 days'), 0) AS d30_c,
    count(*) AS all_n, coalesce(sum({m}), 0) AS all_c
"""


def _period(row: asyncpg.Record, prefix: str) -> s.PeriodEarnings:
    return s.PeriodEarnings(orders=int(row[f"{prefix}_n"]),
                            earnings_cents=int(row[f"{prefix}_c"]))


class ReportService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def _chef_id(self, user_id: str) -> uuid.UUID:
        chef_id = await self.db.fetchval("SELECT id FROM chef_profiles WHERE user_id = $1",
                                         user_uuid(user_id))
        if chef_id is None:
            raise Problem(409, "no chef profile yet", code="chef_profile_missing")
        return uuid.UUID(str(chef_id))

    async def chef_earnings(self, user_id: str) -> s.ChefEarnings:
        chef_id = await self._chef_id(user_id)
        row = await self.db.fetchrow(
            f"SELECT {_PERIODS.format(t='delivered_at', m='subtotal_cents')} FROM orders "
            "WHERE chef_id = $1 AND status = 'delivered'", chef_id)
        pending = await self.db.fetchval(
            """SELECT coalesce(sum(subtotal_cents), 0) FROM orders WHERE chef_id = $1
               AND payment_status = 'paid' AND status NOT IN ('delivered', 'cancelled')""",
            chef_id)
        assert row is not None
        return s.ChefEarnings(today=_period(row, "today"), last_7_days=_period(row, "d7"),
                              last_30_days=_period(row, "d30"), all_time=_period(row, "all"),
                              pending_cents=int(pending))

    async def chef_analytics(self, user_id: str) -> s.ChefAnalytics:
        chef_id = await self._chef_id(user_id)
        by_status = await self.db.fetch(
            "SELECT status, count(*) AS n FROM orders WHERE chef_id = $1 "
            "AND payment_status <> 'unpaid' GROUP BY status", chef_id)
        chef = await self.db.fetchrow(
            "SELECT rating, total_reviews FROM chef_profiles WHERE id = $1", chef_id)
        avg = await self.db.fetchval(
            "SELECT coalesce(round(avg(subtotal_cents)), 0)::bigint FROM orders "
            "WHERE chef_id = $1 AND status = 'delivered'", chef_id)
        top = await self.db.fetch(
            """SELECT oi.menu_item_id::text AS menu_item_id, min(oi.name) AS name,
                      sum(oi.quantity)::int AS quantity,
                      sum(oi.subtotal_cents)::bigint AS revenue_cents
               FROM order_items oi JOIN orders o ON o.id = oi.order_id
               WHERE o.chef_id = $1 AND o.status = 'delivered'
               GROUP BY oi.menu_item_id ORDER BY quantity DESC, name LIMIT 5""", chef_id)
        daily = await self.db.fetch(
            """SELECT (delivered_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS orders,
                      sum(subtotal_cents)::bigint AS amount_cents
               FROM orders WHERE chef_id = $1 AND status = 'delivered'
                 AND delivered_at >= now() - interval '30 days'
               GROUP BY 1 ORDER BY 1""", chef_id)
        assert chef is not None
        return s.ChefAnalytics(
            orders_by_status={r["status"]: int(r["n"]) for r in by_status},
            rating=chef["rating"], total_reviews=chef["total_reviews"],
            average_order_cents=int(avg), top_items=many(s.TopItem, top),
            daily=many(s.DayPoint, daily))

    async def delivery_earnings(self, user_id: str) -> s.DeliveryEarnings:
        row = await self.db.fetchrow(
            f"""SELECT {_PERIODS.format(t='delivered_at', m='delivery_fee_cents + tip_cents')},
                       coalesce(sum(tip_cents), 0) AS tips
                FROM orders WHERE delivery_id = $1 AND status = 'delivered'""", user_id)
        assert row is not None
        return s.DeliveryEarnings(today=_period(row, "today"), last_7_days=_period(row, "d7"),
                                  last_30_days=_period(row, "d30"),
                                  all_time=_period(row, "all"), tips_cents=int(row["tips"]))

    async def admin_dashboard(self) -> s.AdminDashboard:
        row = await self.db.fetchrow(
            """SELECT
                 (SELECT count(*) FROM orders) AS orders_total,
                 (SELECT count(*) FROM orders WHERE created_at >= date_trunc('day', now()))
                     AS orders_today,
                 (SELECT count(*) FROM orders WHERE payment_status = 'paid' AND status IN
                     ('accepted', 'preparing', 'ready', 'picked_up', 'delivering'))
                     AS orders_in_progress,
                 (SELECT coalesce(sum(total_cents), 0) FROM orders
                     WHERE payment_status = 'paid') AS gmv_cents,
                 (SELECT coalesce(sum(total_cents), 0) FROM orders
                     WHERE payment_status = 'paid' AND created_at >= date_trunc('day', now()))
                     AS gmv_today_cents,
                 (SELECT count(*) FROM users) AS users_total,
                 (SELECT count(*) FROM chef_profiles WHERE status = 'approved' AND is_online)
                     AS active_chefs,
                 (SELECT count(*) FROM chef_profiles WHERE status = 'pending') AS pending_chefs,
                 (SELECT count(DISTINCT delivery_id) FROM orders WHERE delivery_id IS NOT NULL
                     AND updated_at >= now() - interval '24 hours') AS active_couriers""")
        assert row is not None
        return s.AdminDashboard(**{k: int(v) for k, v in dict(row).items()})

    async def admin_analytics(self) -> s.AdminAnalytics:
        by_status = await self.db.fetch("SELECT status, count(*) AS n FROM orders GROUP BY 1")
        by_role = await self.db.fetch("SELECT role, count(*) AS n FROM users GROUP BY 1")
        daily = await self.db.fetch(
            """SELECT (created_at AT TIME ZONE 'UTC')::date AS day, count(*)::int AS orders,
                      sum(total_cents)::bigint AS amount_cents
               FROM orders WHERE payment_status = 'paid'
                 AND created_at >= now() - interval '30 days'
               GROUP BY 1 ORDER BY 1""")
        avg = await self.db.fetchval(
            "SELECT coalesce(round(avg(total_cents)), 0)::bigint FROM orders "
            "WHERE payment_status = 'paid'")
        return s.AdminAnalytics(
            orders_by_status={r["status"]: int(r["n"]) for r in by_status},
            users_by_role={r["role"]: int(r["n"]) for r in by_role},
            daily=many(s.DayPoint, daily), average_order_cents=int(avg))
