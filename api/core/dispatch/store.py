"""Dispatch state in Redis: couriers, orders, offers and region queues, changed only by Lua
(the scripts of `api.core.dispatch.lua`, checking the tables of `dispatch.lifecycle`).

Every transition is one script, so it is atomic across any number of core processes: a
courier is claimed (idle → offered) in the same step that marks its order offered, which is
why no courier ever holds two open offers and no order ever has two accepted couriers.

Keys (P = ``<ns>:d``): ``P:c:<courier>`` courier hash, ``P:o:<order>`` order hash,
``P:f:<offer>`` offer hash, ``P:q:<region>`` queue (order → entry ms), ``P:regions``,
``P:fexp`` open offers by expiry, ``P:dec:<order>`` couriers that declined it,
``P:os:<state>`` orders by state (fleet listing), ``P:lease:<region>`` round leases
(``P:watchdog:lease`` the stall watchdog's), ``P:rebuild`` the lease of a rebuild,
``P:cs:<courier>`` orders a courier holds (more than one when stacked), ``P:veh`` each
courier's vehicle (courier -> vehicle, the courier hash's ``vehicle`` kept in a hash a round
reads with one HMGET per 4,000 couriers), ``P:outbox``
dispatch.* events not yet known to be published: a transition's script appends its event
there in the same atomic step, the publisher removes it once JetStream has acked it, and the
relay publishes whatever is left (a crash or NATS outage in between).
Every key carries the hash tag ``{d}`` (P = ``<ns>:{d}``, the generation ``P:gen``, and the
live index's status hash ``<ns>:geo:status:{d}``), so on a Redis Cluster a namespace's
dispatch state is one hash slot: every script runs on one shard and stays atomic however many
couriers and orders it touches. Each script call names that slot in KEYS[1] (the prefix P),
which is how a cluster client routes it; the scripts still build the other keys from P
(docs/architecture.md, "Redis Cluster").

Reads come back typed: `OrderRecord`, `CourierRecord`, `OfferRecord`, `Transition` with a
`TransitionResult`, and the round's bulk reads as the planner's own Structs (`round_orders`:
`dispatch.round.RoundOrder`s with their declines, `stack_inputs`: `HeldOrders`), built from
the scripts' replies without a dict per order. Only `offer_chunks` answers in plain strings
(`ClaimResult` values; a round makes thousands). `offer` and `offer_stacked` run one claim
each: the reference `offer_many` is tested against.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import uuid
from collections.abc import AsyncGenerator, Sequence
from enum import StrEnum
from typing import Any

import msgspec
import redis.asyncio as aioredis
from redis.commands.core import AsyncScript

from api.core.dispatch.lua import script
from api.stores.scripts import load_for
from dispatch.lifecycle import CourierState, OfferState, OrderDispatchState
from dispatch.round import HeldOrders, RoundOrder
from geo.index_model import DISPATCH_TAG
from geo.travel import Vehicle
from streams.wire import Point

DAY_MS = 86_400_000


class KeyTtls(msgspec.Struct, frozen=True, kw_only=True):
    """How long closed things outlive their last change (the scripts' named TTLs)."""

    offer_ms: int = DAY_MS
    """An offer's hash ``P:f:<offer>`` after it is made (open ones expire in seconds; a late
    accept or a console read still finds why it closed)."""
    declines_ms: int = DAY_MS
    """An order's declined set ``P:dec:<order>`` after its latest decline or expiry."""
    closed_order_ms: int = DAY_MS
    """A delivered or cancelled order's hash ``P:o:<order>`` (the timeline, a retried status
    update, a redelivered cancellation still find it)."""

    def lua(self) -> dict[str, int]:
        """The TTLs by the names the scripts use."""
        return {"OFFER_TTL_MS": self.offer_ms, "DECLINES_TTL_MS": self.declines_ms,
                "CLOSED_ORDER_TTL_MS": self.closed_order_ms}


CLAIMS_PER_CALL = 500
"""Default claims per `offer_many` script call: a script holds Redis for its whole run (~10-20
ms per 500 claims here), so a round's 2,000 claims go as four calls in one pipeline rather
than one call holding every other client for ~4 times that. (At most ~4,000: the batch's
offers are `unpack`ed into single commands at its end, and Lua's stack limit is 8,000
values.)"""


class OfferClaim(msgspec.Struct, frozen=True, kw_only=True):
    """One offer of a round: an idle courier (``held`` None) or a courier heading to a chef
    that holds exactly ``held`` (stacking, up to ``max_stack`` orders)."""

    courier_id: str
    order_id: str
    held: tuple[str, ...] | None = None
    max_stack: int = 1


class ClaimResult(StrEnum):
    """What a claim (`DispatchStore.offer`, `offer_stacked`, one entry of `offer_chunks`)
    answered: ``ok`` or why it was refused."""

    OK = "ok"
    COURIER_BUSY = "courier_busy"
    ORDER_TAKEN = "order_taken"
    DECLINED_BEFORE = "declined_before"
    STACK_FULL = "stack_full"
    COURIER_CHANGED = "courier_changed"


class OfferAction(StrEnum):
    ACCEPT = "accept"
    DECLINE = "decline"
    EXPIRE = "expire"


class TransitionResult(StrEnum):
    """What a transition script answered: the move made, or why none was."""

    ACCEPTED = "accepted"
    DECLINED = "declined"
    EXPIRED = "expired"
    ASSIGNED = "assigned"
    UNASSIGNED = "unassigned"
    PICKED_UP = "picked_up"
    DELIVERING = "delivering"
    DELIVERED = "delivered"
    CANCELLED = "cancelled"
    ONLINE = "online"
    """The courier is online; ``detail`` is its state (idle, or what it already was)."""
    OFFLINE = "offline"
    NOOP = "noop"
    """A cancellation of an order already closed (``detail``: its state)."""
    NO_OFFER = "no_offer"
    """No such offer, or another courier's."""
    NO_ORDER = "no_order"
    """No such order, or (progress) not held by that courier."""
    NOT_OPEN = "not_open"
    """The offer is closed already (``detail``: its `OfferState`)."""
    NOT_DUE = "not_due"
    """An expiry before the offer's time."""
    ORDER_STATE = "order_state"
    """The fleet may not do that while the order is ``detail``."""
    BAD_TRANSITION = "bad_transition"
    """A courier may not report that while the order is ``detail``."""
    COURIER_BUSY = "courier_busy"
    """A force-assign to a courier that is not idle."""
    BUSY = "busy"
    """Going offline while ``detail`` (the courier's state)."""


_WITH_DETAIL = frozenset({TransitionResult.NOT_OPEN, TransitionResult.BAD_TRANSITION,
                          TransitionResult.ORDER_STATE, TransitionResult.BUSY,
                          TransitionResult.ONLINE, TransitionResult.NOOP})


class Transition(msgspec.Struct, frozen=True, kw_only=True):
    """Outcome of a script: its `TransitionResult`, the order and courier it concerned, and
    the state that refused it (``detail``)."""

    result: TransitionResult
    order_id: str = ""
    courier_id: str = ""
    detail: str = ""


def _transition(raw: Any) -> Transition:
    items = [_s(x) for x in raw]
    result = TransitionResult(items[0])
    if result in _WITH_DETAIL:
        return Transition(result=result, detail=items[1] if len(items) > 1 else "")
    items += [""] * (3 - len(items))
    return Transition(result=result, order_id=items[1], courier_id=items[2])


class OrderRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A dispatch order as its hash ``P:o:<order>`` holds it. A cancellation of an order
    dispatch never saw leaves only the state (every other field unset)."""

    order_id: str
    state: OrderDispatchState
    region: str = ""
    number: str = ""
    chef_id: str = ""
    pickup: Point | None = None
    dropoff: Point | None = None
    ready_ms: int | None = None
    """When the food is (expected) ready, epoch ms; the chef's ready mark overwrites it."""
    promised_ms: int | None = None
    courier_id: str | None = None
    """The courier offered or holding it."""
    offer_id: str | None = None
    """Its open offer."""
    created_ms: int | None = None
    enter_ms: int | None = None
    """When it enters (entered) its region's queue."""
    assigned_ms: int | None = None
    picked_up_ms: int | None = None
    delivering_ms: int | None = None
    delivered_ms: int | None = None
    food_ready_ms: int | None = None
    """When the chef marked the food ready (None: not yet)."""


class CourierRecord(msgspec.Struct, frozen=True, kw_only=True):
    """A courier's dispatch hash ``P:c:<courier>`` (offline when it has none)."""

    courier_id: str
    state: CourierState
    vehicle: Vehicle | None = None
    offer_id: str | None = None
    """Its open offer (at most one)."""
    order_id: str | None = None
    """The first order it holds (or is offered), for single-order clients."""
    updated_ms: int | None = None


class OfferRecord(msgspec.Struct, frozen=True, kw_only=True):
    """An offer's hash ``P:f:<offer>``."""

    offer_id: str
    order_id: str
    courier_id: str
    state: OfferState
    expires_ms: int
    created_ms: int


def _int(raw: str | None) -> int | None:
    return int(raw) if raw else None


def _point(lat: str | None, lng: str | None) -> Point | None:
    return Point(float(lat), float(lng)) if lat and lng else None


def _order_record(order_id: str, h: dict[str, str]) -> OrderRecord:
    return OrderRecord(
        order_id=order_id, state=OrderDispatchState(h["state"]), region=h.get("region", ""),
        number=h.get("number", ""), chef_id=h.get("chef", ""),
        pickup=_point(h.get("plat"), h.get("plng")),
        dropoff=_point(h.get("dlat"), h.get("dlng")),
        ready_ms=_int(h.get("ready_ms")), promised_ms=_int(h.get("promised_ms")),
        courier_id=h.get("courier") or None, offer_id=h.get("offer") or None,
        created_ms=_int(h.get("created_ms")), enter_ms=_int(h.get("enter_ms")),
        assigned_ms=_int(h.get("assigned_ms")), picked_up_ms=_int(h.get("picked_up_ms")),
        delivering_ms=_int(h.get("delivering_ms")), delivered_ms=_int(h.get("delivered_ms")),
        food_ready_ms=_int(h.get("food_ready_ms")))


ROUND_ORDER_FIELDS = ("plat", "plng", "dlat", "dlng", "ready_ms", "promised_ms", "chef")
"""What a round reads of each order (a `RoundOrder`: costs, stacking, the offer), in the
order `round_orders` asks the script for them."""
_ALL_ROUND_FIELDS = 2 * len(ROUND_ORDER_FIELDS)


def _round_order(order_id: str, declined: Sequence[str], pairs: Sequence[str]) -> RoundOrder:
    """A `RoundOrder` from a script's ``field, value, ...`` list of its hash: the
    `ROUND_ORDER_FIELDS` in that order (`round_orders`, every field there), or any fields
    in any order (a whole hash, or one lacking some field)."""
    if len(pairs) == _ALL_ROUND_FIELDS and pairs[0] == "plat" and pairs[12] == "chef":
        plat, plng, dlat, dlng, ready, promised, chef = pairs[1::2]
    else:
        h = dict(zip(pairs[::2], pairs[1::2], strict=True))
        plat, plng, dlat, dlng = h["plat"], h["plng"], h["dlat"], h["dlng"]
        ready, promised, chef = h["ready_ms"], h["promised_ms"], h.get("chef", "")
    return RoundOrder(order_id=order_id, chef=chef, pickup_lat=float(plat),
                      pickup_lng=float(plng), dropoff_lat=float(dlat), dropoff_lng=float(dlng),
                      ready_ms=int(ready), promised_ms=int(promised),
                      declined=frozenset(declined))


_COURIER_STATES = {s.value.encode(): s for s in CourierState}
_VEHICLES = {v.value.encode(): v for v in Vehicle}


def _courier_record(courier_id: str, raw: dict[bytes, bytes]) -> CourierRecord:
    """A courier hash (HGETALL reply) as its record: offline when it has none. Read from
    the bytes as they come (a live-search round reads thousands)."""
    if not raw:
        return CourierRecord(courier_id=courier_id, state=CourierState.OFFLINE)
    offer, order, updated = raw.get(b"offer"), raw.get(b"order"), raw.get(b"updated")
    return CourierRecord(courier_id=courier_id, state=_COURIER_STATES[raw[b"state"]],
                         vehicle=_VEHICLES.get(raw.get(b"vehicle", b"")),
                         offer_id=offer.decode() if offer else None,
                         order_id=order.decode() if order else None,
                         updated_ms=int(updated) if updated else None)


def _str_map(raw: dict[bytes, bytes]) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


async def _hgetall(redis: aioredis.Redis, key: str) -> dict[bytes, bytes]:
    raw: Any = await redis.hgetall(key)
    return dict(raw)


def offer_ids(n: int) -> list[str]:
    """`n` random offer ids (32 hex digits, like ``uuid4().hex``; one system call)."""
    raw = os.urandom(16 * n).hex()
    return [raw[i:i + 32] for i in range(0, 32 * n, 32)]


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def dispatch_prefix(namespace: str) -> str:
    """P, the prefix of a namespace's dispatch keys, with the dispatch slot's hash tag."""
    return f"{namespace}:{DISPATCH_TAG}"


class _SlotScript:
    """A registered script called with KEYS[1] = P unless given keys (all in P's slot): the
    key a Redis Cluster client routes the call by."""

    __slots__ = ("_script", "_slot_key")

    def __init__(self, script: AsyncScript, slot_key: str) -> None:
        self._script = script
        self._slot_key = slot_key

    async def __call__(self, keys: Sequence[Any] | None = None,
                       args: Sequence[Any] | None = None, client: Any = None) -> Any:
        await load_for(self._script, client)
        return await self._script(keys=keys or [self._slot_key], args=args, client=client)


class DispatchStore:
    """Dispatch state under ``<namespace>:d``; ``geo_status_key`` is the live index's courier
    status hash, kept equal to the couriers' states. ``claims_per_call``: claims per
    `offer_many` script call (`CLAIMS_PER_CALL`); ``ttls``: how long closed things are kept."""

    def __init__(self, redis: aioredis.Redis, namespace: str, geo_status_key: str, *,
                 claims_per_call: int = CLAIMS_PER_CALL, ttls: KeyTtls | None = None) -> None:
        self.redis = redis
        self.p = dispatch_prefix(namespace)
        self.generation_key = f"{self.p}:gen"
        """The generation of this Redis's dispatch state (`generation`): absent after a
        flush or on a new Redis, so its absence tells the dispatcher to rebuild."""
        self.geo_status = geo_status_key
        self.claims_per_call = claims_per_call
        self.vehicles_key = f"{self.p}:veh"
        """Courier -> vehicle, written with the courier hash's field (`set_availability`)."""
        constants = (ttls or KeyTtls()).lua()

        def r(name: str) -> Any:
            return _SlotScript(redis.register_script(script(name, constants)), self.p)
        self._enqueue = r("enqueue")
        self._offer = r("offer")
        self._offer_stacked = r("offer_stacked")
        self._offer_many = r("offer_many")
        self._round_orders = r("round_orders")
        self._stack_inputs = r("stack_inputs")
        self._resolve = r("resolve")
        self._force = r("force_assign")
        self._unassign = r("unassign")
        self._progress = r("progress")
        self._food_ready = r("food_ready")
        self._cancel = r("cancel")
        self._availability = r("availability")
        self._lease = r("lease")
        self._drop_region = r("drop_region_if_empty")
        self._pop_if_head = r("pop_if_head")
        self._drop_row = r("drop_row")
        self._withdraw_stalled = r("withdraw_stalled")
        self._restore_holding = r("restore_holding")
        self._reassert = r("reassert")
        self._restore_courier = r("restore_courier")
        self.declines_ttl_ms = (ttls or KeyTtls()).declines_ms

    # -- orders ----------------------------------------------------------------------------
    async def enqueue(self, order_id: str, *, region: str, enter_ms: int, now_ms: int,
                      pickup: Point, dropoff: Point, ready_ms: int, promised_ms: int,
                      number: str, chef_id: str,
                      declared: tuple[int, int] | None = None) -> bool:
        """A new order enters dispatch, waiting (queued from `enter_ms`); False if it
        already did (idempotent: an order already known, in any state, is left as it is).
        `declared`: (the chef's acceptance, the kitchen's own ready estimate), kept when
        `ready_ms` is a prediction (the prep history compares the real ready time with
        them)."""
        extra = [] if declared is None else ["accepted_ms", declared[0],
                                             "declared_ms", declared[1]]
        return bool(await self._enqueue(args=[
            self.p, order_id, now_ms, enter_ms, region, "plat", pickup.lat, "plng", pickup.lng,
            "dlat", dropoff.lat, "dlng", dropoff.lng, "ready_ms", ready_ms,
            "promised_ms", promised_ms, "number", number, "chef", chef_id, *extra]))

    # -- kitchens' prep history (DISPATCH_PREP_PREDICTION) ---------------------------------
    async def prep_history(self, chef_id: str) -> tuple[list[float], list[float]]:
        """(the kitchen's, the city's) `dispatch.prep.prep_ratio` observations, oldest
        first; one round trip."""
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.lrange(f"{self.p}:prep:k:{chef_id}", 0, -1)
            pipe.lrange(f"{self.p}:prep:city", 0, -1)
            kitchen, city = await pipe.execute()
        return [float(x) for x in kitchen], [float(x) for x in city]

    async def prep_observation(self, order_id: str) -> tuple[str, int, int] | None:
        """(chef, accepted ms, declared ready ms) of an order whose ready mark has not been
        learnt from yet, marking it learnt (a redelivered ready event teaches nothing twice);
        None when it was, or the order has no declared estimate."""
        okey = f"{self.p}:o:{order_id}"
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.hsetnx(okey, "prep_learnt", 1)
            pipe.hmget(okey, "chef", "accepted_ms", "declared_ms")
            first, (chef, accepted, declared) = await pipe.execute()
        if not first or not chef or not accepted or not declared:
            return None
        return _s(chef), int(accepted), int(declared)

    async def add_prep(self, chef_id: str, ratio: float, *, history: int, city_history: int,
                       ttl_ms: int) -> None:
        """Append one observation to the kitchen's and the city's history, each kept to its
        most recent `history` / `city_history`, forgotten `ttl_ms` after the last."""
        kitchen, city = f"{self.p}:prep:k:{chef_id}", f"{self.p}:prep:city"
        async with self.redis.pipeline(transaction=False) as pipe:
            for key, keep in ((kitchen, history), (city, city_history)):
                pipe.rpush(key, repr(ratio))
                pipe.ltrim(key, -keep, -1)
                pipe.pexpire(key, ttl_ms)
            await pipe.execute()

    async def cancel(self, order_id: str, now_ms: int) -> Transition:
        return _transition(await self._cancel(args=[self.p, self.geo_status, order_id, now_ms]))

    async def food_ready(self, order_id: str, at_ms: int, due_ms: int) -> str | None:
        """Record that the food is ready (since `at_ms`, the order's ready time from now on);
        a waiting order queued later than `due_ms` is due then (brought forward only, as
        `entry_when_food_ready_ms` says). The courier on its way to collect it, if any."""
        courier = await self._food_ready(args=[self.p, order_id, at_ms, due_ms])
        return _s(courier) if courier else None  # nil (no order) and '' (nobody) alike

    async def knows(self, order_id: str) -> bool:
        """Whether dispatch has a record of the order (one EXISTS; closed ones are kept a
        day, see `KeyTtls`)."""
        return bool(await self.redis.exists(f"{self.p}:o:{order_id}"))

    async def order(self, order_id: str) -> OrderRecord | None:
        raw = await _hgetall(self.redis, f"{self.p}:o:{order_id}")
        return _order_record(order_id, _str_map(raw)) if raw else None

    async def orders(self, order_ids: Sequence[str]) -> list[OrderRecord]:
        """The orders of `order_ids` that exist, in that order (one pipeline)."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for oid in order_ids:
                pipe.hgetall(f"{self.p}:o:{oid}")
            raws = await pipe.execute()
        return [_order_record(oid, _str_map(r)) for oid, r in zip(order_ids, raws, strict=True)
                if r]

    async def orders_in_state(self, state: OrderDispatchState, limit: int = 1000) -> list[str]:
        members = await self.redis.srandmember(f"{self.p}:os:{state.value}", limit)
        return sorted(_s(m) for m in members or [])

    async def due_orders(self, region: str, now_ms: int, limit: int) -> list[str]:
        ids = await self.redis.zrangebyscore(f"{self.p}:q:{region}", "-inf", now_ms,
                                             start=0, num=limit)
        return [_s(i) for i in ids]

    async def declined_by(self, order_ids: Sequence[str]) -> list[set[str]]:
        async with self.redis.pipeline(transaction=False) as pipe:
            for oid in order_ids:
                pipe.smembers(f"{self.p}:dec:{oid}")
            raws = await pipe.execute()
        return [{_s(m) for m in r} for r in raws]

    async def regions(self) -> list[str]:
        return sorted(_s(r) for r in await self.redis.smembers(f"{self.p}:regions"))

    async def drop_region_if_empty(self, region: str) -> None:
        await self._drop_region(keys=[f"{self.p}:q:{region}", f"{self.p}:regions"],
                                args=[region])

    # -- offers ----------------------------------------------------------------------------
    async def offer(self, courier_id: str, order_id: str, *, now_ms: int,
                    expires_ms: int) -> tuple[ClaimResult, str]:
        """Claim an idle courier for a waiting order; returns (result, offer_id)."""
        offer_id = uuid.uuid4().hex
        result = await self._offer(args=[self.p, self.geo_status, courier_id, order_id,
                                         offer_id, now_ms, expires_ms])
        return ClaimResult(_s(result)), offer_id

    async def offer_stacked(self, courier_id: str, order_id: str, *, held: Sequence[str],
                            max_stack: int, now_ms: int,
                            expires_ms: int) -> tuple[ClaimResult, str]:
        """Offer one more order to a courier heading to a chef that holds exactly `held`
        (what the stacking decision was made on); returns (result, offer_id)."""
        offer_id = uuid.uuid4().hex
        result = await self._offer_stacked(args=[
            self.p, self.geo_status, courier_id, order_id, offer_id, now_ms, expires_ms,
            max_stack, ",".join(sorted(held))])
        return ClaimResult(_s(result)), offer_id

    async def offer_many(self, claims: Sequence[OfferClaim], *, now_ms: int,
                         expires_ms: int) -> list[tuple[str, str]]:
        """`offer` / `offer_stacked` for a round's assignments, `claims_per_call` per script
        call: each claim runs exactly the checks and effects of its own script, in order (so
        the guarantees are those of one call each; each call's batch is atomic as a whole
        too), and each call's results come back as one string. Returns (result, offer_id)
        per claim, in order (`offer_chunks`, collected)."""
        out: list[tuple[str, str]] = []
        async with contextlib.aclosing(self.offer_chunks(
                claims, now_ms=now_ms, expires_ms=expires_ms)) as chunks:
            async for part in chunks:
                out += part
        return out

    async def offer_chunks(self, claims: Sequence[OfferClaim], *, now_ms: int,
                           expires_ms: int, per_call: int | None = None,
                           ) -> AsyncGenerator[list[tuple[str, str]], None]:
        """`offer_many`, yielding each call's (result, offer_id) list, in claim order, as its
        reply arrives, so the caller can act on the first claims while Redis runs the next.
        Results are `ClaimResult` values, as plain strings (a round makes thousands).

        When the claims are independent — no courier and no order in two claims, as in a
        round's assignment — the calls go out at once on separate connections: Redis may run
        them in any order, which cannot change a result (a claim reads only its courier's
        and its order's keys, its order's declines and its courier's held orders, and writes
        only its courier's and its order's keys and the offer; held orders are never
        waiting, so never claimed). Otherwise they go out in one pipeline, in order, and
        every result arrives at once."""
        per_call = per_call or self.claims_per_call
        if not claims:
            return
        ids = offer_ids(len(claims))
        calls = [(start, self._offer_many_args(claims[start:start + per_call],
                                               ids[start:start + per_call], now_ms,
                                               expires_ms))
                 for start in range(0, len(claims), per_call)]
        independent = (len({c.courier_id for c in claims}) == len(claims)
                       == len({c.order_id for c in claims}))
        if len(calls) == 1 or not independent:
            async with self.redis.pipeline(transaction=False) as pipe:
                for _, args in calls:
                    await self._offer_many(args=args, client=pipe)
                replies = await pipe.execute()
            results = [r for reply in replies for r in _s(reply).split(",")]
            yield list(zip(results, ids, strict=True))
            return
        tasks = [asyncio.ensure_future(self._offer_many(args=args)) for _, args in calls]
        try:
            for (start, _), task in zip(calls, tasks, strict=True):
                results = _s(await task).split(",")
                yield list(zip(results, ids[start:start + per_call], strict=True))
        finally:  # a claim that went out stays made: let every call finish
            await asyncio.gather(*tasks, return_exceptions=True)

    def _offer_many_args(self, part: Sequence[OfferClaim], ids: Sequence[str], now_ms: int,
                         expires_ms: int) -> list[str | int]:
        columns = (
            ["i" if c.held is None else "s" for c in part],
            [c.courier_id for c in part],
            [c.order_id for c in part],
            ids,
            ["" if c.held is None else str(c.max_stack) for c in part],
            ["" if c.held is None else ",".join(sorted(c.held)) for c in part],
        )
        args: list[str | int] = [self.p, self.geo_status, now_ms, expires_ms, len(part)]
        for col in columns:
            joined = "\n".join(col)
            if joined.count("\n") != len(part) - 1:
                raise ValueError("an id in an offer claim contains a newline")
            args.append(joined)
        return args

    async def round_orders(self, region: str, now_ms: int, limit: int,
                           ) -> tuple[int, list[RoundOrder]]:
        """A round's orders in one call: how many orders of `region` are due (entered the
        queue by `now_ms`, at most `limit`, oldest first — `due_orders`), and of those the
        ones still waiting, oldest first, as the planner takes them, each with the couriers
        that declined it (`declined_by`)."""
        n_due, rows = msgspec.json.decode(await self._round_orders(
            args=[self.p, region, now_ms, limit, *ROUND_ORDER_FIELDS]))
        # [order id, [declined...], field, value, ...]; an empty Lua table encodes as {}
        return int(n_due), [_round_order(row[0], row[1], row[2:]) for row in rows or ()]

    async def stack_inputs(self, courier_ids: Sequence[str], max_stack: int,
                           ) -> list[HeldOrders]:
        """Of `courier_ids` (heading to a chef), those that may take one more order: no open
        offer, fewer than `max_stack` held orders (at least one), each held order still
        assigned. Each with its vehicle as stored ('' when none) and its held orders sorted
        by id, in the order of `courier_ids`; one call."""
        if not courier_ids:
            return []
        raw = msgspec.json.decode(await self._stack_inputs(
            args=[self.p, max_stack, *courier_ids]))
        return [HeldOrders(courier_id=cid, vehicle=vehicle, orders=tuple(sorted(
                    (_round_order(h, (), r) for h, r in zip(held, rows, strict=True)),
                    key=lambda o: o.order_id)))
                for cid, vehicle, held, rows in raw or ()]

    async def held_orders(self, courier_ids: Sequence[str]) -> list[list[str]]:
        """Orders each courier holds (assigned to it and not delivered), sorted."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in courier_ids:
                pipe.smembers(f"{self.p}:cs:{cid}")
            raws = await pipe.execute()
        return [sorted(_s(m) for m in r) for r in raws]

    async def resolve(self, offer_id: str, action: OfferAction, *, courier_id: str = "",
                      now_ms: int, event_row: bytes = b"", order_id: str = "") -> Transition:
        """Accept, decline or expire an offer; `event_row` (for an accept of the offer of
        `order_id`) enters the outbox in the same step when that accept succeeds."""
        return _transition(await self._resolve(
            args=[self.p, self.geo_status, offer_id, action, courier_id, now_ms,
                  f"accepted:{order_id}:{courier_id}", event_row]))

    async def due_offers(self, now_ms: int, limit: int = 500) -> list[str]:
        ids = await self.redis.zrangebyscore(f"{self.p}:fexp", "-inf", now_ms, start=0,
                                             num=limit)
        return [_s(i) for i in ids]

    async def offer_info(self, offer_id: str) -> OfferRecord | None:
        raw = await _hgetall(self.redis, f"{self.p}:f:{offer_id}")
        if not raw:
            return None
        h = _str_map(raw)
        return OfferRecord(offer_id=offer_id, order_id=h["order"], courier_id=h["courier"],
                           state=OfferState(h["state"]), expires_ms=int(h["expires"]),
                           created_ms=int(h["created"]))

    # -- couriers --------------------------------------------------------------------------
    async def courier(self, courier_id: str) -> CourierRecord:
        """The courier's dispatch state (offline when dispatch never saw it)."""
        return _courier_record(courier_id, await _hgetall(self.redis, f"{self.p}:c:{courier_id}"))

    async def couriers(self, courier_ids: Sequence[str]) -> list[CourierRecord]:
        """`courier` of each of `courier_ids`, in that order, one pipeline."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for cid in courier_ids:
                pipe.hgetall(f"{self.p}:c:{cid}")
            raws = await pipe.execute()
        return [_courier_record(cid, r) for cid, r in zip(courier_ids, raws, strict=True)]

    async def vehicle(self, courier_id: str) -> Vehicle | None:
        """The courier's vehicle on file (None: none or unknown)."""
        raw = await self.redis.hget(self.vehicles_key, courier_id)
        return _VEHICLES.get(raw) if isinstance(raw, bytes) else None

    async def vehicles(self) -> dict[str, Vehicle]:
        """Every courier's vehicle on file (one HGETALL)."""
        raw = await _hgetall(self.redis, self.vehicles_key)
        return {k.decode(): _VEHICLES[v] for k, v in raw.items() if v in _VEHICLES}

    async def set_availability(self, courier_id: str, *, online: bool, vehicle: Vehicle | None,
                               now_ms: int) -> Transition:
        """Online (`TransitionResult.ONLINE`, detail its state) or offline (refused, `BUSY`,
        unless it holds nothing); a vehicle given replaces the one on file."""
        return _transition(await self._availability(
            args=[self.p, self.geo_status, courier_id, "1" if online else "0",
                  vehicle.value if vehicle else "", now_ms]))

    async def force_assign(self, order_id: str, courier_id: str, now_ms: int,
                           event_row: bytes = b"") -> Transition:
        return _transition(await self._force(
            args=[self.p, self.geo_status, order_id, courier_id, now_ms,
                  f"assigned:{order_id}:{courier_id}", event_row]))

    async def unassign(self, order_id: str, now_ms: int, event_row: bytes = b"",
                       courier_id: str = "") -> Transition:
        """Take an order back; `event_row` enters the outbox in the same step only if the
        order was unassigned from `courier_id` (the one the event names)."""
        return _transition(await self._unassign(args=[
            self.p, self.geo_status, order_id, now_ms, f"unassigned:{order_id}:{courier_id}",
            event_row]))

    async def progress(self, order_id: str, courier_id: str, new: OrderDispatchState,
                       now_ms: int, event_row: bytes = b"") -> Transition:
        """Move a held order on; `event_row` enters the outbox in the same step if it moved."""
        return _transition(await self._progress(
            args=[self.p, self.geo_status, order_id, courier_id, new.value, now_ms,
                  f"{new.value}:{order_id}:{courier_id}", event_row]))

    async def withdraw_stalled(self, order_id: str, courier_id: str, assigned_ms: int,
                               now_ms: int, event_row: bytes = b"") -> Transition:
        """The watchdog takes a stalled assignment back (it waits again, never offered to
        `courier_id` again), only if it is still the assignment judged: assigned, to
        `courier_id`, at `assigned_ms` (else `TransitionResult.ORDER_STATE`). `event_row`
        enters the outbox in the same step if it was withdrawn."""
        return _transition(await self._withdraw_stalled(args=[
            self.p, self.geo_status, order_id, courier_id, assigned_ms, now_ms,
            f"unassigned:{order_id}:{courier_id}", event_row]))

    async def all_orders_in_state(self, state: OrderDispatchState) -> list[str]:
        """Every order in `state` (SSCAN, not bounded like `orders_in_state`), sorted."""
        return sorted({_s(m) async for m in self.redis.sscan_iter(
            f"{self.p}:os:{state.value}", count=1000)})

    # -- outbox of dispatch.* events that could not be published ----------------------------
    async def park_event(self, row: bytes) -> None:
        await self.redis.rpush(f"{self.p}:outbox", row)

    async def drop_event(self, row: bytes) -> None:
        """Remove one outbox row (its event was published)."""
        await self._drop_row(keys=[f"{self.p}:outbox"], args=[row])

    async def outbox_head(self) -> bytes | None:
        raw: Any = await self.redis.lindex(f"{self.p}:outbox", 0)
        return None if raw is None else raw if isinstance(raw, bytes) else str(raw).encode()

    async def drop_outbox_head(self, row: bytes) -> None:
        await self._pop_if_head(keys=[f"{self.p}:outbox"], args=[row])

    async def outbox_size(self) -> int:
        return int(await self.redis.llen(f"{self.p}:outbox"))

    # -- generation and rebuild (api.core.dispatch.rebuild) --------------------------------
    async def generation(self) -> str | None:
        """The generation id (None: Redis lost its data, or never had any: rebuild)."""
        raw = await self.redis.get(self.generation_key)
        return None if raw is None else _s(raw)

    async def start_generation(self, generation: str) -> str:
        """Set the generation id unless one is set; returns the one in force."""
        await self.redis.set(self.generation_key, generation, nx=True)
        return await self.generation() or generation

    async def hold_rebuild_lease(self, holder: str, ttl_ms: int) -> bool:
        """The lease of the process rebuilding the state (``P:rebuild``, beside the regions'
        round leases): taken or renewed by `holder`, True if it holds it."""
        return bool(await self._lease(keys=[f"{self.p}:rebuild"], args=[holder, ttl_ms]))

    async def restore_holding(self, order_id: str, courier_id: str,
                              state: OrderDispatchState, now_ms: int,
                              milestones: dict[str, int]) -> bool:
        """A waiting order back with the courier that held it, in `state` (assigned, picked
        up, delivering), its `milestones` (``assigned_ms``, ...) set; the courier's state
        follows from what it holds. False: the order was not waiting (left as it is)."""
        args: list[str | int] = [self.p, self.geo_status, order_id, courier_id, state.value,
                                 now_ms]
        for field, value in milestones.items():
            args += [field, value]
        return bool(await self._restore_holding(args=args))

    async def restore_couriers(self, couriers: Sequence[tuple[str, bool, str | None]],
                               now_ms: int) -> int:
        """Couriers' recorded availability, (courier, online, vehicle) each, back
        (`restore_courier.lua`, one pipeline): its vehicle unless one is on file, and idle
        (online) or offline unless its state is known. Returns how many states were set."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for courier_id, online, vehicle in couriers:
                await self._restore_courier(args=[
                    self.p, self.geo_status, courier_id, "1" if online else "0",
                    vehicle or "", now_ms], client=pipe)
            results = await pipe.execute()
        return sum(int(r) for r in results)

    async def restore_declines(self, order_id: str, courier_ids: Sequence[str]) -> None:
        """Couriers that declined `order_id` (it is never offered to them again)."""
        key = f"{self.p}:dec:{order_id}"
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(key, *courier_ids)
            pipe.pexpire(key, self.declines_ttl_ms)
            await pipe.execute()

    async def reassert(self, courier_id: str, now_ms: int) -> bool:
        """Idle again a courier dispatch does not know at all (no hash); False if known."""
        return bool(await self._reassert(args=[self.p, self.geo_status, courier_id, now_ms]))

    # -- leases ----------------------------------------------------------------------------
    async def hold_lease(self, region: str, holder: str, ttl_ms: int) -> bool:
        return bool(await self._lease(keys=[f"{self.p}:lease:{region}"], args=[holder, ttl_ms]))

    async def hold_watchdog_lease(self, holder: str, ttl_ms: int) -> bool:
        """The watchdog's lease ``P:watchdog:lease`` (apart from the ``P:lease:<region>``
        keys, which are every region's and only those): True if `holder` holds it."""
        return bool(await self._lease(keys=[f"{self.p}:watchdog:lease"],
                                      args=[holder, ttl_ms]))
