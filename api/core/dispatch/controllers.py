"""Courier (role delivery) and fleet-manager dispatch endpoints: thin handlers over the
injected `Dispatcher`; every courier sees only its own offers and orders (another courier's
offer is a 404)."""

from __future__ import annotations

from typing import Any

from litestar import Controller, get, post, put
from litestar.connection import ASGIConnection
from litestar.handlers.base import BaseRouteHandler
from litestar.params import FromPath, FromQuery, JSONBody

from api.auth import STAFF, IdentityDep, Role, roles
from api.core.deps import CoreDep, DispatcherDep, FleetDep, provide_dispatcher
from api.core.dispatch.schemas import (
    AssignRequest,
    Availability,
    CourierStatus,
    DispatchConfig,
    DispatchOrder,
    DispatchOrderList,
    OfferDecision,
    OfferList,
    ProgressUpdate,
)
from api.core.dispatch.service import Refusal, Refused
from api.core.fleet.schemas import CourierHint
from api.problems import Problem
from dispatch.lifecycle import OrderDispatchState

__all__ = ["CourierDispatchController", "FleetDispatchController", "problem",
           "state_current"]

REBUILDING_RETRY_AFTER_S = 2
"""A rebuild of a few thousand open orders takes about a second."""


async def state_current(connection: ASGIConnection[Any, Any, Any, Any],
                        _: BaseRouteHandler) -> None:
    """Guard: while Redis has lost the dispatch state and it is being rebuilt from the
    streams (no generation yet), dispatch answers 503 + Retry-After instead of from a
    half-written state: an order not restored yet would read as "not yours" (404) and a
    courier's app would give it up."""
    if await provide_dispatcher(connection.app.state).rebuilding():
        raise Problem(503, "dispatch state is being rebuilt after a store restart; retry "
                      f"after {REBUILDING_RETRY_AFTER_S} s", code="rebuilding",
                      headers={"Retry-After": str(REBUILDING_RETRY_AFTER_S)})


def problem(r: Refused, what: str) -> Problem:
    """The problem+json answer to a refusal about `what` (offer, order, courier)."""
    match r.reason:
        case Refusal.NOT_FOUND:
            return Problem(404, f"{what} not found", code="not_found")
        case Refusal.NOT_ASSIGNED:
            return Problem(404, "order not found or not assigned", code="not_found")
        case Refusal.OFFER_EXPIRED:
            return Problem(409, "the offer expired", code="offer_expired")
        case Refusal.OFFER_CLOSED:
            return Problem(409, f"the offer is already {r.detail}", code="offer_closed")
        case Refusal.COURIER_BUSY:
            return Problem(409, "the courier is not idle", code="courier_busy")
        case Refusal.CANNOT_GO_OFFLINE:
            return Problem(409, f"cannot go offline while {r.detail}", code="courier_busy")
        case Refusal.INVALID_TRANSITION:
            return Problem(409, f"not allowed while the order is {r.detail}",
                           code="invalid_transition")
        case Refusal.NO_POSITION:
            return Problem(409, "no position known: send a GPS fix at the door first",
                           code="too_far_from_dropoff")
        case Refusal.TOO_FAR:
            return Problem(409, f"last fix is {r.dist_m:.0f} m from the drop-off (must be "
                           f"within {r.within_m:.0f} m)", code="too_far_from_dropoff")
        case Refusal.BAD_STATUS:
            return Problem(400, f"status must be one of {r.detail}", code="bad_status")
    return Problem(409, r.detail, code=r.detail)


