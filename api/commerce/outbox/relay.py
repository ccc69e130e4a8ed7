"""Transactional outbox: events are inserted in the state change's transaction, then a relay
publishes them to JetStream (row id as Nats-Msg-Id, so a replayed row is stored once) and
marks them sent. Several relays may run: rows are claimed with FOR UPDATE SKIP LOCKED."""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from api.commerce.context import Commerce
from api.parts import Worker
from api.resources import Resources
from streams.events import _Event, decode_order_event, encode
from streams.jetstream import publish

log = logging.getLogger("homechef.commerce.outbox")


async def enqueue(conn: asyncpg.Connection, subject: str, event: _Event) -> None:
    """Add an event to the outbox inside the caller's transaction."""
    await conn.execute("INSERT INTO outbox (subject, payload) VALUES ($1, $2)",
                       subject, encode(event))


async def relay_once(resources: Resources, batch: int) -> int:
    """Publish up to ``batch`` unsent rows in id order; return how many were sent."""
    async with resources.db.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT id, subject, payload FROM outbox WHERE sent_at IS NULL
               ORDER BY id LIMIT $1 FOR UPDATE SKIP LOCKED""", batch)
        if not rows:
            return 0
        for row in rows:
            event = decode_order_event(bytes(row["payload"]))
            await publish(resources.js, row["subject"], event, msg_id=str(row["id"]))
        await conn.execute("UPDATE outbox SET sent_at = now() WHERE id = ANY($1::bigint[])",
                           [r["id"] for r in rows])
        return len(rows)


def outbox_worker(commerce: Commerce) -> Worker:
    """The supervised relay loop: wakes on a local commit or every ``outbox_poll_s``."""

    async def run(resources: Resources) -> None:
        config = commerce.config
        while True:
            commerce.outbox_wakeup.clear()
            sent = await relay_once(resources, config.outbox_batch)
            if sent >= config.outbox_batch:
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(commerce.outbox_wakeup.wait(), config.outbox_poll_s)

    return run
