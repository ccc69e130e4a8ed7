"""JetStream adapter: declare the streams, publish with acks and retries, pull consumers."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import (
    AckPolicy,
    ConsumerConfig,
    DeliverPolicy,
    RetentionPolicy,
    StorageType,
    StreamConfig,
)
from tenacity import (
    AsyncRetrying,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from streams.catalog import STREAMS, Names, StreamSpec
from streams.events import _Event, encode

log = logging.getLogger("homechef.streams")

PUBLISH_ATTEMPTS = 5
PUBLISH_TIMEOUT_S = 2.0
STREAM_READY_TIMEOUT_S = 30.0


async def ensure_streams(js: JetStreamContext, names: Names,
                         specs: tuple[StreamSpec, ...] = STREAMS, *, replicas: int = 1) -> None:
    """Create or update every stream so its config matches the catalogue (idempotent).

    ``replicas`` (``NATS_STREAM_REPLICAS``): copies of each stream on a NATS cluster, kept by
    RAFT, so losing a server loses no acknowledged message. Durable consumers are created
    without a replica count and so inherit the stream's; their acks are replicated alike.

    Returns once every stream has a leader with its replicas caught up: a stream whose
    replica count just changed is moved to a new RAFT group, and until that group elects a
    leader, publishes time out and consumers are refused ("insufficient resources")."""
    for spec in specs:
        config = StreamConfig(
            name=names.stream(spec),
            subjects=names.stream_subjects(spec),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            max_age=spec.max_age_s,
            duplicate_window=spec.duplicate_window_s,
            description=spec.description,
            num_replicas=replicas,
        )
        try:
            await js.add_stream(config)
        except nats.js.errors.BadRequestError:
            # Exists with another config (e.g. retention changed in the catalogue): update.
            await js.update_stream(config)
    for spec in specs:
        await wait_stream_ready(js, names.stream(spec))


async def delete_streams(js: JetStreamContext, prefix: str) -> None:
    """Delete every stream whose name starts with ``prefix`` (a namespace's: ``NS_``), with
    what it holds: benchmarks and test sessions clean up with it."""
    for info in await js.streams_info():
        if info.config.name and info.config.name.startswith(prefix):
            await js.delete_stream(info.config.name)


async def wait_stream_ready(js: JetStreamContext, stream: str,
                            timeout_s: float = STREAM_READY_TIMEOUT_S) -> None:
    """Until ``stream`` has a leader and every replica is current (at once on one server)."""
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        info = await js.stream_info(stream)
        cluster, followers = info.cluster, (info.config.num_replicas or 1) - 1
        if cluster is None or (cluster.leader is not None
                               and len(cluster.replicas or ()) == followers
                               and all(p.current for p in cluster.replicas or ())):
            return
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"stream {stream} has no leader with current replicas "
                               f"after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def publish(
    js: JetStreamContext,
    subject: str,
    event: _Event,
    *,
    msg_id: str | None = None,
    timeout_s: float = PUBLISH_TIMEOUT_S,
    attempts: int = PUBLISH_ATTEMPTS,
) -> int:
    """Publish and wait for the stream's ack; retry transient failures (up to `attempts`
    tries in all). Returns the sequence.

    ``msg_id`` becomes ``Nats-Msg-Id``: JetStream drops a duplicate within the stream's
    window, so a retried publish (or an outbox relay replaying a row) stores the event once.
    """
    payload = encode(event)
    headers = {"Nats-Msg-Id": msg_id} if msg_id else None
    async for attempt in AsyncRetrying(
        stop=stop_after_attempt(attempts),
        wait=wait_exponential(multiplier=0.05, max=1.0),
        retry=retry_if_exception_type(
            (nats.errors.TimeoutError, nats.js.errors.NoStreamResponseError,
             nats.errors.ConnectionClosedError, nats.js.errors.ServiceUnavailableError)
        ),
        reraise=True,
    ):
        with attempt:
            ack = await js.publish(subject, payload, timeout=timeout_s, headers=headers)
            return int(ack.seq)
    raise AssertionError("unreachable")  # AsyncRetrying either returns or re-raises


Handler = Callable[[list[Msg]], Awaitable[None]]


def raise_if_cancelling() -> None:
    """Re-raise a cancellation that a library swallowed (the task still says cancelling).

    asyncio delivers a cancel once; if a client library catches it (several time-out
    helpers do on Python 3.11), a worker loop would run on forever. Loops call this.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def fetch_batch(sub: JetStreamContext.PullSubscription, batch: int,
                      timeout_s: float) -> list[Msg]:
    """Up to ``batch`` messages, or [] when none arrive in ``timeout_s``.

    nats-py's fetch can turn a cancellation into a timeout; a consumer loop that treated that
    as "no messages" would never stop, so a pending cancellation is re-raised here.
    """
    try:
        return await sub.fetch(batch, timeout=timeout_s)
    except (nats.errors.TimeoutError, TimeoutError):
        raise_if_cancelling()
        return []


async def consume_batches(
    js: JetStreamContext,
    *,
    stream: str,
    durable: str,
    filter_subject: str,
    handler: Handler,
    batch: int = 500,
    wait_s: float = 1.0,
    ack_wait_s: float = 30.0,
    deliver_all: bool = True,
) -> None:
    """Pull batches from a durable consumer forever; ack a batch only after ``handler``.

    At-least-once: a batch whose handler raises is not acked and is redelivered after
    ``ack_wait_s``, so handlers must be idempotent.

    ``wait_s`` bounds how long one pull request lingers on the server. A message that
    arrives ends the wait at once, so it does not delay anything; it only sets how often an
    idle consumer asks again (two requests per cycle). At 50 ms, a core process's pull
    readers with nothing to read (three consumers, the hub's two `follow_stream`s) cost it
    ~6 % of a core, and the NATS server ~4 % per process. It is also the longest a consumer
    waits to notice a pull request lost in a reconnect.
    """
    config = ConsumerConfig(
        durable_name=durable,
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL if deliver_all else DeliverPolicy.NEW,
        filter_subject=filter_subject,
        ack_wait=ack_wait_s,
        max_ack_pending=max(batch * 20, 10_000),
    )
    sub = await js.pull_subscribe(filter_subject, durable=durable, stream=stream, config=config)
    try:
        await _consume(sub, handler, batch, wait_s)
    finally:
        # Without this, closing the connection waits out its drain timeout for this sub.
        with contextlib.suppress(Exception):
            await sub.unsubscribe()


async def _consume(sub: JetStreamContext.PullSubscription, handler: Handler, batch: int,
                   wait_s: float) -> None:
    while True:
        raise_if_cancelling()
        try:
            msgs = await fetch_batch(sub, batch, wait_s)
        except (nats.errors.ConnectionClosedError, nats.js.errors.ServiceUnavailableError):
            await asyncio.sleep(0.5)  # the client reconnects on its own; try again
            continue
        if not msgs:
            continue
        await handler(msgs)
        # One ack for the batch: AckAll on the last message would need AckPolicy.ALL; with
        # explicit acks we ack each, without waiting for confirmations (fire-and-forget).
        for m in msgs:
            await m.ack()
