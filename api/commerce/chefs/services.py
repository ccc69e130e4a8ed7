"""Chef profiles: onboarding, availability, verification, public browse, index state."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from api.commerce.chefs import schemas as s
from api.commerce.chefs.hours import OperatingHours
from api.commerce.chefs.index import ChefIndexState
from api.commerce.context import Commerce
from api.commerce.ids import user_uuid
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import one, page_of
from api.problems import Problem
from api.resources import Resources

CHEF_COLS = (
    "id, user_id, business_name, description, cuisines, specialties, profile_image, "
    "banner_image, status, rating, total_reviews, total_orders, is_online, accepting_orders, "
    "service_radius, latitude, longitude, address, "
    "operating_hours::text AS operating_hours, timezone, delivery_fee_cents, "
    "minimum_order_cents, prep_time_minutes, price_range, "
    "(status = 'approved') AS verified, verified_at, created_at, updated_at"
)
_hours_decoder = msgspec.json.Decoder(OperatingHours)


def chef_from_row(row: asyncpg.Record | dict[str, Any]) -> s.ChefProfile:
    d: dict[str, Any] = dict(row)
    d["operating_hours"] = msgspec.to_builtins(_hours_decoder.decode(d["operating_hours"]))
    return one(s.ChefProfile, d)


def known_timezone(name: str) -> bool:
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return False
    return True


def _like(term: str) -> str:
    return "%" + term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


async def chef_index_state(conn: asyncpg.Connection | asyncpg.Pool,
                           chef_id: uuid.UUID) -> ChefIndexState | None:
    """The chef as the shared H3 index needs it (None when there is no such chef)."""
    row = await conn.fetchrow(
        """SELECT id, latitude, longitude, service_radius, operating_hours::text AS hours,
                  timezone,
                  (status = 'approved' AND is_online AND accepting_orders) AS indexable
           FROM chef_profiles WHERE id = $1""", chef_id)
    return None if row is None else _index_state(row)


def _index_state(row: asyncpg.Record) -> ChefIndexState:
    return ChefIndexState(
        chef_id=str(row["id"]), indexable=row["indexable"], latitude=row["latitude"],
        longitude=row["longitude"], service_radius_km=row["service_radius"],
        operating_hours=_hours_decoder.decode(row["hours"]), timezone=row["timezone"])


async def chef_index_snapshot(db: asyncpg.Pool) -> list[ChefIndexState]:
    """Every indexable chef (to rebuild the index at start-up)."""
    rows = await db.fetch(
        """SELECT id, latitude, longitude, service_radius, operating_hours::text AS hours,
                  timezone, true AS indexable
           FROM chef_profiles
           WHERE status = 'approved' AND is_online AND accepting_orders""")
    return [_index_state(r) for r in rows]


class ChefService:
    def __init__(self, resources: Resources, commerce: Commerce) -> None:
        self.db = resources.db
        self.commerce = commerce

    async def _notify_index(self, chef_id: uuid.UUID) -> None:
        if self.commerce.chef_index_hooks:
            await self.commerce.chef_changed(await chef_index_state(self.db, chef_id))

    async def own(self, user_id: str) -> s.ChefProfile:
        row = await self.db.fetchrow(
            f"SELECT {CHEF_COLS} FROM chef_profiles WHERE user_id = $1", user_uuid(user_id))
        if row is None:
            raise Problem(404, "no chef profile yet: PUT /chef/profile to onboard",
                          code="chef_profile_missing")
        return chef_from_row(row)

    async def own_id(self, user_id: str) -> uuid.UUID:
        chef_id = await self.db.fetchval(
            "SELECT id FROM chef_profiles WHERE user_id = $1", user_uuid(user_id))
        if chef_id is None:
            raise Problem(409, "no chef profile yet: PUT /chef/profile to onboard",
                          code="chef_profile_missing")
        return uuid.UUID(str(chef_id))

    async def upsert(self, user_id: str, req: s.ChefProfileWrite) -> s.ChefProfile:
        """Create the profile (status pending) or update it (status unchanged)."""
        if not known_timezone(req.timezone):
            raise Problem(422, f"unknown time zone {req.timezone!r}", code="invalid_timezone")
        row = await self.db.fetchrow(
            f"""INSERT INTO chef_profiles (user_id, business_name, description, cuisines,
                    specialties, profile_image, banner_image, latitude, longitude,
                    service_radius, delivery_fee_cents, minimum_order_cents,
                    prep_time_minutes, operating_hours, timezone, price_range, address)
                VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,$11,$12,$13,$14::jsonb,$15,$16,$17)
                ON CONFLICT (user_id) DO UPDATE SET
                    business_name = EXCLUDED.business_name,
                    description = EXCLUDED.description, cuisines = EXCLUDED.cuisines,
                    specialties = EXCLUDED.specialties,
                    profile_image = EXCLUDED.profile_image,
                    banner_image = EXCLUDED.banner_image, latitude = EXCLUDED.latitude,
                    longitude = EXCLUDED.longitude, service_radius = EXCLUDED.service_radius,
                    delivery_fee_cents = EXCLUDED.delivery_fee_cents,
                    minimum_order_cents = EXCLUDED.minimum_order_cents,
                    prep_time_minutes = EXCLUDED.prep_time_minutes,
                    operating_hours = EXCLUDED.operating_hours,
                    timezone = EXCLUDED.timezone, price_range = EXCLUDED.price_range,
                    address = EXCLUDED.address, updated_at = now()
                RETURNING {CHEF_COLS}""",
            user_uuid(user_id), req.business_name, req.description, req.cuisines,
            req.specialties, req.profile_image, req.banner_image, req.latitude, req.longitude,
            req.service_radius, req.delivery_fee_cents, req.minimum_order_cents,
            req.prep_time_minutes, msgspec.json.encode(req.operating_hours).decode(),
            req.timezone, req.price_range, req.address)
        assert row is not None
        chef = chef_from_row(row)
        await self._notify_index(chef.id)
        return chef

    async def update_by_admin(self, chef_id: uuid.UUID,
                              req: s.ChefProfileWrite) -> s.ChefProfile:
        user_id = await self.db.fetchval("SELECT user_id FROM chef_profiles WHERE id = $1",
                                         chef_id)
        if user_id is None:
            raise Problem(404, "chef not found", code="not_found")
        return await self.upsert(str(user_id), req)

    async def set_availability(self, user_id: str, req: s.AvailabilityUpdate) -> s.ChefProfile:
        row = await self.db.fetchrow(
            f"""UPDATE chef_profiles SET is_online = coalesce($2, is_online),
                    accepting_orders = coalesce($3, accepting_orders), updated_at = now()
                WHERE user_id = $1 RETURNING {CHEF_COLS}""",
            user_uuid(user_id), req.is_online, req.accepting_orders)
        if row is None:
            raise Problem(409, "no chef profile yet: PUT /chef/profile to onboard",
                          code="chef_profile_missing")
        chef = chef_from_row(row)
        await self._notify_index(chef.id)
        return chef

    async def verify(self, chef_id: uuid.UUID, status: str) -> s.ChefProfile:
        row = await self.db.fetchrow(
            f"""UPDATE chef_profiles SET status = $2,
                    verified_at = CASE WHEN $2 = 'approved' THEN now() ELSE verified_at END,
                    is_online = CASE WHEN $2 = 'approved' THEN is_online ELSE false END,
                    updated_at = now()
                WHERE id = $1 RETURNING {CHEF_COLS}""", chef_id, status)
        if row is None:
            raise Problem(404, "chef not found", code="not_found")
        chef = chef_from_row(row)
        await self._notify_index(chef.id)
        return chef

    # -- public browse ---------------------------------------------------------------------
    async def browse(self, q: PageQuery, *, cuisine: str | None, search: str | None,
                     min_rating: float | None, sort: s.ChefSort | None,
                     status: str | None = "approved") -> Page[s.ChefProfile]:
        order = {"rating": "rating DESC, total_reviews DESC",
                 "orders": "total_orders DESC", "newest": "created_at DESC"}.get(
                     sort or "", "created_at DESC")
        rows = await self.db.fetch(
            f"""SELECT {CHEF_COLS}, count(*) OVER () AS total FROM chef_profiles
                WHERE ($1::text IS NULL OR status = $1)
                  AND ($2::text IS NULL OR EXISTS (
                        SELECT 1 FROM unnest(cuisines) c WHERE lower(c) = lower($2)))
                  AND ($3::text IS NULL OR business_name ILIKE $3 OR description ILIKE $3)
                  AND ($4::float8 IS NULL OR rating >= $4)
                ORDER BY {order}, id LIMIT $5 OFFSET $6""",
            status, cuisine, _like(search) if search else None, min_rating, q.limit, q.offset)
        total = int(rows[0]["total"]) if rows else 0
        return Page(data=[chef_from_row(r) for r in rows], total=total, page=q.page,
                    limit=q.limit)

    async def nearby(self, lat: float, lng: float, candidates: list[tuple[str, float]],
                     q: PageQuery, *, now: datetime) -> Page[s.ChefProfile]:
        """Of the index's candidates (chef id, distance m, nearest first), the approved,
        online, accepting chefs whose own service radius covers the point and who are open
        now by their operating hours."""
        if not candidates:
            return Page(data=[], total=0, page=q.page, limit=q.limit)
        dist_of = dict(candidates)
        rows = await self.db.fetch(
            f"""SELECT {CHEF_COLS} FROM chef_profiles
                WHERE id = ANY($1::uuid[]) AND status = 'approved' AND is_online
                  AND accepting_orders""", [uuid.UUID(c) for c, _ in candidates])
        from zoneinfo import ZoneInfo

        from api.commerce.chefs.hours import is_open

        fits = []
        for row in rows:
            dist_m = dist_of[str(row["id"])]
            if dist_m > row["service_radius"] * 1000.0:
                continue
            hours = _hours_decoder.decode(row["operating_hours"])
            if not is_open(hours, now.astimezone(ZoneInfo(row["timezone"]))):
                continue
            fits.append((dist_m, str(row["id"]), row))
        fits.sort(key=lambda f: (f[0], f[1]))
        chosen = fits[q.offset:q.offset + q.limit]
        return Page(data=[chef_from_row(r) for _, _, r in chosen], total=len(fits),
                    page=q.page, limit=q.limit)

    async def public(self, chef_id: uuid.UUID) -> s.ChefProfile:
        row = await self.db.fetchrow(
            f"SELECT {CHEF_COLS} FROM chef_profiles WHERE id = $1 AND status = 'approved'",
            chef_id)
        if row is None:
            raise Problem(404, "chef not found", code="not_found")
        return chef_from_row(row)


__all__ = ["CHEF_COLS", "ChefService", "chef_from_row", "chef_index_snapshot",
           "chef_index_state", "page_of"]
