"""Transactional outbox: a state change and its event commit together; the relay publishes
each row once to JetStream (row id as Nats-Msg-Id) and marks it sent; replaying a row
(e.g. a crash between publish and mark) is de-duplicated by JetStream."""

from __future__ import annotations

import nats
from nats.js.api import ConsumerConfig, DeliverPolicy

from api.commerce.outbox.relay import enqueue, relay_once
from api.resources import open_resources
from streams.catalog import ORDERS, Names
from streams.events import LatLng, OrderStatusChanged, decode_order_event
from tests.integration.commerce.conftest import Api


async def test_relay_publishes_once_and_replays_dedupe(api: Api) -> None:
    """Two committed rows → two stream messages; a rolled-back row never leaves; resetting
    sent_at and relaying again adds nothing to the stream."""
    names = Names(api.settings.server.namespace)
    order_id = "00000000-0000-0000-0000-0000000000aa"
    subject = names.order_event("status", order_id)
    event = OrderStatusChanged(order_id=order_id, order_number="HC1", customer_id="c",
                               chef_id="k", status="accepted", at_ms=1,
                               pickup=LatLng(1, 2), dropoff=LatLng(3, 4))
    async with open_resources(api.settings) as res:
        async with res.db.acquire() as conn:
            async with conn.transaction():
                await enqueue(conn, subject, event)
                await enqueue(conn, subject, event)
            tx = conn.transaction()
            await tx.start()
            await enqueue(conn, subject, event)
            await tx.rollback()
        ids = [r["id"] for r in await res.db.fetch(
            "SELECT id FROM outbox WHERE subject = $1 ORDER BY id", subject)]
        assert len(ids) == 2
        while await relay_once(res, 100):
            pass  # the app's own relay may be racing us: SKIP LOCKED shares the rows
        assert await res.db.fetchval(
            "SELECT count(*) FROM outbox WHERE subject = $1 AND sent_at IS NULL", subject) == 0
        await res.db.execute("UPDATE outbox SET sent_at = NULL WHERE id = ANY($1::bigint[])",
                             ids)
        while await relay_once(res, 100):
            pass
    assert api.settings.stores.nats_url
    nc = await nats.connect(servers=api.settings.stores.nats_servers)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=names.stream(ORDERS), config=
                                      ConsumerConfig(deliver_policy=DeliverPolicy.ALL))
        msgs = await sub.fetch(10, timeout=1)
        assert len(msgs) == 2
        assert sorted(m.headers["Nats-Msg-Id"] for m in msgs if m.headers) == sorted(
            str(i) for i in ids)
        assert decode_order_event(msgs[0].data) == event
        await sub.unsubscribe()
    finally:
        await nc.close()
