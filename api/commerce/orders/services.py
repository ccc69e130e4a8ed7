"""Orders: creation (pricing, rules, promo, idempotency), reading, chef status changes and
customer cancellation. Every state change goes through ``lifecycle.apply_transition``."""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import msgspec

from api.commerce.chefs.hours import OperatingHours, is_open, local_time
from api.commerce.context import Commerce
from api.commerce.ids import user_uuid
from api.commerce.orders import lifecycle, state
from api.commerce.orders import schemas as s
from api.commerce.orders.pricing import (
    PromoRejected,
    PromoRule,
    price_order,
    promo_discount,
)
from api.commerce.orders.schedule import SlotRefused, plan_slot
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import many, one
from api.problems import Problem
from api.resources import Resources
from dispatch.promise import ready_at
from geo.distance import haversine_m
from streams.catalog import Names

ORDER_COLS = ", ".join(f for f in s.Order.__struct_fields__ if f != "items")
_hours_decoder = msgspec.json.Decoder(OperatingHours)


def _unprocessable(detail: str, code: str) -> Problem:
    return Problem(422, detail, code=code)


def _order_number() -> str:
    return f"HC{time.time_ns() // 1_000_000}{secrets.randbelow(10**4):04d}"


def _request_hash(req: s.OrderCreate) -> str:
    return hashlib.sha256(msgspec.json.encode(req)).hexdigest()


async def load_order(conn: asyncpg.Connection | asyncpg.Pool, order_id: uuid.UUID,
                     where: str = "TRUE", *args: Any) -> s.Order | None:
    row = await conn.fetchrow(
        f"SELECT {ORDER_COLS} FROM orders WHERE id = $1 AND ({where})", order_id, *args)
    if row is None:
        return None
    items = await conn.fetch(
        """SELECT id, menu_item_id, name, price_cents, quantity, subtotal_cents, notes
           FROM order_items WHERE order_id = $1 ORDER BY created_at, id""", order_id)
    return one(s.Order, {**dict(row), "items": many(s.OrderItem, items)})


