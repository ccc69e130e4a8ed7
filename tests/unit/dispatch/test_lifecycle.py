"""The dispatch state machine's tables agree with each other (the scripts check these very
tables; `tests/integration/core/test_dispatch_store.py` checks the scripts' moves)."""

from __future__ import annotations

from dispatch.lifecycle import (
    ACTIVE_ORDER_STATES,
    CARRIED_STATES,
    COURIER_REPORTS,
    FINAL_ORDER_STATES,
    FLEET_ASSIGNABLE,
    ORDER_TRANSITIONS,
    UNASSIGNABLE,
    OrderDispatchState,
)

S = OrderDispatchState


def test_every_state_has_its_moves_and_closed_orders_have_none() -> None:
    """The table covers every state; delivered and cancelled are final, the rest active."""
    assert set(ORDER_TRANSITIONS) == set(S)
    assert all(not ORDER_TRANSITIONS[s] for s in FINAL_ORDER_STATES)
    assert set(ACTIVE_ORDER_STATES) == set(S) - FINAL_ORDER_STATES


def test_any_open_order_may_be_cancelled() -> None:
    """A cancellation upstream closes an order whatever dispatch was doing with it."""
    assert all(S.CANCELLED in ORDER_TRANSITIONS[s] for s in ACTIVE_ORDER_STATES)


def test_what_couriers_and_the_fleet_may_do_are_moves_of_the_table() -> None:
    """Courier reports, force-assign (to assigned) and unassign (back to waiting) are moves
    the table allows; a courier reports only on orders it carries, after assignment."""
    for state, nexts in COURIER_REPORTS.items():
        assert nexts <= ORDER_TRANSITIONS[state]
    assert all(S.ASSIGNED in ORDER_TRANSITIONS[s] for s in FLEET_ASSIGNABLE)
    assert all(S.WAITING in ORDER_TRANSITIONS[s] for s in UNASSIGNABLE)
    assert set(COURIER_REPORTS) == {S.ASSIGNED} | CARRIED_STATES
    assert S.DELIVERED in set().union(*COURIER_REPORTS.values())