class CourierDispatchController(Controller):
    """The courier's side: availability, its offer, the orders it carries."""

    path = "/api/v1/delivery"
    guards = [roles(Role.DELIVERY), state_current]

    @put("/availability", summary="Go online (idle) or offline; set the vehicle")
    async def put_availability(self, dispatcher: DispatcherDep, identity: IdentityDep,
                               core: CoreDep, data: JSONBody[Availability]) -> CourierStatus:
        if data.online:  # the console names the courier from now on
            await core.courier_names.remember(identity.user_id, identity.name)
        status = await dispatcher.set_availability(identity.user_id, data)
        if isinstance(status, Refused):
            raise problem(status, "courier")
        return status

    @get("/offers", summary="The caller's open offer, if any")
    async def get_offers(self, dispatcher: DispatcherDep, identity: IdentityDep) -> OfferList:
        return await dispatcher.offers(identity.user_id)

    @post("/offers/{offer_id:str}/accept", status_code=200,
          summary="Accept an offer (before it expires)")
    async def accept_offer(self, dispatcher: DispatcherDep, identity: IdentityDep,
                           offer_id: FromPath[str]) -> OfferDecision:
        t = await dispatcher.accept(identity.user_id, offer_id)
        if isinstance(t, Refused):
            raise problem(t, "offer")
        return OfferDecision(offer_id=offer_id, order_id=t.order_id, status=t.result.value)

    @post("/offers/{offer_id:str}/decline", status_code=200,
          summary="Decline an offer (the order goes to someone else)")
    async def decline_offer(self, dispatcher: DispatcherDep, identity: IdentityDep,
                            offer_id: FromPath[str]) -> OfferDecision:
        t = await dispatcher.decline(identity.user_id, offer_id)
        if isinstance(t, Refused):
            raise problem(t, "offer")
        return OfferDecision(offer_id=offer_id, order_id=t.order_id, status=t.result.value)

    @get("/hint", summary="Where the caller, idle, should wait for orders (its repositioning "
                          "hint; null: stay)")
    async def get_hint(self, fleet: FleetDep, identity: IdentityDep) -> CourierHint:
        hints = (await fleet.reposition_hints()).hints
        return CourierHint(hint=next((h for h in hints if h.courier_id == identity.user_id),
                                     None))

    @get("/orders", summary="Orders the caller carries now")
    async def get_courier_orders(self, dispatcher: DispatcherDep,
                                 identity: IdentityDep) -> DispatchOrderList:
        return await dispatcher.courier_orders(identity.user_id)

    @put("/orders/{order_id:str}",
         summary="Report picked_up / delivering / delivered (delivered within 150 m of "
                 "drop-off)")
    async def put_courier_order(self, dispatcher: DispatcherDep, identity: IdentityDep,
                                order_id: FromPath[str],
                                data: JSONBody[ProgressUpdate]) -> DispatchOrder:
        order = await dispatcher.report(identity.user_id, order_id,
                                        OrderDispatchState(data.status))
        if isinstance(order, Refused):
            raise problem(order, "order")
        return order


class FleetDispatchController(Controller):
    """The fleet manager's side: listing, force-assign, unassign, status override."""

    path = "/api/v1/fleet"
    guards = [roles(*STAFF), state_current]

    @get("/orders",
         summary="Dispatch orders by status: waiting, offered, assigned, picked_up, "
                 "delivering, late, stuck")
    async def fleet_orders(self, dispatcher: DispatcherDep,
                           status: FromQuery[str | None] = None) -> DispatchOrderList:
        orders = await dispatcher.fleet_orders(status)
        if isinstance(orders, Refused):
            raise problem(orders, "order")
        return orders

    @post("/orders/{order_id:str}/assign", status_code=200,
          summary="Force-assign an order to an idle courier (same claim rules as offers)")
    async def fleet_assign(self, dispatcher: DispatcherDep, order_id: FromPath[str],
                           data: JSONBody[AssignRequest]) -> DispatchOrder:
        order = await dispatcher.fleet_assign(order_id, data.courier_id)
        if isinstance(order, Refused):
            raise problem(order, "order")
        return order

    @post("/orders/{order_id:str}/unassign", status_code=200,
          summary="Take an order back from its courier (before pickup); it is dispatched "
                  "again")
    async def fleet_unassign(self, dispatcher: DispatcherDep,
                             order_id: FromPath[str]) -> DispatchOrder:
        order = await dispatcher.fleet_unassign(order_id)
        if isinstance(order, Refused):
            raise problem(order, "order")
        return order

    @put("/orders/{order_id:str}/status",
         summary="Override: record picked_up / delivering / delivered for the assigned "
                 "courier")
    async def fleet_progress(self, dispatcher: DispatcherDep, order_id: FromPath[str],
                             data: JSONBody[ProgressUpdate]) -> DispatchOrder:
        order = await dispatcher.fleet_report(order_id, OrderDispatchState(data.status))
        if isinstance(order, Refused):
            raise problem(order, "order")
        return order

    @get("/dispatch",
         summary="How this core dispatches: matching policy, round interval, offer TTL, "
                 "radius")
    async def fleet_dispatch_config(self, dispatcher: DispatcherDep) -> DispatchConfig:
        return dispatcher.config()
