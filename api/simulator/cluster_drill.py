"""The fault drills' system on clusters: a local Redis Cluster (3 primaries, 3 replicas), a
3-node NATS cluster with replicated streams, several core processes behind the gateway
(clients reach core through it, as in production), commerce, and an embedded PostgreSQL.

Every part can be killed like `drill.Rig`'s, plus what only a cluster has: one of the core
processes, the Redis primary holding the dispatch slot, the NATS server leading the
LOCATIONS stream. `drill.drill` runs a day on it unchanged."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time
from pathlib import Path
from typing import cast

import httpx
import nats
import redis.asyncio as aioredis
from redis.asyncio.cluster import RedisCluster

from api.local_cluster import ClusterUrls, LocalCluster
from api.migrate import migrate
from api.runtime import EmbeddedError, EmbeddedStores, free_port
from api.settings import (
    DispatchSettings,
    GatewaySettings,
    ServerSettings,
    Settings,
    StoreSettings,
)
from api.simulator.drill import Rig, Target
from api.simulator.run import Endpoints
from api.simulator.system import create_staff, staff_login
from geo.index_model import DISPATCH_TAG
from streams.catalog import LOCATIONS, Names

log = logging.getLogger("homechef.drill")

NAMESPACE = "cfaults"
DISPATCH_KEY = f"{NAMESPACE}:{DISPATCH_TAG}"
"""A key in the dispatch slot (core's dispatch prefix)."""


class ClusterRig(Rig):
    """`Rig` on clusters with `cores` core processes (named ``core``, ``core-2``, ...)."""

    def __init__(self, root: Path, *, cores: int = 3) -> None:
        super().__init__(root)
        self.cluster = LocalCluster(root / "cluster")
        self.pg = EmbeddedStores(root / "pg")
        self.cores = [f"core-{i}" if i > 1 else "core" for i in range(1, cores + 1)]
        self.ports: dict[str, int] = {}
        self.urls: ClusterUrls | None = None
        self._tolerated = 1
        """Core processes that may be down while the system counts as serving."""
        self._lost: dict[str, str] = {}
        """Cluster part -> the node name killed for it (restored by name)."""

    async def start(self) -> None:
        try:
            self.urls = await self.cluster.start_cluster()
        except EmbeddedError as exc:
            # Bringing the clusters up is the drill's ground, not what it tests: a NATS
            # meta-leader election that stalls on a starved machine gets one more go.
            log.warning("local clusters did not form (%s); starting them again", exc)
            self.urls = await self.cluster.start_cluster()
        dsn = (await self.pg.start(postgres=True, redis=False, nats=False))["postgres"]
        await migrate(dsn)
        email, password = staff_login("admin")
        await create_staff(dsn, email, password, "admin")
        self.ports = {name: free_port() for name in [*self.cores, "commerce", "gateway"]}
        host = "http://127.0.0.1"
        self.settings = Settings(
            stores=StoreSettings(database_url=dsn, redis_url=self.urls.redis_url,
                                 redis_cluster=True, nats_url=self.urls.nats_url,
                                 nats_stream_replicas=3, timeout_s=2.0),
            server=ServerSettings(jwt_secret=secrets.token_urlsafe(48),
                                  data_dir=self.root / "data", namespace=NAMESPACE,
                                  core_port=self.ports["core"],
                                  commerce_port=self.ports["commerce"], log_level="WARNING"),
            dispatch=DispatchSettings(round_s=0.5, offer_ttl_s=10.0),
            # The simulated city talks from one address: no per-IP or per-user limits.
            gateway=GatewaySettings(
                port=self.ports["gateway"], ip_rate_per_s=1e6, ip_burst=1_000_000,
                user_rate_per_s=1e6, user_burst=1_000_000,
                core_url=",".join(f"{host}:{self.ports[c]}" for c in self.cores)),
        )
        gateway = f"{host}:{self.ports['gateway']}"
        self.endpoints = Endpoints(core_url=gateway, commerce_url=gateway,
                                   admin_email=email, admin_password=password)
        for name in [*self.cores, "commerce", "gateway"]:
            await self._spawn_named(name)
        self._tolerated = 0  # every process up before the day starts
        try:
            await self.wait_healthy(90.0)
        finally:
            self._tolerated = 1

    async def _spawn_named(self, name: str) -> None:
        assert self.settings is not None
        settings = self.settings
        if name in self.cores:
            settings = settings.replace(server__core_port=self.ports[name])
        await self._spawn(name, settings)

    async def stop(self) -> None:
        for proc in self.procs.values():
            if proc.returncode is None:
                proc.kill()
                await proc.wait()
        await self.cluster.stop()
        self.cluster.remove_files()
        await self.pg.stop()
        self.pg.remove_files()

    async def healthy(self) -> bool:
        """The system serves: commerce and all core processes but at most one (none while
        starting) answer 200 on /health (asked through the gateway's, which asks each). A
        core process killed is replaced by the others at once (the gateway passes its
        requests on, its regions' leases lapse to them); its own restart is not what the
        service waits for."""
        async with httpx.AsyncClient(timeout=2.0) as client:
            try:
                r = await client.get(f"http://127.0.0.1:{self.ports['gateway']}/health")
                answers: dict[str, object] = r.json()["upstreams"]
            except (httpx.HTTPError, ValueError, KeyError):
                return False
        cores_down = sum(1 for k, v in answers.items() if k.startswith("core") and v != 200)
        return answers.get("commerce") == 200 and cores_down <= self._tolerated

    # -- faults ----------------------------------------------------------------------------
    async def kill(self, target: Target) -> None:
        if target in self.procs:
            proc = self.procs[target]
            proc.kill()
            await proc.wait()
        elif target == "redis-primary":
            self._lost[target] = await self._dispatch_primary()
            await self.cluster.kill(self._lost[target])
        elif target == "nats-leader":
            self._lost[target] = await self._locations_leader()
            await self.cluster.kill(self._lost[target])
        elif target == "postgres":
            await self.pg.kill(target)
        else:
            raise ValueError(f"a cluster rig cannot lose {target!r}")

    async def restore(self, target: Target, *, empty: bool = False) -> None:
        if target in self.procs:
            await self._spawn_named(target)
        elif target in self._lost:
            if target == "redis-primary":  # back only once its replica took over
                await self._until_primary_moved(self._lost[target])
            await self.cluster.restart(self._lost.pop(target), empty=empty)
        elif target == "postgres":
            await self.pg.restart(target, empty=empty)
        else:
            raise ValueError(f"a cluster rig cannot restore {target!r}")

    async def _dispatch_primary(self) -> str:
        """The node name of the Redis primary serving the dispatch slot."""
        assert self.urls is not None
        client = RedisCluster.from_url(self.urls.redis_url)
        try:
            await client.initialize()
            node = client.get_node_from_key(DISPATCH_KEY)
            assert node is not None
            return self.cluster.node_at(int(node.port))
        finally:
            await client.aclose()

    async def _until_primary_moved(self, killed: str, timeout_s: float = 30.0) -> None:
        """Wait until a live node serves the dispatch slot (the replica was promoted)."""
        assert self.urls is not None
        deadline = time.monotonic() + timeout_s
        live = [u for u in self.urls.redis if self.cluster.node_at(_port(u)) != killed]
        while time.monotonic() < deadline:
            for url in live:
                client = aioredis.from_url(url)
                try:
                    slot = cast(int, await client.execute_command(
                        "CLUSTER", "KEYSLOT", DISPATCH_KEY))
                    for start, end, primary, *_ in cast(
                            list[list[object]], await client.execute_command("CLUSTER",
                                                                           "SLOTS")):
                        port = cast(list[object], primary)[1]
                        if cast(int, start) <= slot <= cast(int, end) and \
                                self.cluster.node_at(cast(int, port)) != killed:
                            return
                except (OSError, aioredis.RedisError):
                    pass
                finally:
                    await client.aclose()
            await asyncio.sleep(0.2)
        raise RuntimeError(f"no replica took over from {killed} in {timeout_s:.0f} s")

    async def _locations_leader(self) -> str:
        """The node name of the NATS server leading the LOCATIONS stream (its RAFT
        leader: the worst one to lose)."""
        assert self.urls is not None
        nc = await nats.connect(servers=list(self.urls.nats))
        try:
            info = await nc.jetstream().stream_info(Names(NAMESPACE).stream(LOCATIONS))
            assert info.cluster is not None
            assert info.cluster.leader is not None
            return info.cluster.leader
        finally:
            await nc.close()


def _port(url: str) -> int:
    return int(url.rsplit(":", 1)[1].split("/")[0])