class OrderService:
    def __init__(self, resources: Resources, commerce: Commerce) -> None:
        self.db = resources.db
        self.commerce = commerce
        self.names = Names(resources.settings.server.namespace)

    # -- create ----------------------------------------------------------------------------
    async def create(self, customer_id: str, req: s.OrderCreate,
                     idempotency_key: str | None) -> tuple[s.Order, bool]:
        """The order and whether it was created now (False: an Idempotency-Key replay)."""
        cid = user_uuid(customer_id)
        request_hash = _request_hash(req)
        async with self.db.acquire() as conn, conn.transaction():
            if idempotency_key:
                # Concurrent duplicates queue here; the loser then finds the winner's order.
                await conn.execute("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))",
                                   f"order:{customer_id}:{idempotency_key}")
                prior = await conn.fetchrow(
                    "SELECT id, request_hash FROM orders "
                    "WHERE customer_id = $1 AND idempotency_key = $2", cid, idempotency_key)
                if prior is not None:
                    if prior["request_hash"] != request_hash:
                        raise Problem(422, "this Idempotency-Key was used for another request",
                                      code="idempotency_key_reused")
                    order = await load_order(conn, prior["id"])
                    assert order is not None
                    return order, False
            order = await self._insert(conn, cid, req, idempotency_key, request_hash)
            return order, True

    async def _insert(self, conn: asyncpg.Connection, cid: uuid.UUID, req: s.OrderCreate,
                      idempotency_key: str | None, request_hash: str) -> s.Order:
        now = datetime.now(UTC)
        address = await conn.fetchrow(
            "SELECT * FROM addresses WHERE id = $1 AND user_id = $2",
            req.delivery_address_id, cid)
        if address is None:
            raise _unprocessable("delivery address not found", "address_not_found")

        lines = list(req.items)
        chef_id = req.chef_id
        from_cart = not lines
        if from_cart:
            cart = await conn.fetch(
                """SELECT ci.menu_item_id, ci.quantity, ci.notes, c.chef_id
                   FROM cart_items ci JOIN carts c USING (user_id)
                   WHERE ci.user_id = $1 ORDER BY ci.created_at""", cid)
            if not cart:
                raise _unprocessable("no items given and the cart is empty", "empty_order")
            chef_id = cart[0]["chef_id"]
            lines = [s.OrderItemRequest(menu_item_id=r["menu_item_id"], quantity=r["quantity"],
                                        notes=r["notes"]) for r in cart]
        if chef_id is None:
            raise _unprocessable("chef_id is required with items", "chef_required")

        chef = await conn.fetchrow(
            """SELECT id, status, is_online, accepting_orders, latitude, longitude,
                      service_radius, operating_hours::text AS hours, timezone,
                      delivery_fee_cents, minimum_order_cents, prep_time_minutes
               FROM chef_profiles WHERE id = $1 FOR SHARE""", chef_id)
        if chef is None or chef["status"] != "approved":
            raise _unprocessable("chef is not approved", "chef_unavailable")
        hours = _hours_decoder.decode(chef["hours"])
        slot = req.scheduled_for
        if slot is None:  # as soon as possible: the kitchen must be taking orders now
            if not (chef["is_online"] and chef["accepting_orders"]):
                raise _unprocessable("chef is not accepting orders", "chef_unavailable")
            if not is_open(hours, local_time(now, chef["timezone"])):
                raise _unprocessable("chef is closed at that time", "chef_closed")
        elif slot.tzinfo is None:
            raise _unprocessable("scheduled_for needs a time zone", "invalid_schedule")

        menu = {r["id"]: r for r in await conn.fetch(
            """SELECT id, chef_id, name, price_cents, is_available, prep_time FROM menu_items
               WHERE id = ANY($1::uuid[]) AND deleted_at IS NULL""",
            [line.menu_item_id for line in lines])}
        subtotal = 0
        prep = chef["prep_time_minutes"]
        for line in lines:
            item = menu.get(line.menu_item_id)
            if item is None or item["chef_id"] != chef["id"]:
                raise _unprocessable(f"menu item {line.menu_item_id} is not on this chef's menu",
                                     "item_not_on_menu")
            if not item["is_available"]:
                raise _unprocessable(f"{item['name']} is not available", "item_unavailable")
            subtotal += item["price_cents"] * line.quantity
            prep = max(prep, item["prep_time"])

        distance_m = haversine_m(chef["latitude"], chef["longitude"], address["latitude"],
                                 address["longitude"])
        if distance_m > chef["service_radius"] * 1000:
            raise _unprocessable("the address is outside the chef's service radius",
                                 "outside_service_radius")
        if subtotal < chef["minimum_order_cents"]:
            raise _unprocessable(
                f"subtotal {subtotal} is below the chef's minimum order of "
                f"{chef['minimum_order_cents']} cents", "below_minimum_order")

        discount, promo_id = 0, None
        if req.promo_code:
            discount, promo_id = await self._promo(conn, cid, req.promo_code, subtotal, now)

        price = price_order(subtotal_cents=subtotal,
                            base_delivery_fee_cents=chef["delivery_fee_cents"],
                            distance_m=distance_m, discount_cents=discount,
                            tip_cents=req.tip_cents)
        chef_at = (chef["latitude"], chef["longitude"])
        door = (address["latitude"], address["longitude"])
        start_cooking = None
        if slot is None:
            est_ready = ready_at(now, prep)
            est_delivery = self.commerce.promise(est_ready, chef_at, door, distance_m)
        else:  # the slot is the delivery time: cook so the food leaves in time for it
            to_door = self.commerce.promise(now, chef_at, door, distance_m) - now
            plan = plan_slot(slot=slot.astimezone(UTC), now=now, prep_min=prep, to_door=to_door,
                             hours=hours, timezone=chef["timezone"], max_ahead=timedelta(
                                 days=self.commerce.config.schedule_max_ahead_days))
            if isinstance(plan, SlotRefused):
                raise Problem(422, plan.detail, code=plan.code, extra={
                    "earliest": plan.earliest.isoformat()} if plan.earliest else None)
            est_ready, est_delivery, start_cooking = plan.ready, plan.deliver, plan.start_cooking
        address_text = ", ".join(p for p in (address["line1"], address["line2"],
                                             address["city"], address["state"],
                                             address["postal_code"], address["country"]) if p)
        row = await conn.fetchrow(
            f"""INSERT INTO orders (order_number, customer_id, chef_id, delivery_address_id,
                   delivery_lat, delivery_lng, delivery_address, pickup_lat, pickup_lng,
                   distance_m, subtotal_cents, delivery_fee_cents, service_fee_cents,
                   tax_cents, discount_cents, tip_cents, total_cents, promo_code, instructions,
                   prep_time_minutes, scheduled_for, estimated_ready, estimated_delivery,
                   payment_method, idempotency_key, request_hash, start_cooking_at)
               VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14,$15,$16,$17,$18,$19,
                       $20,$21,$22,$23,$24,$25,$26,$27)
               RETURNING {ORDER_COLS}""",
            _order_number(), cid, chef["id"], address["id"], address["latitude"],
            address["longitude"], address_text, chef["latitude"], chef["longitude"],
            round(distance_m), price.subtotal_cents, price.delivery_fee_cents,
            price.service_fee_cents, price.tax_cents, price.discount_cents, price.tip_cents,
            price.total_cents, req.promo_code.upper(), req.instructions, prep,
            slot, est_ready, est_delivery, req.payment_method, idempotency_key,
            request_hash, start_cooking)
        assert row is not None
        order_id = row["id"]
        # Line ids are made here so the answer needs no read-back (fewer round trips).
        items = [s.OrderItem(id=uuid.uuid4(), menu_item_id=line.menu_item_id,
                             name=menu[line.menu_item_id]["name"],
                             price_cents=menu[line.menu_item_id]["price_cents"],
                             quantity=line.quantity,
                             subtotal_cents=menu[line.menu_item_id]["price_cents"] * line.quantity,
                             notes=line.notes) for line in lines]
        await conn.executemany(  # created_at one µs apart keeps the lines in request order
            """INSERT INTO order_items (id, order_id, menu_item_id, name, price_cents, quantity,
                   subtotal_cents, notes, created_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)""",
            [(i.id, order_id, i.menu_item_id, i.name, i.price_cents, i.quantity,
              i.subtotal_cents, i.notes, now + timedelta(microseconds=n))
             for n, i in enumerate(items)])
        if promo_id is not None:
            await conn.execute(
                "INSERT INTO promo_redemptions (promo_id, customer_id, order_id) "
                "VALUES ($1, $2, $3)", promo_id, cid, order_id)
        if from_cart:
            await conn.execute("DELETE FROM carts WHERE user_id = $1", cid)
        return one(s.Order, {**dict(row), "items": items})

    async def _promo(self, conn: asyncpg.Connection, cid: uuid.UUID, code: str,
                     subtotal: int, now: datetime) -> tuple[int, uuid.UUID]:
        row = await conn.fetchrow(
            "SELECT * FROM promo_codes WHERE upper(code) = upper($1) FOR UPDATE", code)
        if row is None:
            raise _unprocessable("unknown promo code", "promo_invalid")
        used = await conn.fetchval(
            "SELECT 1 FROM promo_redemptions WHERE promo_id = $1 AND customer_id = $2",
            row["id"], cid)
        rule = msgspec.convert(dict(row), PromoRule)
        result = promo_discount(rule, subtotal_cents=subtotal, now=now,
                                used_by_customer=bool(used))
        if isinstance(result, PromoRejected):
            raise _unprocessable(result.reason, "promo_invalid")
        await conn.execute("UPDATE promo_codes SET uses = uses + 1 WHERE id = $1", row["id"])
        return result, row["id"]

    # -- read ------------------------------------------------------------------------------
    async def _page(self, where: str, args: list[Any], q: PageQuery,
                    status: str | None) -> Page[s.Order]:
        n = len(args)
        rows = await self.db.fetch(
            f"""SELECT {ORDER_COLS}, count(*) OVER () AS total FROM orders
                WHERE {where} AND (${n + 1}::text IS NULL OR status = ${n + 1})
                ORDER BY created_at DESC, id LIMIT ${n + 2} OFFSET ${n + 3}""",
            *args, status, q.limit, q.offset)
        ids = [r["id"] for r in rows]
        items: dict[uuid.UUID, list[s.OrderItem]] = {i: [] for i in ids}
        for it in await self.db.fetch(
                """SELECT order_id, id, menu_item_id, name, price_cents, quantity,
                          subtotal_cents, notes FROM order_items
                   WHERE order_id = ANY($1::uuid[]) ORDER BY created_at, id""", ids):
            items[it["order_id"]].append(one(s.OrderItem, it))
        data = [one(s.Order, {**dict(r), "items": items[r["id"]]}) for r in rows]
        return Page(data=data, total=int(rows[0]["total"]) if rows else 0, page=q.page,
                    limit=q.limit)

    async def of_customer(self, customer_id: str, q: PageQuery,
                          status: str | None) -> Page[s.Order]:
        return await self._page("customer_id = $1", [user_uuid(customer_id)], q, status)

    async def of_chef(self, chef_user_id: str, q: PageQuery,
                      status: str | None) -> Page[s.Order]:
        """Paid orders only: an unpaid order has not reached the chef."""
        return await self._page(
            "chef_id = (SELECT id FROM chef_profiles WHERE user_id = $1) "
            "AND payment_status <> 'unpaid'", [user_uuid(chef_user_id)], q, status)

    async def all(self, q: PageQuery, status: str | None) -> Page[s.Order]:
        return await self._page("TRUE", [], q, status)

    async def get_for_customer(self, customer_id: str, order_id: uuid.UUID) -> s.Order:
        order = await load_order(self.db, order_id, "customer_id = $2", user_uuid(customer_id))
        if order is None:
            raise Problem(404, "order not found", code="not_found")
        return order

    async def get_for_chef(self, chef_user_id: str, order_id: uuid.UUID) -> s.Order:
        order = await load_order(
            self.db, order_id, "payment_status <> 'unpaid' AND chef_id = "
            "(SELECT id FROM chef_profiles WHERE user_id = $2)", user_uuid(chef_user_id))
        if order is None:
            raise Problem(404, "order not found", code="not_found")
        return order

    async def get_any(self, order_id: uuid.UUID) -> s.Order:
        order = await load_order(self.db, order_id)
        if order is None:
            raise Problem(404, "order not found", code="not_found")
        return order

    # -- state changes ---------------------------------------------------------------------
    async def chef_set_status(self, chef_user_id: str, order_id: uuid.UUID,
                              req: s.StatusUpdate) -> s.Order:
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                """SELECT * FROM orders WHERE id = $1 AND payment_status <> 'unpaid'
                     AND chef_id = (SELECT id FROM chef_profiles WHERE user_id = $2)
                   FOR UPDATE""", order_id, user_uuid(chef_user_id))
            if row is None:
                raise Problem(404, "order not found", code="not_found")
            if req.status not in state.CHEF_TARGETS:
                raise Problem(409, f"a chef cannot set an order to {req.status}",
                              code="invalid_transition", extra={"current_status": row["status"]})
            await lifecycle.apply_transition(conn, self.commerce, self.names, row, req.status,
                                             reason=req.reason or "cancelled by the chef")
            order = await load_order(conn, order_id)
        self.commerce.committed()
        assert order is not None
        return order

    async def customer_cancel(self, customer_id: str, order_id: uuid.UUID,
                              reason: str) -> s.Order:
        async with self.db.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT * FROM orders WHERE id = $1 AND customer_id = $2 FOR UPDATE",
                order_id, user_uuid(customer_id))
            if row is None:
                raise Problem(404, "order not found", code="not_found")
            if row["status"] not in state.CUSTOMER_CANCELLABLE:
                raise Problem(409, f"an order that is {row['status']} can no longer be "
                              "cancelled", code="invalid_transition",
                              extra={"current_status": row["status"]})
            await lifecycle.apply_transition(conn, self.commerce, self.names, row, "cancelled",
                                             reason=reason or "cancelled by the customer")
            order = await load_order(conn, order_id)
        self.commerce.committed()
        assert order is not None
        return order
