"""The lab's named policies: each is production's dispatch with one documented change."""

from __future__ import annotations

import msgspec

from dispatch.round import RoundParams
from geo.travel import HaversineTravelModel
from lab.city import build_day
from lab.engine import LabDispatch, simulate_day
from lab.kpis import lab_kpis
from lab.policies import COMMIT_EARLY_S, POLICIES, STACK_MAX_DELAY_S, apply_policy
from lab.scenario import PRESETS

PRODUCTION = LabDispatch(params=RoundParams(policy="optimal", candidates=9, max_stack=3),
                         round_s=3.0)


def test_each_policy_sets_what_its_name_says() -> None:
    """Matcher, stack bound and the improvements (prep prediction, holding early couriers,
    the stacking delay cap, added lateness, hints) as named, whatever production switches on;
    every other setting is production's. ``production`` is production unchanged."""
    from dispatch.prep import PrepParams
    from dispatch.reposition import RepositionParams

    expected = {"greedy": ("greedy", 2), "optimal": ("optimal", 2),
                "greedy-nostack": ("greedy", 1), "optimal-nostack": ("optimal", 1),
                "greedy-prep": ("greedy", 2), "optimal-prep": ("optimal", 2),
                "optimal-prep-hold": ("optimal", 2), "optimal-prep-stackcap": ("optimal", 2),
                "optimal-prep-nostack": ("optimal", 1),
                "optimal-prep-hold-nostack": ("optimal", 1), "improved": ("optimal", 1),
                "optimal-repos": ("optimal", 2), "improved-repos": ("optimal", 1)}
    assert set(POLICIES) == {*expected, "production"}
    everything_on = msgspec.structs.replace(
        PRODUCTION, prep=PrepParams(history=7), reposition=RepositionParams(),
        params=msgspec.structs.replace(PRODUCTION.params, commit_early_s=90.0,
                                       stack_max_delay_s=30.0))
    for production in (PRODUCTION, everything_on):
        assert apply_policy("production", production) == production
        for name, (matcher, max_stack) in expected.items():
            d = apply_policy(name, production)
            assert (d.params.policy, d.params.max_stack) == (matcher, max_stack)
            # prep, hold and added lateness, no stacking
            improved = name.startswith("improved")
            assert (d.prep is not None) == ("-prep" in name or improved)
            if d.prep is not None and production.prep is not None:
                assert d.prep == production.prep  # production's own parameters
            assert d.params.commit_early_s == (
                COMMIT_EARLY_S if "-hold" in name or improved else None)
            assert d.params.costs.late_added_only == improved
            assert d.params.stack_max_delay_s == (
                STACK_MAX_DELAY_S if "-stackcap" in name else None)
            assert (d.reposition is not None) == name.endswith("-repos")
            assert d.params.candidates == 9
            assert d.round_s == 3.0


def test_nostack_stacks_nothing() -> None:
    """With stacking off no order rides alongside another; with it on, the same tiny day
    stacks some."""
    day = build_day(PRESETS["tiny"], 3)
    stacked = {}
    for name in ("optimal", "optimal-nostack"):
        run = simulate_day(day, apply_policy(name, LabDispatch()), HaversineTravelModel())
        stacked[name] = lab_kpis(run, len(day.couriers)).stacked
    assert stacked["optimal-nostack"] == 0
    assert stacked["optimal"] > 0
