"""In-app notifications (the user's inbox, written in the caller's transaction) and their
reading; push/email/SMS copies go through the MessageSink after commit."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from api.commerce.ids import user_uuid
from api.commerce.paging import Page, PageQuery
from api.problems import Problem
from api.resources import Resources

_MAX_ID = 2**63 - 1
"""The largest ``bigserial`` id: a larger path id names no notification."""


class Notification(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    kind: str
    """e.g. NEW_ORDER (chefs), ORDER_STATUS_UPDATE (customers)."""
    title: str
    body: str
    data: dict[str, Any]
    read_at: datetime | None
    created_at: datetime


async def notify(conn: asyncpg.Connection, user_id: uuid.UUID, kind: str, title: str,
                 body: str, data: dict[str, Any]) -> None:
    await conn.execute(
        "INSERT INTO notifications (user_id, kind, title, body, data) "
        "VALUES ($1, $2, $3, $4, $5::jsonb)",
        user_id, kind, title, body, msgspec.json.encode(data).decode())


class NotificationService:
    def __init__(self, resources: Resources) -> None:
        self.db = resources.db

    async def inbox(self, user_id: str, q: PageQuery, unread_only: bool) -> Page[Notification]:
        rows = await self.db.fetch(
            """SELECT id, kind, title, body, data::text AS data, read_at, created_at,
                      count(*) OVER () AS total
               FROM notifications WHERE user_id = $1 AND (NOT $2 OR read_at IS NULL)
               ORDER BY id DESC LIMIT $3 OFFSET $4""",
            user_uuid(user_id), unread_only, q.limit, q.offset)
        data = [Notification(id=r["id"], kind=r["kind"], title=r["title"], body=r["body"],
                             data=msgspec.json.decode(r["data"]), read_at=r["read_at"],
                             created_at=r["created_at"]) for r in rows]
        return Page(data=data, total=int(rows[0]["total"]) if rows else 0, page=q.page,
                    limit=q.limit)

    async def mark_read(self, user_id: str, notification_id: int) -> None:
        if not 0 < notification_id <= _MAX_ID:  # no such row; asyncpg would refuse to bind it
            raise Problem(404, "notification not found", code="not_found")
        done = await self.db.execute(
            "UPDATE notifications SET read_at = coalesce(read_at, now()) "
            "WHERE id = $1 AND user_id = $2", notification_id, user_uuid(user_id))
        if done == "UPDATE 0":
            raise Problem(404, "notification not found", code="not_found")
