"""The order state machine is exactly the seed's isValidTransition (§4.3)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from api.commerce.orders.state import (
    CHEF_TARGETS,
    CUSTOMER_CANCELLABLE,
    STATUSES,
    dispatch_path,
    is_valid_transition,
)

SEED = {
    ("pending", "accepted"), ("pending", "cancelled"),
    ("accepted", "preparing"), ("accepted", "cancelled"),
    ("preparing", "ready"), ("preparing", "cancelled"),
    ("ready", "picked_up"), ("picked_up", "delivering"), ("delivering", "delivered"),
}
status = st.sampled_from(STATUSES)


def test_every_pair_matches_the_seed_table() -> None:
    """All 81 (from, to) pairs: valid exactly when listed in the seed."""
    for a in STATUSES:
        for b in STATUSES:
            assert is_valid_transition(a, b) == ((a, b) in SEED), (a, b)


@given(status, st.text(max_size=12))
def test_unknown_targets_are_never_valid(current: str, target: str) -> None:
    """Any string outside the enum is never a valid target."""
    if target not in STATUSES:
        assert not is_valid_transition(current, target)


@given(st.lists(status, max_size=20))
def test_any_walk_accepts_only_seed_steps(walk: list[str]) -> None:
    """Applying a random sequence, every accepted step is a seed edge; terminal states
    (delivered, cancelled, refunded) never move again."""
    current = "pending"
    for target in walk:
        if is_valid_transition(current, target):
            assert (current, target) in SEED
            current = target
        if current in ("delivered", "cancelled", "refunded"):
            assert not any(is_valid_transition(current, t) for t in STATUSES)


@given(status, status)
def test_dispatch_path_steps_are_valid(current: str, target: str) -> None:
    """Each step dispatch applies is a valid transition, ending at the target."""
    path = dispatch_path(current, target)
    prev = current
    for step in path:
        assert is_valid_transition(prev, step)
        prev = step
    if path:
        assert path[-1] == target


def test_dispatch_path_examples() -> None:
    """ready→delivered walks picked_up, delivering; a redelivered event is a no-op."""
    assert dispatch_path("ready", "delivered") == ["picked_up", "delivering", "delivered"]
    assert dispatch_path("delivered", "delivered") == []
    assert dispatch_path("delivering", "picked_up") == []
    assert dispatch_path("cancelled", "delivered") == []
    assert dispatch_path("pending", "picked_up") == []


def test_role_targets() -> None:
    """Chefs set accepted/preparing/ready/cancelled; customers cancel before preparing."""
    assert {"accepted", "preparing", "ready", "cancelled"} == CHEF_TARGETS
    assert {"pending", "accepted"} == CUSTOMER_CANCELLABLE
