"""The same drill on clusters: a 6-node Redis Cluster, a 3-node NATS cluster with replicated
streams and three core processes behind the gateway, from the same code as the single-node
system. One simulated day goes through the gateway (orders paid, offered, accepted, picked up
and delivered; customers following their courier's position and ETA) while one core process,
the Redis primary holding the dispatch slot and the NATS server leading the LOCATIONS stream
are killed one after another: nothing paid is stranded, nobody holds an order twice, no
acknowledged fix is lost, and each loss is recovered from within `RECOVERY_S`."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from api.simulator.cluster_drill import ClusterRig
from api.simulator.drill import Fault, drill
from tests.faults.test_faults import CITY, FIRST_FAULT_S, RECOVERY_S, SPACING_S, _config

FAULTS = [Fault("core-2", "kill"), Fault("redis-primary", "kill"), Fault("nats-leader", "kill")]


@pytest.fixture
async def cluster_rig(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ClusterRig]:
    system = ClusterRig(tmp_path_factory.mktemp("cluster-faults"), cores=3)
    try:
        await system.start()
        yield system
    finally:
        await system.stop()


@pytest.mark.timeout(420)
async def test_a_day_on_clusters_survives_losing_a_core_a_primary_and_a_stream_leader(
        cluster_rig: ClusterRig) -> None:
    config = _config(FAULTS, lasts_s={"kill": 8.0})
    assert config.city.center == CITY
    out = await drill(cluster_rig, config, FAULTS, first_fault_s=FIRST_FAULT_S,
                      spacing_s=SPACING_S)
    print("\n" + "\n".join(f"FAULT {f.line()}" for f in out.figures)
          + f"\nDAY   clusters: {out.line()}")
    core_view = await cluster_rig.core_view([s.split(" ")[0] for s in out.sim.stranded[:3]])
    detail = (f"{out.line()}\n" + "\n".join(f.line() for f in out.figures)
              + f"\nfaults at: {out.faults_at}\nunfinished: {out.sim.unfinished[:5]}"
              f"\nin core: {core_view}"
              f"\nconflicts: {out.conflicts[:3]}\nerrors: {out.sim.errors[:8]}"
              f"\nlog: {cluster_rig.log_tail(25)}")
    k = out.sim.kpis
    assert out.sim.paid >= 12, detail
    assert k.delivered >= 10, detail  # the golden path, many times over
    assert k.eta_error_assign_p50_s is not None, detail  # customers were told an ETA
    assert out.sim.stranded == [], detail
    assert k.double_assignments == 0, detail
    assert out.fixes_acked > 0, detail
    assert out.fixes_lost == 0, detail
    assert len(out.figures) == len(FAULTS), detail
    for f in out.figures:
        assert f.recovery_s is not None, detail
        assert f.recovery_s <= RECOVERY_S, detail
