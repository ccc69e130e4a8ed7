"""Per-socket outgoing buffers and per-key rate limits: the back-pressure policy of the hubs.

The hub's NATS callbacks never await a socket: they put encoded messages into each socket's
`Outbox` (no I/O, no await) and a writer task per socket drains it. Two kinds of message:

- *state* messages (a courier's position, an order's location, a heat map) are coalesced in a
  slot per key: a slow client sees only the latest one of each, never a backlog;
- *events* (status changes, offers, new orders) are never dropped or merged; they queue in
  order. Their backlog is bounded in bytes: a client that falls so far behind that it exceeds
  the bound is closed with `CloseCode.SLOW_CONSUMER` and resumes with ``?since=``.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from enum import IntEnum
from typing import Generic, TypeVar

__all__ = ["CloseCode", "Outbox", "Throttle"]


class CloseCode(IntEnum):
    """WebSocket close codes the hubs use (4000-4999 are application codes)."""

    NORMAL = 1000
    GOING_AWAY = 1001
    """The server is shutting down: reconnect (with ``?since=``) to another process."""
    TRY_AGAIN_LATER = 1013
    """A store (Redis, NATS, PostgreSQL) is unavailable: reconnect after a short backoff."""
    BAD_REQUEST = 4400
    """A malformed query parameter (``since``) or client message."""
    UNAUTHORIZED = 4401
    FORBIDDEN = 4403
    """Authenticated, but not the order's customer, chef or staff."""
    NOT_FOUND = 4404
    """No such order (or a share link that names none)."""
    GONE = 4410
    """A share link that expired, or whose order ended more than SHARE_GRACE_S ago."""
    HEARTBEAT_TIMEOUT = 4408
    """Nothing (not even PONG) heard from the client within the idle timeout."""
    SLOW_CONSUMER = 4008
    """The client's unsent event backlog exceeded its limit."""


class Outbox:
    """One socket's outgoing messages: ordered events plus coalesced state slots.

    Not thread-safe; used from the event loop only. ``take`` is the single consumer.
    """

    __slots__ = ("_events", "_events_bytes", "_max_event_bytes", "_max_slots", "_slots",
                 "_wake", "closed", "direct", "dropped", "on_overflow", "overflowed", "sent")

    def __init__(self, *, max_event_bytes: int, max_slots: int) -> None:
        self._events: deque[bytes] = deque()
        self._events_bytes = 0
        self._max_event_bytes = max_event_bytes
        self._slots: dict[str, bytes] = {}
        self._max_slots = max_slots
        self._wake = asyncio.Event()
        self.closed = False
        self.overflowed = False
        """True once the event backlog exceeded its bound (the socket must be closed)."""
        self.dropped = 0
        """State messages lost because every slot was taken by other keys."""
        self.sent = 0
        self.on_overflow: Callable[[], None] | None = None
        """Called once when the backlog first exceeds its bound (the socket's closer)."""
        self.direct: Callable[[bytes], bool] | None = None
        """Set by the socket while it can write at once (its fast lane, writable, nothing
        queued): a push with nothing queued goes straight to it instead of waking the writer.
        It returns False when the socket can take no more now; the outbox then unsets it and
        queues (and coalesces, and bounds) as usual until the writer sets it again."""

    def push_event(self, data: bytes) -> bool:
        """Queue an event (never dropped); False when the backlog is over its bound."""
        if self.closed or self.overflowed:
            return False
        direct = self.direct
        if direct is not None and not self._events and not self._slots:
            self.sent += 1
            if not direct(data):
                self.direct = None
            return True
        self._events.append(data)
        self._events_bytes += len(data)
        if self._events_bytes > self._max_event_bytes:
            self.overflowed = True
            if self.on_overflow is not None:
                self.on_overflow()
        self._wake.set()
        return not self.overflowed

    def push_state(self, key: str, data: bytes) -> None:
        """Keep only the latest message per ``key`` until the writer takes it."""
        if self.closed:
            return
        direct = self.direct
        if direct is not None and not self._events and not self._slots:
            self.sent += 1
            if not direct(data):
                self.direct = None
            return
        slots = self._slots
        if key not in slots and len(slots) >= self._max_slots:
            self.dropped += 1
            return
        slots[key] = data
        self._wake.set()

    @property
    def backlog_bytes(self) -> int:
        return self._events_bytes

    def pending(self) -> int:
        return len(self._events) + len(self._slots)

    def close(self) -> None:
        """Wake the writer so it can stop; later pushes are ignored."""
        self.closed = True
        self.direct = None
        self._wake.set()

    async def take(self) -> list[bytes]:
        """Wait for messages and return them all: events in order, then the state slots.

        Returns an empty list once closed (or overflowed) and drained of nothing new.
        """
        while True:
            if self.overflowed or (self.closed and not self._events and not self._slots):
                return []
            if self._events or self._slots:
                out = list(self._events)
                self._events.clear()
                self._events_bytes = 0
                if self._slots:
                    out.extend(self._slots.values())
                    self._slots.clear()
                self._wake.clear()
                self.sent += len(out)
                return out
            self._wake.clear()
            await self._wake.wait()


T = TypeVar("T")


class Throttle(Generic[T]):
    """At most one item per key per ``interval_s``; the latest held item goes out when due.

    Leading and trailing edge: the first item after a quiet interval passes at once, later
    ones within the interval replace each other and the last is released by `due`. Pure: the
    caller passes ``now_s``.
    """

    __slots__ = ("_interval_s", "_last", "_next_sweep_s", "_pending")

    def __init__(self, interval_s: float) -> None:
        self._interval_s = interval_s
        self._last: dict[str, float] = {}
        self._pending: dict[str, T] = {}
        self._next_sweep_s = 0.0

    def offer(self, key: str, item: T, now_s: float) -> T | None:
        """The item if it may go out now; else None (it is held until `due`)."""
        last = self._last.get(key)
        if last is None or now_s - last >= self._interval_s:
            self._last[key] = now_s
            self._pending.pop(key, None)
            return item
        self._pending[key] = item
        return None

    def due(self, now_s: float) -> list[T]:
        """Held items whose interval has passed (each key's latest); forgets idle keys."""
        out: list[T] = []
        interval = self._interval_s
        for key in [k for k in self._pending if now_s - self._last[k] >= interval]:
            out.append(self._pending.pop(key))
            self._last[key] = now_s
        if now_s >= self._next_sweep_s:
            # Bound memory: keys quiet for a whole interval pass at once anyway.
            self._next_sweep_s = now_s + 10 * interval
            self._last = {k: t for k, t in self._last.items()
                          if now_s - t < interval or k in self._pending}
        return out

    def held(self) -> int:
        return len(self._pending)
