"""The notification delivery outbox: rows written with the notification, in the order's
transaction, and sent by workers after commit, so an order never waits on a channel.

A worker leases due rows (``locked_until``), sends them concurrently, then marks each sent,
due again later (exponential backoff, kept in the row so it survives a restart) or failed.
A worker that dies mid-send leaves its lease to run out and the row is sent again: delivery
is at least once, and every attempt carries the row's idempotency key (`delivery_key`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

import asyncpg
import msgspec
from prometheus_client import CollectorRegistry, Counter

from api.commerce.context import Commerce
from api.commerce.notifications.sinks import DeliveryFailed, OutboundMessage, PushTarget
from api.parts import Worker
from api.resources import Resources
from api.settings import NotifySettings

log = logging.getLogger("homechef.notify.deliveries")

_ENQUEUE = """
WITH n AS (
    INSERT INTO notifications (user_id, kind, title, body, data)
    VALUES ($1, $2, $3, $4, $5::jsonb) RETURNING id, user_id
), p AS (
    SELECT coalesce(np.email, true) AS email, coalesce(np.sms, false) AS sms,
           coalesce(np.push, true) AS push, u.email AS address, u.phone, u.phone_verified
    FROM users u LEFT JOIN notification_preferences np ON np.user_id = u.id
    WHERE u.id = $1 AND u.is_active
), d AS (
    INSERT INTO notification_deliveries (notification_id, channel, address, subscription_id)
    SELECT n.id, 'email', p.address, NULL::bigint FROM n, p WHERE p.email
    UNION ALL
    SELECT n.id, 'sms', p.phone, NULL FROM n, p
    WHERE p.sms AND p.phone_verified AND p.phone IS NOT NULL
    UNION ALL
    SELECT n.id, 'push', s.endpoint, s.id FROM n, p, push_subscriptions s
    WHERE p.push AND s.user_id = n.user_id
    RETURNING 1
)
SELECT count(*) FROM d
"""

_CLAIM = """
WITH due AS (
    SELECT id FROM notification_deliveries
    WHERE status = 'pending' AND next_attempt_at <= now()
      AND (locked_until IS NULL OR locked_until <= now())
    ORDER BY next_attempt_at, id LIMIT $1 FOR UPDATE SKIP LOCKED
), claimed AS (
    UPDATE notification_deliveries d
    SET locked_until = now() + make_interval(secs => $2), attempts = d.attempts + 1
    FROM due WHERE d.id = due.id
    RETURNING d.id, d.channel, d.address, d.attempts, d.subscription_id, d.notification_id
)
SELECT c.*, n.kind, n.title, n.body, n.data::text AS data, s.endpoint, s.p256dh, s.auth
FROM claimed c JOIN notifications n ON n.id = c.notification_id
     LEFT JOIN push_subscriptions s ON s.id = c.subscription_id
