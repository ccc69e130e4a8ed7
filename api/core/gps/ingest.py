"""GPS ingest: decode, validate against the courier's last accepted fix, publish to JetStream.

Shared by the WebSocket and HTTP paths. Nothing rejected is published; every rejection is
counted by reason. The HTTP path publishes with JetStream acks and awaits them, under the
courier's lock, before answering 202 and before recording the batch's newest fix as the
courier's last: "accepted" means "stored in the stream", and a batch that failed (503) is
accepted again when resent. The socket path never waits on the stream: its accepted fixes are
coalesced, from every device socket of the process, into one ``loc.many`` message per region
every ``flush_s`` (10 ms; `CourierLocatedMany`), published with a JetStream ack in the
background and retried under the same message id; fixes never acked are counted
(``gps_fixes_failed_total``), un-recorded as the courier's last fix and reported to the device
(``ERROR not_stored``), which sends them again. Devices send one fix per message, so
per-message costs (NATS, every hub) are paid once per flush instead of once per fix.

Whatever JetStream acked, on either path, is handed to ``file_stored`` (the process's
`api.core.gps.indexer.Indexer`): the process that stored a fix files it into the live index.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence

import msgspec
import nats.errors
from nats.aio.client import Client as NATS
from nats.js import JetStreamContext
from prometheus_client import Counter, Gauge, Histogram

from api.clock import Clock, wall_ms
from api.observability import Metrics
from api.stores.live_index import LiveIndex
from geo.cells import region_of
from geo.fixes import Fix, LastFix, RejectReason, validate_batch
from streams.catalog import Names
from streams.events import CourierLocatedBatch, CourierLocatedMany, LocFix, LocRun, encode

log = logging.getLogger("homechef.ingest")



class IngestMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.accepted = Counter("gps_fixes_accepted_total", "GPS fixes accepted and published",
                                registry=metrics.registry)
        self.rejected = Counter("gps_fixes_rejected_total", "GPS fixes rejected, by reason",
                                ["reason"], registry=metrics.registry)
        self.failed = Counter("gps_fixes_failed_total",
                              "Fixes accepted from sockets that JetStream never acknowledged",
                              registry=metrics.registry)
        self.outside_zones = Counter("gps_fixes_outside_zones_total",
                                     "Accepted fixes outside every service zone",
                                     registry=metrics.registry)
        self.index_waiting = Gauge(
            "gps_index_waiting_couriers", "Couriers whose newest stored fix awaits the index",
            registry=metrics.registry)
        self.index_write_failures = Counter(
            "gps_index_write_failures_total", "Writes to the live index that failed (retried)",
            registry=metrics.registry)
        self.fix_to_index = Histogram(
            "gps_fix_to_index_seconds", "Accept-to-index latency of a fix",
            registry=metrics.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
        )
        # Pre-create the label children so every reason shows (as 0) from the start.
        for reason in RejectReason:
            self.rejected.labels(reason.value)


class Verdict(msgspec.Struct, frozen=True):
    accepted: int
    rejected: list[tuple[int, RejectReason]]
    outside_zones: int = 0


class LastFixCache:
    """Per-process LRU of each courier's last accepted fix, filled from Redis on a miss.

    A courier's device socket lives in one process, so its fixes are validated here in
    order; the indexer's newer-than guard protects the index when two processes disagree.
    Misses are looked up together: those of one event-loop turn share one pipelined read (a
    few thousand devices connecting at once would otherwise take a pooled Redis connection
    each, and the pool's timeouts answered their fixes ``unavailable`` over and over).
    """

    LOOKUP_CHUNK = 500

    def __init__(self, index: LiveIndex, capacity: int = 200_000) -> None:
        self._index = index
        self._capacity = capacity
        self._data: OrderedDict[str, LastFix] = OrderedDict()
        self._misses: dict[str, asyncio.Future[LastFix | None]] = {}
        self._lookups: set[asyncio.Task[None]] = set()

    async def get(self, courier_id: str) -> LastFix | None:
        last = self._data.get(courier_id)
        if last is not None:
            self._data.move_to_end(courier_id)
            return last
        future = self._misses.get(courier_id)
        if future is None:
            loop = asyncio.get_running_loop()
            future = self._misses[courier_id] = loop.create_future()
            future.add_done_callback(_retrieve)
            if len(self._misses) == 1:
                loop.call_soon(self._look_up)
        # Shielded: a cancelled waiter must not cancel the look-up another one awaits.
        return await asyncio.shield(future)

    def _look_up(self) -> None:
        misses, self._misses = self._misses, {}
        ids = list(misses)
        for i in range(0, len(ids), self.LOOKUP_CHUNK):
            chunk = {c: misses[c] for c in ids[i:i + self.LOOKUP_CHUNK]}
            task = asyncio.create_task(self._fetch(chunk))
            self._lookups.add(task)
            task.add_done_callback(self._lookups.discard)

    async def _fetch(self, misses: dict[str, asyncio.Future[LastFix | None]]) -> None:
        try:
            found = await self._index.positions(list(misses))
        except asyncio.CancelledError:
            for future in misses.values():
                future.cancel()
            raise
        except Exception as exc:
            for future in misses.values():
                if not future.done():
                    future.set_exception(exc)
            return
        for (courier_id, future), pos in zip(misses.items(), found, strict=True):
            last = None
            if pos is not None:
                last = self._data.get(courier_id)  # a fix accepted meanwhile is newer
                if last is None:
                    last = LastFix(lat=pos.lat, lng=pos.lng, ts_ms=pos.ts_ms)
                    self.put(courier_id, last)
            if not future.done():
                future.set_result(last)

    def cached(self, courier_id: str) -> LastFix | None:
        """The cached last fix, without asking Redis (None: not cached)."""
        last = self._data.get(courier_id)
        if last is not None:
            self._data.move_to_end(courier_id)
        return last

    def put(self, courier_id: str, last: LastFix) -> None:
        self._data[courier_id] = last
        self._data.move_to_end(courier_id)
        if len(self._data) > self._capacity:
            self._data.popitem(last=False)

    def forget(self, courier_id: str) -> None:
        self._data.pop(courier_id, None)


def _retrieve(future: asyncio.Future[LastFix | None]) -> None:
    """Mark a look-up's exception as seen (every waiter may have gone)."""
    if not future.cancelled():
        future.exception()


ZoneCheck = Callable[[float, float], bool]


class KeyedLocks:
    """One asyncio lock per key, kept only while someone holds or waits for it.

    The map stays as small as the number of keys in flight, so it needs no eviction (a
    wholesale clear would hand a second lock to a key whose first one is still held).
    `hold` returns a plain context manager, not a generator-based one: it runs once per
    device message, and the generator machinery was a visible share of the ingest profile.
    """

    def __init__(self) -> None:
        self._entries: dict[str, _Entry] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def hold(self, key: str) -> _Hold:
        return _Hold(self._entries, key)

    def held(self, key: str) -> bool:
        """Someone holds or waits for ``key``'s lock."""
        return key in self._entries


class _Entry:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0


class _Hold:
    __slots__ = ("_entries", "_entry", "_key")

    def __init__(self, entries: dict[str, _Entry], key: str) -> None:
        self._entries = entries
        self._key = key
        entry = entries.get(key)
        if entry is None:
            entry = entries[key] = _Entry()
        self._entry = entry

    async def __aenter__(self) -> None:
        entry = self._entry
        entry.users += 1
        try:
            await entry.lock.acquire()
        except BaseException:
            self._leave()
            raise

    async def __aexit__(self, *exc: object) -> None:
        self._entry.lock.release()
        self._leave()

    def _leave(self) -> None:
        entry = self._entry
        entry.users -= 1
        if entry.users == 0 and self._entries.get(self._key) is entry:
            del self._entries[self._key]


class Ingest:
    def __init__(
        self,
        nc: NATS,
        js: JetStreamContext,
        names: Names,
        metrics: IngestMetrics,
        last_fixes: LastFixCache,
        *,
        file_stored: Callable[[Iterable[LocRun]], None],
        in_service_area: ZoneCheck | None = None,
        clock: Clock = wall_ms,
        flush_s: float = 0.01,
        flush_runs: int = 1000,
        publish_attempts: int = 4,
        publish_timeout_s: float = 2.0,
    ) -> None:
        self._publish_attempts = publish_attempts
        self._publish_timeout_s = publish_timeout_s
        self._js = js
        self._nc = nc
        self._names = names
        self._metrics = metrics
        self.last_fixes = last_fixes
        self._in_service_area = in_service_area
        self._file_stored = file_stored
        self._clock = clock
        # Per-courier locks keep one courier's concurrent batches (two HTTP requests) in order.
        self._locks = KeyedLocks()
        self._flush_s = flush_s
        self._flush_runs = flush_runs
        self._pending: dict[str, list[LocRun]] = {}
        self._pending_runs = 0
        # Socket fixes accepted / outside every zone since the last flush: added to the
        # counters once per flush, not once per device message (a counter's lock and call
        # were ~4 % of core CPU at one fix per message).
        self._counted_accepted = 0
        self._counted_outside = 0
        self._flush_timer: asyncio.TimerHandle | None = None
        self._publishing: set[asyncio.Task[None]] = set()
        self._msg_prefix = f"{uuid.uuid4().hex[:12]}-"
        self._msg_seq = 0
        self.failed = 0
        """Fixes accepted from sockets whose coalesced message JetStream never acked."""
        self.on_accepted: Callable[[str], None] | None = None
        """Told (synchronously) the courier of every batch with an accepted fix: a courier
        re-asserts its state after a rebuild (api/core/dispatch/rebuild.py)."""
        self.on_not_stored: Callable[[str, int, int], None] | None = None
        """Told (courier, first ts, last ts) of socket fixes JetStream never acked, so the
        device can send them again (api/core/tracking/service.py pushes ERROR not_stored)."""

    # -- device sockets: coalesced publishing ----------------------------------------------------
    def _coalesce(self, region: str, run: LocRun) -> None:
        runs = self._pending.get(region)
        if runs is None:
            runs = self._pending[region] = []
        runs.append(run)
        self._pending_runs += 1
        if self._pending_runs >= self._flush_runs:
            self.flush()
        elif self._flush_timer is None:
            self._flush_timer = asyncio.get_running_loop().call_later(self._flush_s, self.flush)

    def flush(self) -> None:
        """Publish every pending region's fixes now (one `CourierLocatedMany` per region)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        pending, self._pending, self._pending_runs = self._pending, {}, 0
        if self._counted_accepted:
            self._metrics.accepted.inc(self._counted_accepted)
            self._counted_accepted = 0
        if self._counted_outside:
            self._metrics.outside_zones.inc(self._counted_outside)
            self._counted_outside = 0
        for region, runs in pending.items():
            self._msg_seq += 1
            task = asyncio.create_task(self._publish(
                self._names.location_batch(region), CourierLocatedMany(runs=tuple(runs)),
                f"{self._msg_prefix}{self._msg_seq}"))
            self._publishing.add(task)
            task.add_done_callback(self._publishing.discard)

    async def _publish(self, subject: str, event: CourierLocatedMany, msg_id: str) -> None:
        """Publish with a JetStream ack; retried under the same message id (the stream's
        duplicate window drops a copy whose first ack was lost). Fixes never acked are
        counted as failed (``gps_fixes_failed_total``), never silently lost."""
        payload = encode(event)
        headers = {"Nats-Msg-Id": msg_id}
        for attempt in range(self._publish_attempts):
            try:
                await self._js.publish(subject, payload, timeout=self._publish_timeout_s,
                                       headers=headers)
                self._file_stored(event.runs)
                return
            except (nats.errors.Error, TimeoutError) as exc:
                if attempt + 1 == self._publish_attempts:
                    n = sum(len(r.fixes) for r in event.runs)
                    self.failed += n
                    self._metrics.failed.inc(n)
                    log.warning("%d fixes not stored on %s after %d attempts: %r", n, subject,
                                self._publish_attempts, exc)
                    self._not_stored(event)
                    return
                await asyncio.sleep(0.05 * 2 ** attempt)

    def _not_stored(self, event: CourierLocatedMany) -> None:
        """Fixes JetStream never acked were never seen: a courier's cached last fix that is
        one of them (nothing newer was accepted since) is forgotten, so the next fix is
        validated against what is stored (the live index) and the device's resend of the
        same fixes is accepted; and the device is told (`on_not_stored`)."""
        spans: dict[str, tuple[int, int]] = {}
        for run in event.runs:
            first, last = run.fixes[0].ts, run.fixes[-1].ts  # oldest first
            span = spans.get(run.courier_id)
            spans[run.courier_id] = (first, last) if span is None else (
                min(span[0], first), max(span[1], last))
        for courier_id, (first, last) in spans.items():
            cached = self.last_fixes.cached(courier_id)
            if cached is not None and cached.ts_ms <= last:
                self.last_fixes.forget(courier_id)
            if self.on_not_stored is not None:
                self.on_not_stored(courier_id, first, last)

    async def drain(self) -> None:
        """Publish what is pending now and wait for every outstanding publish (acked, or
        counted as failed)."""
        self.flush()
        while self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)

    async def close(self) -> None:
        """Shutdown: `drain` (accepted socket fixes are not left unpublished)."""
        await self.drain()

    def submit_now(self, courier_id: str, items: Sequence[Fix | RejectReason]) -> Verdict | None:
        """`submit` of a device socket (``wait_acks=False``) without awaiting anything, when it
        can: the courier's lock is free and its last fix cached. None: it cannot (call
        `submit`). Being synchronous it holds the event loop, so it needs no lock of its own.
        """
        if self._locks.held(courier_id):
            return None
        last = self.last_fixes.cached(courier_id)
        if last is None:
            return None
        return self._coalesced(courier_id, items, last, self._clock())

    def _coalesced(self, courier_id: str, items: Sequence[Fix | RejectReason],
                   last: LastFix | None, now_ms: int) -> Verdict:
        """Validate, count and queue for the region's next ``loc.many`` (no awaits)."""
        verdict = validate_batch(items, last, now_ms)
        metrics = self._metrics
        for _, reason in verdict.rejected:
            metrics.rejected.labels(reason.value).inc()
        accepted = verdict.accepted
        if not accepted:
            return Verdict(accepted=0, rejected=verdict.rejected)
        in_area = self._in_service_area
        # Counted before queueing: the flush that publishes them adds them to the counters.
        self._counted_accepted += len(accepted)
        if len(accepted) == 1:  # what a phone sends: no runs to split
            fix = accepted[0]
            flagged = in_area is not None and not in_area(fix.lat, fix.lng)
            self._counted_outside += flagged
            self._coalesce(region_of(fix.lat, fix.lng), LocRun(courier_id, now_ms, (LocFix(
                fix.lat, fix.lng, fix.ts, fix.speed_mps, fix.heading_deg, fix.accuracy_m,
                flagged),)))
            outside = int(flagged)
        else:
            outside = self._coalesce_runs(courier_id, accepted, now_ms)
        if verdict.last is not None:
            self.last_fixes.put(courier_id, verdict.last)
        if self.on_accepted is not None:
            self.on_accepted(courier_id)
        return Verdict(accepted=len(accepted), rejected=verdict.rejected,
                       outside_zones=outside)

    def _coalesce_runs(self, courier_id: str, accepted: Sequence[Fix], now_ms: int) -> int:
        """Queue a courier's accepted fixes as one run per stretch in one region; returns
        how many are outside every zone."""
        outside = 0
        in_area = self._in_service_area
        run_region = ""
        run: list[LocFix] = []
        for fix in accepted:
            flagged = in_area is not None and not in_area(fix.lat, fix.lng)
            outside += flagged
            self._counted_outside += flagged
            region = region_of(fix.lat, fix.lng)
            loc = LocFix(fix.lat, fix.lng, fix.ts, fix.speed_mps, fix.heading_deg,
                         fix.accuracy_m, flagged)
            if run and region != run_region:
                self._coalesce(run_region, LocRun(courier_id, now_ms, tuple(run)))
                run = []
            run_region = region
            run.append(loc)
        self._coalesce(run_region, LocRun(courier_id, now_ms, tuple(run)))
        return outside

    async def submit(
        self, courier_id: str, items: Sequence[Fix | RejectReason], *, wait_acks: bool
    ) -> Verdict:
        """Validate and publish one courier's fixes; ``wait_acks`` waits for JetStream.

        The accepted fixes go out as one `CourierLocatedBatch` per run of fixes in the same
        region (normally one message per device message), not one message per fix.
        """
        async with self._locks.hold(courier_id):
            now_ms = self._clock()
            last = await self.last_fixes.get(courier_id)
            if not wait_acks:
                # Device sockets must not wait on the stream: their fixes join the region's
                # pending `loc.many`, published (with acks) within flush_s.
                return self._coalesced(courier_id, items, last, now_ms)
            verdict = validate_batch(items, last, now_ms)
            for _, reason in verdict.rejected:
                self._metrics.rejected.labels(reason.value).inc()
            outside = 0
            futures = []
            runs: list[tuple[str, list[LocFix]]] = []
            in_area = self._in_service_area
            for fix in verdict.accepted:
                flagged = in_area is not None and not in_area(fix.lat, fix.lng)
                outside += flagged
                region = region_of(fix.lat, fix.lng)
                loc = LocFix(fix.lat, fix.lng, fix.ts, fix.speed_mps, fix.heading_deg,
                             fix.accuracy_m, flagged)
                if runs and runs[-1][0] == region:
                    runs[-1][1].append(loc)
                else:
                    runs.append((region, [loc]))
            stored: list[LocRun] = []
            for region, fixes in runs:
                stored.append(run := LocRun(courier_id, now_ms, tuple(fixes)))
                payload = encode(CourierLocatedBatch(
                    courier_id=courier_id, received_ms=now_ms, fixes=run.fixes))
                subject = self._names.location(region, courier_id)
                futures.append(await self._js.publish_async(subject, payload))
            if futures:
                try:
                    # Bounded: while NATS is down the acks never come (the client buffers
                    # the publishes until it reconnects); the caller gets a 503, not a hung
                    # request.
                    await asyncio.wait_for(asyncio.gather(*futures), self._publish_timeout_s)
                except TimeoutError:
                    raise nats.errors.TimeoutError from None
                self._file_stored(stored)
            # Recorded only once JetStream acked every message, still under the courier's
            # lock: a batch that failed leaves the last fix as it was, so the client's resend
            # of the same fixes is accepted instead of refused as `not_newer`.
            if verdict.last is not None and verdict.accepted:
                self.last_fixes.put(courier_id, verdict.last)
        if verdict.accepted:
            self._metrics.accepted.inc(len(verdict.accepted))
            if self.on_accepted is not None:
                self.on_accepted(courier_id)
        if outside:
            self._metrics.outside_zones.inc(outside)
        return Verdict(accepted=len(verdict.accepted), rejected=verdict.rejected,
                       outside_zones=outside)
