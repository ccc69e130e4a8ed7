"""Kill, pause or slow down each part of a running system while simulated customers, chefs
and couriers (who retry like real apps) use it, then check the records: every paid order
delivered or cancelled, nobody holding an order twice, every acknowledged GPS fix stored,
and the system serving again within 10 s of each part coming back.

Three simulated days, each with its faults one after another (a fault every
`SPACING_S`), so the suite stays short; each fault prints one line of figures (``-s``).
Longer days with more couriers: ``python -m bench.faults``."""

from __future__ import annotations

import pytest

from api.simulator.agents import Behaviour
from api.simulator.city import CityConfig, Point
from api.simulator.drill import Fault, Rig, drill
from api.simulator.run import SimConfig

RECOVERY_S = 10.0
FIRST_FAULT_S = 5.0
"""Into the day: orders are waiting and couriers are riding."""
SPACING_S = 10.0
"""From one part being back to the next fault (the recovery bound: each recovery is measured
before the next fault)."""

LASTS_S = {"kill": 5.0, "kill-empty": 2.5, "pause": 4.5, "slow": 6.5}
"""How long each kind of fault takes until the part is back (a killed service also starts up
again): ordering goes on until the last part has been back for `SPACING_S`."""

DAYS: dict[str, list[Fault]] = {
    "processes": [Fault("core", "kill"), Fault("commerce", "kill")],
    "redis": [Fault("redis", "kill"), Fault("redis", "pause"), Fault("redis", "slow")],
    "data-loss-and-other-stores": [Fault("redis", "kill-empty"), Fault("nats", "kill"),
                                   Fault("postgres", "kill")],
}

CITY = Point(-33.45, -70.66)


def _config(faults: list[Fault], lasts_s: dict[str, float] | None = None) -> SimConfig:
    lasts = {**LASTS_S, **(lasts_s or {})}
    return SimConfig(
        city=CityConfig(seed=11, center=CITY, radius_m=300, chefs=3, couriers=8,
                        customers=10, prep_s=(3.0, 6.0)),
        orders_per_min=40, duration_s=FIRST_FAULT_S + sum(SPACING_S + lasts[f.kind]
                                                          for f in faults),
        drain_s=90, progress_s=5, retry_budget_s=60,
        behaviour=Behaviour(speed_factor=12.0, think_s=(0.1, 0.3), chef_poll_s=0.5,
                            fix_interval_s=(1.0, 2.0), check_in_s=3.0))


@pytest.mark.timeout(300)
@pytest.mark.parametrize("day", list(DAYS))
async def test_the_day_survives(rig: Rig, day: str) -> None:
    await rig.wait_healthy(30.0)  # the previous day left it healthy
    faults = DAYS[day]
    out = await drill(rig, _config(faults), faults, first_fault_s=FIRST_FAULT_S,
                      spacing_s=SPACING_S)
    print("\n" + "\n".join(f"FAULT {f.line()}" for f in out.figures)
          + f"\nDAY   {day}: {out.line()}")
    core_view = await rig.core_view([s.split(" ")[0] for s in out.sim.stranded[:3]])
    detail = (f"{day}: {out.line()}\n" + "\n".join(f.line() for f in out.figures)
              + f"\nunfinished: {out.sim.unfinished[:5]}\nin core: {core_view}"
              f"\nerrors: {out.sim.errors[:8]}\nlog: {rig.log_tail()}")
    assert out.sim.paid >= 12, detail  # the day really happened around the faults
    assert out.sim.stranded == [], detail
    assert out.sim.kpis.double_assignments == 0, detail
    assert out.fixes_acked > 0, detail
    assert out.fixes_lost == 0, detail  # no acknowledged fix lost
    assert len(out.figures) == len(faults), detail
    for f in out.figures:
        assert f.recovery_s is not None, detail
        assert f.recovery_s <= RECOVERY_S, detail
        assert f.first_assignment_s is not None, detail  # rounds run again after it