"""


async def enqueue_notification(conn: asyncpg.Connection, user_id: uuid.UUID, kind: str,
                               title: str, body: str, data: dict[str, Any]) -> int:
    """Write the in-app notification and one delivery per channel the user wants (their
    e-mail, verified phone, each push subscription) in the caller's transaction; return how
    many deliveries were queued."""
    queued: int = await conn.fetchval(_ENQUEUE, user_id, kind, title, body,
                                      msgspec.json.encode(data).decode())
    return queued


def delivery_key(delivery_id: int) -> str:
    """The idempotency key of every attempt at one delivery."""
    return f"hc-d{delivery_id}"


def retry_delay_s(attempt: int, base_s: float, cap_s: float) -> float:
    """Wait after failed attempt number ``attempt`` (1-based): base, 2 x base, 4 x base...
    capped at ``cap_s``."""
    return float(min(cap_s, base_s * 2 ** min(attempt - 1, 40)))


def _message(row: asyncpg.Record) -> OutboundMessage:
    data = {k: str(v) for k, v in msgspec.json.decode(row["data"]).items()
            if isinstance(v, str | int | float | bool)}
    data.update(kind=row["kind"], notification_id=str(row["notification_id"]))
    push = None
    if row["channel"] == "push" and row["endpoint"] is not None:
        push = PushTarget(endpoint=row["endpoint"], p256dh=row["p256dh"], auth=row["auth"])
    return OutboundMessage(channel=row["channel"], to=row["address"], subject=row["title"],
                           body=row["body"], data=data, key=delivery_key(row["id"]), push=push)


class Outcome(msgspec.Struct, frozen=True):
    delivery_id: int
    error: str = ""
    """Empty: sent."""
    permanent: bool = False
    gone_subscription: int | None = None


async def _attempt(commerce: Commerce, row: asyncpg.Record, config: NotifySettings,
                   slots: asyncio.Semaphore) -> Outcome:
    async with slots:
        if row["channel"] == "push" and row["endpoint"] is None:
            return Outcome(row["id"], "the subscription was removed", permanent=True)
        try:
            async with asyncio.timeout(config.send_timeout_s):
                await commerce.messages.send(_message(row))
        except DeliveryFailed as exc:
            return Outcome(row["id"], str(exc)[:500], exc.permanent,
                           row["subscription_id"] if exc.gone else None)
        except Exception as exc:  # a channel's own bug or outage: try again later
            log.warning("delivery %s via %s failed: %r", row["id"], row["channel"], exc)
            return Outcome(row["id"], repr(exc)[:500])
        return Outcome(row["id"])


def delivery_counter(registry: CollectorRegistry) -> Counter:
    return Counter("notification_deliveries_total",
                   "Notification delivery attempts by channel and outcome "
                   "(sent, retry, failed)", ["channel", "outcome"], registry=registry)


async def deliver_once(resources: Resources, commerce: Commerce, config: NotifySettings,
                       counter: Counter | None = None) -> int:
    """Lease up to ``config.batch`` due deliveries, send them, record each outcome; return
    how many were leased."""
    rows = await resources.db.fetch(_CLAIM, config.batch, config.lease_s)
    if not rows:
        return 0
    slots = asyncio.Semaphore(config.concurrency)
    outcomes = await asyncio.gather(*(_attempt(commerce, r, config, slots) for r in rows))
    attempts = {r["id"]: r["attempts"] for r in rows}
    sent = [o.delivery_id for o in outcomes if not o.error]
    failed = [(o.delivery_id, o.error) for o in outcomes
              if o.error and (o.permanent or attempts[o.delivery_id] >= config.max_attempts)]
    retry = [(o.delivery_id, o.error,
              retry_delay_s(attempts[o.delivery_id], config.backoff_s, config.backoff_max_s))
             for o in outcomes
             if o.error and not o.permanent and attempts[o.delivery_id] < config.max_attempts]
    gone = [o.gone_subscription for o in outcomes if o.gone_subscription is not None]
    async with resources.db.acquire() as conn, conn.transaction():
        if sent:
            await conn.execute(
                """UPDATE notification_deliveries SET status = 'sent', sent_at = now(),
                          locked_until = NULL, last_error = ''
                   WHERE id = ANY($1::bigint[])""", sent)
        if failed:
            await conn.executemany(
                """UPDATE notification_deliveries SET status = 'failed', locked_until = NULL,
                          last_error = $2 WHERE id = $1""", failed)
        if retry:
            await conn.executemany(
                """UPDATE notification_deliveries SET locked_until = NULL, last_error = $2,
                          next_attempt_at = now() + make_interval(secs => $3)
                   WHERE id = $1""", retry)
        if gone:
            await conn.execute("DELETE FROM push_subscriptions WHERE id = ANY($1::bigint[])",
                               gone)
    if failed:
        log.warning("%d notification deliveries failed for good", len(failed))
    if counter is not None:
        channel = {r["id"]: r["channel"] for r in rows}
        outcome = {**dict.fromkeys(sent, "sent"), **{i: "failed" for i, _ in failed},
                   **{i: "retry" for i, _, _ in retry}}
        for delivery_id, what in outcome.items():
            counter.labels(channel[delivery_id], what).inc()
    return len(rows)


def delivery_worker(commerce: Commerce, config: NotifySettings,
                    counter: Counter | None = None) -> Worker:
    """The supervised delivery loop: wakes on a local commit or every ``poll_s`` (retries
    come due meanwhile)."""

    async def run(resources: Resources) -> None:
        while True:
            commerce.notify_wakeup.clear()
            if await deliver_once(resources, commerce, config, counter) >= config.batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(commerce.notify_wakeup.wait(), config.poll_s)

    return run
