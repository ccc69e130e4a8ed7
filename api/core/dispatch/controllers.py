"""Courier (role delivery) and fleet-manager dispatch endpoints; every courier sees only its
own offers and orders (another courier's offer is a 404)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import get, post, put
from litestar.datastructures import State
from litestar.params import Body, FromPath, FromQuery

from api.auth import STAFF, IdentityDep, Role, roles
from api.core.dispatch.store import Transition
from api.core.gps.ingest import wall_ms
from api.core.services import CoreServices
from api.problems import Problem
from dispatch.lifecycle import ACTIVE_ORDER_STATES, OrderDispatchState
from geo.distance import haversine_m

DELIVERED_WITHIN_M = 150.0


class Availability(msgspec.Struct, frozen=True, kw_only=True):
    online: bool
    vehicle: Literal["bike", "scooter", "car"] | None = None


class CourierStatus(msgspec.Struct, frozen=True, kw_only=True):
    courier_id: str
    state: str
    vehicle: str | None = None


class Offer(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: str
    order_id: str
    pickup: dict[str, float]
    dropoff: dict[str, float]
    ready_at: int | None
    expires_at: int


class OfferList(msgspec.Struct, frozen=True):
    offers: list[Offer]


class OfferDecision(msgspec.Struct, frozen=True, kw_only=True):
    offer_id: str
    order_id: str
    status: str


class DispatchOrder(msgspec.Struct, frozen=True, kw_only=True):
    order_id: str
    order_number: str
    status: str
    courier_id: str | None
    pickup: dict[str, float]
    dropoff: dict[str, float]
    ready_at: int | None
    promised_at: int | None
    late: bool
    food_ready: bool = False
    """The chef has marked the food ready (couriers also get ORDER_READY on their socket)."""


class DispatchOrderList(msgspec.Struct, frozen=True):
    orders: list[DispatchOrder]


class ProgressUpdate(msgspec.Struct, frozen=True):
    status: Literal["picked_up", "delivering", "delivered"]


class AssignRequest(msgspec.Struct, frozen=True):
    courier_id: Annotated[str, msgspec.Meta(min_length=1, max_length=200)]


def _core(state: State) -> CoreServices:
    core: CoreServices = state.core
    return core


def _order(o: dict[str, str], now_ms: int) -> DispatchOrder:
    promised = int(o["promised_ms"]) if o.get("promised_ms") else None
    status = o.get("state", "")
    return DispatchOrder(
        order_id=o["order_id"], order_number=o.get("number", ""), status=status,
        courier_id=o.get("courier") or None,
        pickup={"lat": float(o.get("plat", 0)), "lng": float(o.get("plng", 0))},
        dropoff={"lat": float(o.get("dlat", 0)), "lng": float(o.get("dlng", 0))},
        ready_at=int(o["ready_ms"]) if o.get("ready_ms") else None, promised_at=promised,
        late=promised is not None and now_ms > promised and status != "delivered",
        food_ready=bool(o.get("food_ready_ms")),
    )


def _refusal(t: Transition, what: str) -> Problem:
    if t.result in ("no_offer", "no_order"):
        return Problem(404, f"{what} not found", code="not_found")
    if t.result == "expired":
        return Problem(409, "the offer expired", code="offer_expired")
    if t.result == "not_open":
        return Problem(409, f"the offer is already {t.detail}", code="offer_closed")
    if t.result == "courier_busy":
        return Problem(409, "the courier is not idle", code="courier_busy")
    if t.result in ("order_state", "bad_transition"):
        return Problem(409, f"not allowed while the order is {t.detail}",
                       code="invalid_transition")
    if t.result == "busy":
        return Problem(409, f"cannot go offline while {t.detail}", code="courier_busy")
    return Problem(409, t.result, code=t.result)


# -- courier -------------------------------------------------------------------------------

@put("/api/v1/delivery/availability", guards=[roles(Role.DELIVERY)],
     summary="Go online (idle) or offline; set the vehicle")
async def put_availability(state: State, identity: IdentityDep,
                           data: Annotated[Availability, Body()]) -> CourierStatus:
    core = _core(state)
    t = await core.dispatch.store.set_availability(
        identity.user_id, online=data.online, vehicle=data.vehicle or "", now_ms=wall_ms())
    if t.result == "busy":
        raise _refusal(t, "courier")
    info = await core.dispatch.store.courier(identity.user_id)
    return CourierStatus(courier_id=identity.user_id, state=info.get("state", "offline"),
                         vehicle=info.get("vehicle") or None)


@get("/api/v1/delivery/offers", guards=[roles(Role.DELIVERY)],
     summary="The caller's open offer, if any")
async def get_offers(state: State, identity: IdentityDep) -> OfferList:
    o = await _core(state).dispatch.open_offer(identity.user_id)
    if o is None:
        return OfferList([])
    return OfferList([Offer(offer_id=o.offer_id, order_id=o.order_id, pickup=o.pickup,
                            dropoff=o.dropoff, ready_at=o.ready_at, expires_at=o.expires_at)])


@post("/api/v1/delivery/offers/{offer_id:str}/accept", guards=[roles(Role.DELIVERY)],
      status_code=200, summary="Accept an offer (before it expires)")
async def accept_offer(state: State, identity: IdentityDep,
                       offer_id: FromPath[str]) -> OfferDecision:
    t = await _core(state).dispatch.accept(identity.user_id, offer_id)
    if t.result != "accepted":
        raise _refusal(t, "offer")
    return OfferDecision(offer_id=offer_id, order_id=t.order_id, status="accepted")


@post("/api/v1/delivery/offers/{offer_id:str}/decline", guards=[roles(Role.DELIVERY)],
      status_code=200, summary="Decline an offer (the order goes to someone else)")
async def decline_offer(state: State, identity: IdentityDep,
                        offer_id: FromPath[str]) -> OfferDecision:
    t = await _core(state).dispatch.decline(identity.user_id, offer_id)
    if t.result != "declined":
        raise _refusal(t, "offer")
    return OfferDecision(offer_id=offer_id, order_id=t.order_id, status="declined")


@get("/api/v1/delivery/orders", guards=[roles(Role.DELIVERY)],
     summary="Orders the caller carries now")
async def get_courier_orders(state: State, identity: IdentityDep) -> DispatchOrderList:
    store = _core(state).dispatch.store
    held = (await store.held_orders([identity.user_id]))[0]  # several when stacked
    if not held:
        return DispatchOrderList([])
    orders = await store.orders(held)
    now_ms = wall_ms()
    return DispatchOrderList([_order(o, now_ms) for o in orders
                              if o.get("courier") == identity.user_id])


@put("/api/v1/delivery/orders/{order_id:str}", guards=[roles(Role.DELIVERY)],
     summary="Report picked_up / delivering / delivered (delivered within 150 m of drop-off)")
async def put_courier_order(state: State, identity: IdentityDep, order_id: FromPath[str],
                            data: Annotated[ProgressUpdate, Body()]) -> DispatchOrder:
    core = _core(state)
    order = await core.dispatch.store.order(order_id)
    if not order or order.get("courier") != identity.user_id:
        raise Problem(404, "order not found", code="not_found")
    if data.status == "delivered":
        pos = await core.couriers.position(identity.user_id)
        if pos is None:
            raise Problem(409, "no position known: send a GPS fix at the door first",
                          code="too_far_from_dropoff")
        dist_m = haversine_m(float(pos["lat"]), float(pos["lng"]), float(order["dlat"]),
                             float(order["dlng"]))
        if dist_m > DELIVERED_WITHIN_M:
            raise Problem(409, f"last fix is {dist_m:.0f} m from the drop-off (must be within "
                          f"{DELIVERED_WITHIN_M:.0f} m)", code="too_far_from_dropoff")
    t = await core.dispatch.progress(order_id, identity.user_id,
                                     OrderDispatchState(data.status))
    if t.result != data.status:
        raise _refusal(t, "order")
    updated = await core.dispatch.store.orders([order_id])
    return _order(updated[0], wall_ms())


# -- fleet ---------------------------------------------------------------------------------

@get("/api/v1/fleet/orders", guards=[roles(*STAFF)],
     summary="Dispatch orders by status: waiting, offered, assigned, picked_up, delivering, late")
async def fleet_orders(state: State, status: FromQuery[str | None] = None) -> DispatchOrderList:
    store = _core(state).dispatch.store
    wanted = status or "waiting"
    valid = {s.value for s in ACTIVE_ORDER_STATES} | {"late"}
    if wanted not in valid:
        raise Problem(400, f"status must be one of {sorted(valid)}", code="bad_status")
    states = ACTIVE_ORDER_STATES if wanted == "late" else (OrderDispatchState(wanted),)
    ids: list[str] = []
    for s in states:
        ids += await store.orders_in_state(s)
    now_ms = wall_ms()
    orders = [_order(o, now_ms) for o in await store.orders(ids)]
    if wanted == "late":
        orders = [o for o in orders if o.late]
    return DispatchOrderList(sorted(orders, key=lambda o: (o.promised_at or 0, o.order_id)))


@post("/api/v1/fleet/orders/{order_id:str}/assign", guards=[roles(*STAFF)], status_code=200,
      summary="Force-assign an order to an idle courier (same claim rules as offers)")
async def fleet_assign(state: State, order_id: FromPath[str],
                       data: Annotated[AssignRequest, Body()]) -> DispatchOrder:
    core = _core(state)
    t = await core.dispatch.force_assign(order_id, data.courier_id)
    if t.result != "assigned":
        raise _refusal(t, "order")
    return _order((await core.dispatch.store.orders([order_id]))[0], wall_ms())


@post("/api/v1/fleet/orders/{order_id:str}/unassign", guards=[roles(*STAFF)], status_code=200,
      summary="Take an order back from its courier (before pickup); it is dispatched again")
async def fleet_unassign(state: State, order_id: FromPath[str]) -> DispatchOrder:
    core = _core(state)
    t = await core.dispatch.unassign(order_id)
    if t.result != "unassigned":
        raise _refusal(t, "order")
    return _order((await core.dispatch.store.orders([order_id]))[0], wall_ms())


@put("/api/v1/fleet/orders/{order_id:str}/status", guards=[roles(*STAFF)],
     summary="Override: record picked_up / delivering / delivered for the assigned courier")
async def fleet_progress(state: State, order_id: FromPath[str],
                         data: Annotated[ProgressUpdate, Body()]) -> DispatchOrder:
    core = _core(state)
    order = await core.dispatch.store.order(order_id)
    if not order or not order.get("courier"):
        raise Problem(404, "order not found or not assigned", code="not_found")
    t = await core.dispatch.progress(order_id, order["courier"], OrderDispatchState(data.status))
    if t.result != data.status:
        raise _refusal(t, "order")
    return _order((await core.dispatch.store.orders([order_id]))[0], wall_ms())


class DispatchConfig(msgspec.Struct, frozen=True, kw_only=True):
    policy: str
    """``optimal`` or ``greedy`` (DISPATCH_POLICY)."""
    round_s: float
    offer_ttl_s: float
    radius_m: float


@get("/api/v1/fleet/dispatch", guards=[roles(*STAFF)],
     summary="How this core dispatches: matching policy, round interval, offer TTL, radius")
async def fleet_dispatch_config(state: State) -> DispatchConfig:
    s = _core(state).settings
    return DispatchConfig(policy=s.dispatch.policy, round_s=s.dispatch.round_s,
                          offer_ttl_s=s.dispatch.offer_ttl_s, radius_m=s.dispatch.radius_m)


HANDLERS: list[Any] = [
    put_availability, get_offers, accept_offer, decline_offer, get_courier_orders,
    put_courier_order, fleet_orders, fleet_assign, fleet_unassign, fleet_progress,
    fleet_dispatch_config,
]
