"""The indexer: files stored fixes into the live H3 index, in the process that stored them.

A fix reaches the index from the process that accepted it, once JetStream has acked it
(ADR 0046): `offer` keeps each courier's newest stored fix, and a writer files what is
waiting with `LiveIndex.upsert`, a few calls at most in flight, so under load a call carries
everything that arrived while the calls before it were in flight. A call that fails (Redis
down, a failover) puts its fixes back (a newer fix of the same courier replaces the older)
and they are retried with backoff: nothing stored is dropped while the process lives.

The stream is what the index is rebuilt from. A sentinel key marks a populated index; when
it is missing (Redis was flushed or is new) one process replays the last ``rebuild_s`` of the
stream, which the newer-than guard makes idempotent, and only then sets the sentinel. The
replay holds a lock that expires, so if its process dies another one replays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

import nats.errors
import nats.js.errors
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from redis.exceptions import RedisError

from api.clock import Clock, wall_ms
from api.core.gps.ingest import IngestMetrics
from api.observability import observe_many
from api.stores.live_index import LiveIndex, Located
from streams.catalog import LOCATIONS, Names
from streams.events import CourierLocatedBatch, CourierLocatedMany, LocRun, decode_locations
from streams.jetstream import fetch_batch, raise_if_cancelling

log = logging.getLogger("homechef.indexer")

OLD_DURABLE = "indexer"
"""The durable consumer older versions indexed through (deleted at start-up)."""

WRITE_ERRORS = (RedisError, OSError, TimeoutError)
"""What a write to Redis raises while Redis is down, restarting or failing over."""


def newest_fixes(payloads: Iterable[bytes]) -> list[Located]:
    """The newest fix of each run in stored location messages (any of their formats); the
    upsert keeps each courier's newest of them. An undecodable message is skipped: a poison
    message must not stop a rebuild."""
    found: list[Located] = []
    for data in payloads:
        try:
            ev = decode_locations(data)
        except Exception:
            log.warning("skipping an undecodable location message")
            continue
        if isinstance(ev, CourierLocatedMany):
            fixes = ev.newest()
        else:
            newest = ev.newest() if isinstance(ev, CourierLocatedBatch) else ev
            fixes = [newest] if newest is not None else []
        found += [Located(f.courier_id, f.lat, f.lng, f.ts) for f in fixes]
    return found


class Indexer:
    def __init__(
        self,
        js: JetStreamContext,
        names: Names,
        index: LiveIndex,
        metrics: IngestMetrics,
        *,
        batch: int = 5000,
        rebuild_s: float = 600.0,
        rebuild_lock_s: float = 30.0,
        check_s: float = 1.0,
        in_flight: int = 4,
        retry_max_s: float = 2.0,
        clock: Clock = wall_ms,
    ) -> None:
        """``batch``: most couriers filed per call; ``in_flight``: most calls at once.
        ``clock`` (epoch ms) dates the replay window of a rebuild and times each fix from
        acceptance to the index (``gps_fix_to_index_seconds``). ``check_s``: how often the
        sentinel is checked."""
        self._js = js
        self._names = names
        self._index = index
        self._metrics = metrics
        self._batch = batch
        self._rebuild_s = rebuild_s
        self._rebuild_lock_s = rebuild_lock_s
        self._check_s = check_s
        self._retry_max_s = retry_max_s
        self._in_flight = in_flight
        self._backoff_s = 0.0
        self._resume_at = 0.0  # monotonic s: no call starts before (after a failure)
        self._clock = clock
        self._stream = names.stream(LOCATIONS)
        self._waiting: dict[str, Located] = {}
        # Accepted at (ms) -> fixes accepted then and not yet filed: bounded by the distinct
        # milliseconds waiting, not by the rate, while Redis is down.
        self._lags: dict[int, int] = {}
        self._wake = asyncio.Event()
        self._writing = 0  # calls in flight
        self.applied = 0
        """Fixes that changed the index (this process's writes and replays)."""
        self.replayed = 0
        """Location messages read by this process's rebuilds."""
        self.ready = asyncio.Event()
        """Set once the index is known to be populated (the sentinel was seen or set)."""
        metrics.index_waiting.set_function(lambda: len(self._waiting))

    # -- the writer ---------------------------------------------------------------------------
    def offer(self, runs: Iterable[LocRun]) -> None:
        """Runs JetStream has stored: file each courier's newest fix (no awaits)."""
        waiting, lags = self._waiting, self._lags
        for run in runs:
            f = run.fixes[-1]  # oldest first
            cid = run.courier_id
            seen = waiting.get(cid)
            if seen is None or f.ts > seen.ts_ms:
                waiting[cid] = Located(cid, f.lat, f.lng, f.ts)
            lags[run.received_ms] = lags.get(run.received_ms, 0) + len(run.fixes)
        self._wake.set()

    def _take(self) -> tuple[dict[str, Located], dict[int, int]]:
        """Up to ``batch`` waiting couriers, and the lags of what they file."""
        waiting = self._waiting
        if len(waiting) <= self._batch:
            taken, self._waiting = waiting, {}
        else:
            taken = {cid: waiting.pop(cid) for cid in list(waiting)[:self._batch]}
        # The lags go with the call that empties the queue: a backlog's fixes are not
        # reported filed much sooner than they were.
        lags: dict[int, int] = {}
        if not self._waiting:
            lags, self._lags = self._lags, {}
        return taken, lags

    async def _write(self, taken: dict[str, Located], lags: dict[int, int]) -> bool:
        """File ``taken`` with one call; False if the call failed (they wait again)."""
        self._writing += 1
        try:
            self.applied += await self._index.upsert(taken.values())
        except asyncio.CancelledError:  # the writer stops (a restart, shutdown's drain files)
            self._put_back(taken, lags)
            raise
        except WRITE_ERRORS as exc:
            self._put_back(taken, lags)
            self._metrics.index_write_failures.inc()
            log.warning("live index write of %d couriers failed, retrying: %r", len(taken), exc)
            return False
        except ValueError:  # an id the index cannot hold: drop those, keep the rest
            bad = [cid for cid in taken if "|" in cid or "\n" in cid]
            log.error("dropping fixes of ids the index cannot hold: %r", bad[:5])
            for cid in bad:
                del taken[cid]
            self._put_back(taken, lags)
            return True
        finally:
            self._writing -= 1
        now_ms = self._clock()
        observe_many(self._metrics.fix_to_index,
                     ((max(0.0, (now_ms - r) / 1000.0), n) for r, n in lags.items()))
        return True

    def _put_back(self, taken: dict[str, Located], lags: dict[int, int]) -> None:
        waiting = self._waiting
        for cid, loc in taken.items():
            newer = waiting.get(cid)
            if newer is None or newer.ts_ms < loc.ts_ms:
                waiting[cid] = loc
        for r, n in lags.items():
            self._lags[r] = self._lags.get(r, 0) + n

    async def _write_forever(self) -> None:
        """Up to ``in_flight`` calls at once, each taking what waits when it starts: a call
        waits for Redis, not for the call before it (the newer-than guard orders two calls'
        fixes of one courier). After a failure no call starts until the backoff passed."""
        slots = asyncio.Semaphore(self._in_flight)
        calls: set[asyncio.Task[None]] = set()
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._waiting:
                    await slots.acquire()
                    pause_s = self._resume_at - time.monotonic()
                    if pause_s > 0:
                        await asyncio.sleep(pause_s)
                    if not self._waiting:
                        slots.release()
                        break
                    call = asyncio.create_task(self._call(slots, *self._take()))
                    calls.add(call)
                    call.add_done_callback(calls.discard)
        finally:
            for call in calls:
                call.cancel()

    async def _call(self, slots: asyncio.Semaphore, taken: dict[str, Located],
                    lags: dict[int, int]) -> None:
        try:
            if await self._write(taken, lags):
                self._backoff_s = 0.0
            else:
                self._backoff_s = min(self._retry_max_s, self._backoff_s * 2 or 0.05)
                self._resume_at = time.monotonic() + self._backoff_s
                self._wake.set()  # its fixes wait again
        finally:
            slots.release()

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait until what was offered is filed, filing it here if no writer runs (at
        shutdown). Bounded: with Redis down it stays in the stream."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(timeout_s):
                while self._waiting or self._writing:
                    if self._writing or not await self._write(*self._take()):
                        await asyncio.sleep(0.01)

    # -- the rebuild -------------------------------------------------------------------------
    async def run(self) -> None:
        """Write what is offered, and rebuild the index whenever it is found empty."""
        writer = asyncio.create_task(self._write_forever())
        self._wake.set()  # what was offered before (or while) this ran
        try:
            try:
                await self._js.delete_consumer(self._stream, self._names.consumer(OLD_DURABLE))
            except nats.js.errors.NotFoundError:
                pass
            except nats.errors.Error as exc:  # NATS not answering: the next start tries again
                log.info("could not delete the old indexer consumer: %r", exc)
            while True:
                raise_if_cancelling()
                if writer.done():
                    writer.result()  # a writer that died takes the indexer down (restarted)
                try:
                    if await self._index.redis.exists(self._index.epoch_key):
                        self.ready.set()
                    else:
                        self.ready.clear()
                        await self._rebuild()
                except (*WRITE_ERRORS, nats.errors.Error) as exc:
                    raise_if_cancelling()
                    log.info("index rebuild check failed, checking again: %r", exc)
                await asyncio.sleep(self._check_s)
        finally:
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await writer

    async def _rebuild(self) -> None:
        """Replay the stream's last ``rebuild_s`` into the index, then set the sentinel. One
        process at a time (a lock that expires if that process dies); the others keep filing
        their own fixes and check again."""
        redis = self._index.redis
        lock_key = f"{self._index.epoch_key}:rebuild"
        token = uuid.uuid4().hex
        if not await redis.set(lock_key, token, nx=True, ex=round(self._rebuild_lock_s)):
            return
        try:
            log.info("live index empty: replaying the last %.0f s of locations", self._rebuild_s)
            await self._replay(lock_key)
            await redis.set(self._index.epoch_key, uuid.uuid4().hex)
            self.ready.set()
            log.info("live index rebuilt")
        finally:
            with contextlib.suppress(*WRITE_ERRORS):
                if await redis.get(lock_key) == token.encode():
                    await redis.delete(lock_key)

    async def _replay(self, lock_key: str) -> None:
        """Read the window up to the stream's last message at the start, filing each chunk."""
        info = await self._js.stream_info(self._stream)
        last_seq = int(info.state.last_seq)
        start = datetime.fromtimestamp(self._clock() / 1000, UTC) - timedelta(
            seconds=self._rebuild_s)
        config = ConsumerConfig(deliver_policy=DeliverPolicy.BY_START_TIME, opt_start_time=start,
                                ack_policy=AckPolicy.NONE, inactive_threshold=30.0,
                                mem_storage=True, max_ack_pending=-1)
        sub = await self._js.pull_subscribe(self._names.locations_all(), stream=self._stream,
                                            config=config)
        try:
            while True:
                msgs = await fetch_batch(sub, 1000, 1.0)
                if not msgs:
                    return  # nothing (more) in the window
                self.replayed += len(msgs)
                self.applied += await self._index.upsert(newest_fixes(m.data for m in msgs))
                await self._index.redis.expire(lock_key, round(self._rebuild_lock_s))
                meta = msgs[-1].metadata
                if meta.sequence.stream >= last_seq or meta.num_pending == 0:
                    return
        finally:
            with contextlib.suppress(Exception):
                await sub.unsubscribe()
