"""The delivery partner's profile (availability and tasks are core's)."""

from __future__ import annotations

from api.commerce.delivery import schemas as s
from api.commerce.ids import user_uuid
from api.commerce.rows import one
from api.resources import Resources

_COLS = """p.id, p.user_id, p.vehicle_type, p.license_number, p.rating, p.created_at,
    p.updated_at, (SELECT count(*) FROM orders o WHERE o.delivery_id = p.user_id::text
                   AND o.status = 'delivered')::int AS total_deliveries"""


class DeliveryService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def profile(self, user_id: str) -> s.DeliveryProfile:
        uid = user_uuid(user_id)
        await self.db.execute(
            "INSERT INTO delivery_partners (user_id) VALUES ($1) ON CONFLICT DO NOTHING", uid)
        row = await self.db.fetchrow(
            f"SELECT {_COLS} FROM delivery_partners p WHERE p.user_id = $1", uid)
        assert row is not None
        return one(s.DeliveryProfile, row)

    async def update(self, user_id: str, req: s.DeliveryProfileUpdate) -> s.DeliveryProfile:
        uid = user_uuid(user_id)
        await self.db.execute(
            """INSERT INTO delivery_partners (user_id, vehicle_type, license_number)
               VALUES ($1, coalesce($2, 'bike'), coalesce($3, ''))
               ON CONFLICT (user_id) DO UPDATE SET
                   vehicle_type = coalesce($2, delivery_partners.vehicle_type),
                   license_number = coalesce($3, delivery_partners.license_number),
                   updated_at = now()""", uid, req.vehicle_type, req.license_number)
        return await self.profile(user_id)
