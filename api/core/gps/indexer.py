"""The indexer: consumes accepted fixes from the LOCATIONS stream into the live H3 index.

Batches are applied with one Lua call each (newest fix per courier wins, cells moved only on
change). Restart-safe: a sentinel key marks a populated index; when it is missing (Redis was
flushed or is new) the durable consumer is recreated to replay the last ``index_rebuild_s``
of the stream, which the newer-than guard makes idempotent.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from datetime import UTC, datetime, timedelta

import nats.errors
import nats.js.errors
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from api.clock import Clock, wall_ms
from api.core.gps.ingest import IngestMetrics
from api.observability import observe_many
from api.stores.live_index import LiveIndex, Located
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocatedBatch, CourierLocatedMany, decode_locations
from streams.jetstream import raise_if_cancelling

log = logging.getLogger("homechef.indexer")

DURABLE = "indexer"


class Indexer:
    def __init__(
        self,
        js: JetStreamContext,
        names: Names,
        index: LiveIndex,
        metrics: IngestMetrics,
        *,
        batch: int = 1000,
        rebuild_s: float = 600.0,
        linger_s: float = 0.0,
        ack_wait_s: float = 30.0,
        clock: Clock = wall_ms,
    ) -> None:
        """``clock`` (epoch ms) dates the replay window of a rebuild and times each fix from
        acceptance to the index (``gps_fix_to_index_seconds``). ``linger_s``: how long
        messages may gather after one arrives, so that they are applied together."""
        self._js = js
        self._names = names
        self._index = index
        self._metrics = metrics
        self._batch = batch
        self._rebuild_s = rebuild_s
        self._linger_s = linger_s
        self._ack_wait_s = ack_wait_s
        self._clock = clock
        self._stream = names.stream(LOCATIONS)
        self._durable = names.consumer(DURABLE)
        self.applied = 0
        self.ready = asyncio.Event()
        """Set while this indexer's subscription to the consumer is bound (it gets a share)."""

    async def run(self) -> None:
        while True:
            raise_if_cancelling()
            config = await self._prepare()
            await self._consume_until_flush(config)

    async def _prepare(self) -> ConsumerConfig:
        """Make sure the durable consumer exists; reset it to replay if the index is empty."""
        redis = self._index.redis
        if await redis.exists(self._index.epoch_key):
            return await self._ensure_consumer(replay=False)
        lock_key = f"{self._index.epoch_key}:rebuild"
        if await redis.set(lock_key, "1", nx=True, ex=30):
            try:
                log.info("live index empty: replaying the last %.0f s of locations",
                         self._rebuild_s)
                config = await self._ensure_consumer(replay=True)
                await redis.set(self._index.epoch_key, uuid.uuid4().hex)
                return config
            finally:
                await redis.delete(lock_key)
        else:  # another process is resetting the consumer; wait for it
            for _ in range(100):
                if await redis.exists(self._index.epoch_key):
                    break
                await asyncio.sleep(0.1)
            return await self._ensure_consumer(replay=False)

    def _config(self, start: datetime) -> ConsumerConfig:
        return ConsumerConfig(
            durable_name=self._durable,
            # Push, not pull: nats-py's fetch spends a task and a loop turn per message, and
            # under load the socket readers starved it (fixes queued for seconds). Pushed
            # messages land in a list in one callback each and are applied together.
            deliver_subject=f"{self._names.ns}._deliver.{self._durable}",
            # A deliver group lets several core processes share the consumer: each message is
            # indexed by one of them. Acks are per message: with AckPolicy.ALL one member's ack
            # also covered what another member held, so a crash lost that member's share; now
            # whatever a member never applied is redelivered after ack_wait.
            deliver_group=self._durable,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.BY_START_TIME,
            opt_start_time=start,
            filter_subject=self._names.locations_all(),
            ack_wait=self._ack_wait_s,
            max_ack_pending=self._batch * 50,
        )

    async def _ensure_consumer(self, *, replay: bool) -> ConsumerConfig:
        now = datetime.fromtimestamp(self._clock() / 1000, UTC)
        config = self._config(now - timedelta(seconds=self._rebuild_s))
        if not replay:
            try:
                info = await self._js.consumer_info(self._stream, self._durable)
            except nats.js.errors.NotFoundError:
                pass
            else:
                if (info.config.deliver_subject == config.deliver_subject
                        and info.config.ack_policy == config.ack_policy):
                    return info.config
                # A pull or ack-all consumer left by an older version: replace it (replaying
                # the rebuild window, which the newer-than guard makes harmless).
        with contextlib.suppress(nats.js.errors.NotFoundError):
            await self._js.delete_consumer(self._stream, self._durable)
        try:
            await self._js.add_consumer(self._stream, config)
        except nats.js.errors.BadRequestError:
            # Another core process created it first (same config): use theirs.
            info = await self._js.consumer_info(self._stream, self._durable)
            return info.config
        return config

    async def _consume_until_flush(self, config: ConsumerConfig) -> None:
        inbox: list[Msg] = []
        arrived = asyncio.Event()

        async def on_msg(msg: Msg) -> None:
            inbox.append(msg)
            arrived.set()

        sub = await self._js.subscribe_bind(
            self._stream, config, self._durable, cb=on_msg, manual_ack=True,
            pending_msgs_limit=self._batch * 100)
        self.ready.set()

        async def apply_inbox() -> None:
            while inbox:
                msgs = inbox[:self._batch]
                del inbox[:self._batch]
                await self.apply(msgs)
                # Acked only once applied: a crash before this leaves them to redelivery.
                # Each ack is one buffered publish (about 200 messages/s at 5,000 fixes/s).
                with contextlib.suppress(nats.errors.ConnectionClosedError):
                    for m in msgs:
                        await m.ack()

        checked = time.monotonic()
        try:
            while True:
                raise_if_cancelling()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(0.25):
                        await arrived.wait()
                arrived.clear()
                if inbox and len(inbox) < self._batch and self._linger_s:
                    # Let the next messages arrive: under load one Redis call then applies
                    # several deliveries, and the index keeps up (p99 to the index at 30,000
                    # one-fix messages/s: ~120-240 ms against 420-580 ms applying each).
                    await asyncio.sleep(self._linger_s)
                await apply_inbox()
                if time.monotonic() - checked > 1.0:
                    checked = time.monotonic()
                    if not await self._index.redis.exists(self._index.epoch_key):
                        # Flushed: rebuild. Drain, do not drop, what was already pushed to
                        # this subscription: the replay another process starts can land here,
                        # and waiting out ack_wait for its redelivery would leave the index
                        # without those couriers meanwhile.
                        with contextlib.suppress(nats.errors.Error):
                            await sub.drain()
                        await apply_inbox()
                        return
        finally:
            self.ready.clear()
            with contextlib.suppress(Exception):
                await sub.unsubscribe()

    @staticmethod
    def _keep(newest: dict[str, Located], cid: str, lat: float, lng: float, ts: int) -> None:
        seen = newest.get(cid)
        if seen is None or ts > seen.ts_ms:
            newest[cid] = Located(cid, lat, lng, ts)

    async def apply(self, msgs: list[Msg]) -> None:
        """Index the newest fix of each courier in ``msgs`` (single fixes or batches).

        Only a courier's newest fix can change the index (the script keeps the newest), so
        older ones are dropped here, before any h3 or Lua work: with devices that send a few
        fixes per message this divides the index work by that many.
        """
        newest: dict[str, Located] = {}
        received: list[tuple[int, int]] = []  # (accepted at, how many fixes)
        for m in msgs:
            try:
                ev = decode_locations(m.data)
            except Exception:  # a poison message must not block the stream
                log.warning("dropping undecodable location message on %s", m.subject)
                continue
            if isinstance(ev, CourierLocatedMany):
                for run in ev.runs:
                    if run.fixes:
                        f = run.fixes[-1]  # fixes are in ts order
                        self._keep(newest, run.courier_id, f.lat, f.lng, f.ts)
                        received.append((run.received_ms, len(run.fixes)))
                continue
            if isinstance(ev, CourierLocatedBatch):
                if not ev.fixes:
                    continue
                f = ev.fixes[-1]  # fixes are in ts order
                lat, lng, ts, n = f.lat, f.lng, f.ts, len(ev.fixes)
            else:
                lat, lng, ts, n = ev.lat, ev.lng, ev.ts, 1
            self._keep(newest, ev.courier_id, lat, lng, ts)
            received.append((ev.received_ms, n))
        if not newest:
            return
        self.applied += await self._index.upsert(newest.values())
        now_ms = self._clock()
        observe_many(self._metrics.fix_to_index,
                     ((max(0.0, (now_ms - r) / 1000.0), n) for r, n in received))
