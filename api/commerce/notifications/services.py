"""In-app notifications (the user's inbox, written in the caller's transaction) and their
reading; e-mail/SMS/push copies are queued with it and sent after commit (`deliveries`)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import asyncpg
import msgspec

from api.commerce.ids import user_uuid
from api.commerce.notifications import schemas as s
from api.commerce.notifications.deliveries import enqueue_notification
from api.commerce.notifications.sinks import PushTarget
from api.commerce.notifications.webpush import check_subscription
from api.commerce.paging import Page, PageQuery
from api.commerce.rows import many, one
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
    """The in-app notification and its e-mail/SMS/push deliveries, in the caller's
    transaction (the caller calls ``Commerce.committed()`` after commit)."""
    await enqueue_notification(conn, user_id, kind, title, body, data)


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


class PreferenceService:
    """Per-user channel preferences and Web Push subscriptions."""

    def __init__(self, resources: Resources) -> None:
        self.db = resources.db
        self.settings = resources.settings.notify

    async def preferences(self, user_id: uuid.UUID) -> s.Preferences:
        row = await self.db.fetchrow(
            """SELECT np.email, np.sms, np.push, u.id AS user_id
               FROM users u LEFT JOIN notification_preferences np ON np.user_id = u.id
               WHERE u.id = $1""", user_id)
        if row is None:
            raise Problem(404, "user not found", code="not_found")
        if row["email"] is None:
            return s.Preferences()
        return s.Preferences(email=row["email"], sms=row["sms"], push=row["push"])

    async def set_preferences(self, user_id: uuid.UUID,
                              req: s.PreferencesUpdate) -> s.Preferences:
        current = await self.preferences(user_id)
        merged = s.Preferences(
            email=current.email if req.email is None else req.email,
            sms=current.sms if req.sms is None else req.sms,
            push=current.push if req.push is None else req.push)
        await self.db.execute(
            """INSERT INTO notification_preferences (user_id, email, sms, push)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (user_id) DO UPDATE SET email = $2, sms = $3, push = $4,
                                                  updated_at = now()""",
            user_id, merged.email, merged.sms, merged.push)
        return merged

    async def subscriptions(self, user_id: uuid.UUID) -> list[s.PushSubscription]:
        rows = await self.db.fetch(
            "SELECT id, endpoint, created_at FROM push_subscriptions WHERE user_id = $1 "
            "ORDER BY id", user_id)
        return many(s.PushSubscription, rows)

    async def subscribe(self, user_id: uuid.UUID,
                        req: s.PushSubscriptionCreate) -> s.PushSubscription:
        """Save a browser's subscription. An endpoint seen before (the same browser signing
        in again, perhaps as someone else) is moved to this user with its new keys."""
        target = PushTarget(endpoint=req.endpoint, p256dh=req.keys.p256dh, auth=req.keys.auth)
        problem = check_subscription(target, allow_loopback=self.settings.push_allow_loopback)
        if problem is not None:
            raise Problem(422, problem, code="invalid_push_subscription")
        row = await self.db.fetchrow(
            """INSERT INTO push_subscriptions (user_id, endpoint, p256dh, auth)
               VALUES ($1, $2, $3, $4)
               ON CONFLICT (endpoint) DO UPDATE SET user_id = $1, p256dh = $3, auth = $4
               RETURNING id, endpoint, created_at""",
            user_id, req.endpoint, req.keys.p256dh, req.keys.auth)
        return one(s.PushSubscription, row)

    async def unsubscribe(self, user_id: uuid.UUID, subscription_id: int) -> None:
        if not 0 < subscription_id <= _MAX_ID:
            raise Problem(404, "push subscription not found", code="not_found")
        done = await self.db.execute(
            "DELETE FROM push_subscriptions WHERE id = $1 AND user_id = $2",
            subscription_id, user_id)
        if done == "DELETE 0":
            raise Problem(404, "push subscription not found", code="not_found")
