"""A gap-free JetStream reader: follow a stream's subjects in order, across NATS reconnects.

`follow_stream` reads through an ephemeral pull consumer and keeps its position in a `Cursor`
(the next stream sequence not yet handled). When the connection drops, a delivery goes
missing or any NATS call fails, it recreates the consumer at the cursor, so messages published
meanwhile arrive late, never lost and never twice.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from enum import StrEnum

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NATS
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from streams.jetstream import fetch_batch, raise_if_cancelling

__all__ = ["TRANSIENT_ERRORS", "Cursor", "Start", "follow_stream"]

log = logging.getLogger("homechef.streams.follow")


class Cursor:
    """Where a `follow_stream` reader is: the next stream sequence it has not handled."""

    __slots__ = ("next_seq",)

    def __init__(self) -> None:
        self.next_seq: int | None = None


class Start(StrEnum):
    """Where a reader without a cursor position begins."""

    NEW = "new"
    """Only events stored after the reader starts."""
    LAST_PER_SUBJECT = "last_per_subject"
    """The latest event of every subject first (warm state), then new ones."""


TRANSIENT_ERRORS = (
    nats.errors.ConnectionClosedError, nats.errors.NoRespondersError,
    nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError,
    nats.js.errors.APIError, nats.errors.ConnectionReconnectingError, TimeoutError,
)
"""NATS failures a reader expects while the server restarts or the connection heals: logged
at INFO (anything else at WARNING), and the reader resumes from its cursor either way."""


async def follow_stream(
    nc: NATS,
    js: JetStreamContext,
    *,
    stream: str,
    filter_subject: str,
    handle: Callable[[Msg], None],
    start: Start = Start.NEW,
    cursor: Cursor | None = None,
    batch: int = 256,
    wait_s: float = 1.0,
    inactive_s: float = 30.0,
    on_ready: Callable[[], None] | None = None,
) -> None:
    """Deliver every message of ``stream`` matching ``filter_subject``, in order, forever.

    An ephemeral pull consumer (no acks) reads from the next stream sequence this reader has
    not handled yet. When the NATS connection drops, a delivery is missing (the consumer's
    delivery sequence jumps) or any NATS call fails, the consumer is recreated from that
    sequence, so messages published meanwhile arrive late, never lost
    and never twice (anything below the cursor is skipped).

    ``cursor`` keeps the position across calls: a restarted reader given the same cursor
    resumes where the previous one stopped instead of applying ``start`` again.

    ``wait_s``: how long one pull request lingers (`streams.jetstream.consume_batches`): a
    message ends it at once; it sets how often an idle reader asks again, and how soon it
    notices a reconnect.
    """
    cur = cursor if cursor is not None else Cursor()
    if start is Start.NEW:
        while cur.next_seq is None:
            try:
                info = await js.stream_info(stream)
                cur.next_seq = int(info.state.last_seq) + 1
            except Exception as exc:
                raise_if_cancelling()
                log.info("follow %s: stream not readable yet (%r)", filter_subject, exc)
                await asyncio.sleep(0.25)
    ready_signalled = False
    while True:
        raise_if_cancelling()
        if cur.next_seq is None:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.LAST_PER_SUBJECT)
        else:
            config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
                                    opt_start_seq=cur.next_seq)
        config.ack_policy = AckPolicy.NONE
        config.inactive_threshold = inactive_s
        config.mem_storage = True
        config.max_ack_pending = -1
        try:
            sub = await js.pull_subscribe(filter_subject, stream=stream, config=config)
        except Exception as exc:
            raise_if_cancelling()
            log.info("follow %s: cannot create consumer yet (%r)", filter_subject, exc)
            await asyncio.sleep(0.25)
            continue
        if not ready_signalled and on_ready is not None:
            on_ready()
            ready_signalled = True
        reconnects = nc.stats["reconnects"]
        delivered = 0  # the consumer numbers its deliveries 1, 2, ...: a jump means a loss
        try:
            while nc.stats["reconnects"] == reconnects:
                msgs = await fetch_batch(sub, batch, wait_s)  # re-raises a swallowed cancel
                if not msgs:
                    continue
                gap = False
                for m in msgs:
                    meta = m.metadata
                    if meta.sequence.consumer != delivered + 1:
                        # Delivered while we were cut off (the pull request outlived the
                        # connection): start a new consumer at the cursor.
                        gap = True
                        break
                    delivered += 1
                    seq = meta.sequence.stream
                    if cur.next_seq is not None and seq < cur.next_seq:
                        continue  # a redelivery after a reset
                    cur.next_seq = seq + 1
                    try:
                        handle(m)
                    except Exception:
                        log.exception("follow %s: handler failed at seq %d", filter_subject, seq)
                if gap:
                    break
            log.info("follow %s: NATS reconnected or deliveries lost; resuming at seq %s",
                     filter_subject, cur.next_seq)
        except Exception as exc:  # whatever NATS raised, resume from the cursor
            raise_if_cancelling()
            level = logging.INFO if isinstance(exc, TRANSIENT_ERRORS) else logging.WARNING
            log.log(level, "follow %s: %r; resuming at seq %s", filter_subject, exc,
                    cur.next_seq)
            await asyncio.sleep(0.1)
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
