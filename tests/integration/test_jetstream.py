"""JetStream adapter against the real server: streams, acked publish, de-duplication."""

from __future__ import annotations

import asyncio

import pytest
from nats.aio.client import Client
from nats.aio.msg import Msg

from streams.catalog import LOCATIONS, ORDERS, STREAMS, Names
from streams.events import CourierAssigned, decode
from streams.jetstream import consume_batches, ensure_streams, publish


async def test_ensure_streams_is_idempotent(nc: Client, js_names: Names) -> None:
    """Declaring twice leaves one stream per catalogue entry with the catalogue's retention."""
    js = nc.jetstream()
    await ensure_streams(js, js_names)
    await ensure_streams(js, js_names)
    for spec in STREAMS:
        info = await js.stream_info(js_names.stream(spec))
        assert info.config.subjects == js_names.stream_subjects(spec)
        assert info.config.max_age == pytest.approx(spec.max_age_s)
    assert (await js.stream_info(js_names.stream(LOCATIONS))).config.max_age == 24 * 3600


async def test_publish_dedupes_by_msg_id_and_consumer_sees_each_once(
    nc: Client, js_names: Names
) -> None:
    """Two publishes with one Nats-Msg-Id store one message; the durable consumer gets it."""
    js = nc.jetstream()
    await ensure_streams(js, js_names)
    ev = CourierAssigned(order_id="o1", courier_id="d1", offer_id="f1", at_ms=1)
    subject = js_names.dispatch_event("assigned", "o1")
    seq1 = await publish(js, subject, ev, msg_id="outbox-1")
    seq2 = await publish(js, subject, ev, msg_id="outbox-1")
    assert seq1 == seq2
    other = CourierAssigned(order_id="o2", courier_id="d2", offer_id="f2", at_ms=2)
    await publish(js, js_names.dispatch_event("assigned", "o2"), other, msg_id="outbox-2")

    got: list[object] = []
    done = asyncio.Event()

    async def handle(msgs: list[Msg]) -> None:
        got.extend(decode(m.data) for m in msgs)
        if len(got) >= 2:
            done.set()

    task = asyncio.create_task(consume_batches(
        js, stream=js_names.stream(STREAMS[1]), durable=js_names.consumer("t"),
        filter_subject=js_names.dispatch_all(), handler=handle,
    ))
    try:
        await asyncio.wait_for(done.wait(), 10)
        await asyncio.sleep(0.2)  # nothing more arrives
    finally:
        task.cancel()
    assert got == [ev, other]
    assert (await js.stream_info(js_names.stream(ORDERS))).state.messages == 0
