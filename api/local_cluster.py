"""A local Redis Cluster and NATS cluster on loopback ports, to develop and test on.

`LocalCluster` starts ``redis_nodes`` redis-server processes with ``--cluster-enabled yes``
(the first half primaries, the rest one replica each) and ``nats_nodes`` nats-server
processes routed to each other with JetStream, using the same child-process machinery as the
embedded single-node stores (`api.runtime.EmbeddedStores`: parent-death signal, pidfiles
reclaimed by the next start, kill/pause/restart of one node for fault tests).

The Redis Cluster is formed with the commands ``redis-cli --cluster create
--cluster-replicas 1`` sends (CLUSTER ADDSLOTS, MEET, REPLICATE), issued here rather than by
a redis-cli process: no output to parse, and a fixed placement (node ``i + n/2`` replicates
node ``i``) that fault tests can reason about. A local cluster starts empty every time: its
nodes get new ports, and a node's saved cluster config would name the old ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import nats
import nats.errors
import redis.asyncio as aioredis

from api.runtime import (
    EmbeddedError,
    EmbeddedStores,
    _nats_executable,
    _redis_executable,
    _Server,
    free_port,
)

log = logging.getLogger("homechef.cluster")

CLUSTER_SLOTS = 16384
_FORM_TIMEOUT_S = 60.0
_BUS_OFFSET = 10_000


@dataclass(frozen=True, slots=True)
class ClusterTimeouts:
    """How fast the local cluster notices a dead node (short: tests kill nodes on purpose)."""

    redis_node_timeout_ms: int = 2000
    """``cluster-node-timeout``: a primary unreachable this long is failed over to its
    replica (production keeps Redis's 15 s default or less)."""


@dataclass(frozen=True, slots=True)
class ClusterUrls:
    """Where the started cluster listens."""

    redis: tuple[str, ...]
    """Every Redis node, primaries first; any one is enough for a cluster client."""
    nats: tuple[str, ...]

    @property
    def redis_url(self) -> str:
        """``REDIS_URL`` for ``REDIS_CLUSTER=true`` (one node; the client finds the rest)."""
        return self.redis[0]

    @property
    def nats_url(self) -> str:
        """``NATS_URL``: every server, comma-separated."""
        return ",".join(self.nats)


class LocalCluster(EmbeddedStores):
    """A Redis Cluster (``redis_nodes``: half primaries, half replicas) and a NATS cluster
    with JetStream, under ``data_dir``; ``stop()`` stops every node."""

    def __init__(self, data_dir: Path, *, redis_nodes: int = 6, nats_nodes: int = 3,
                 timeouts: ClusterTimeouts = ClusterTimeouts(),
                 host: str = "127.0.0.1") -> None:
        super().__init__(data_dir, host)
        if redis_nodes < 2 or redis_nodes % 2:
            raise EmbeddedError("redis_nodes must be even: one replica per primary")
        if nats_nodes < 1:
            raise EmbeddedError("nats_nodes must be at least 1")
        self.redis_nodes = redis_nodes
        self.nats_nodes = nats_nodes
        self.timeouts = timeouts

    async def start_cluster(self) -> ClusterUrls:
        """Start both clusters; return once Redis reports ``cluster_state:ok`` with every
        replica attached and JetStream answers through every NATS server."""
        for d in (self.data_dir, self._run_dir, self._log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.reclaim()
        redis_servers = [self._prepare_redis_node(i) for i in range(self.redis_nodes)]
        nats_servers = self._prepare_nats_nodes()
        try:
            await asyncio.gather(*(self._launch_and_wait(s)
                                   for s in redis_servers + nats_servers))
            await asyncio.gather(self._form_redis_cluster(redis_servers),
                                 self._wait_jetstream(nats_servers))
        except BaseException:
            await self.stop()
            raise
        return ClusterUrls(redis=tuple(s.url for s in redis_servers),
                           nats=tuple(s.url for s in nats_servers))

    def node_at(self, port: int) -> str:
        """The name (``redis-3``, ``nats-1``) of the node listening on ``port``: what
        `kill`, `pause` and `restart` take."""
        for s in self._servers:
            if s.port == port:
                return s.name
        raise EmbeddedError(f"no node of this cluster listens on {port}")

    # -- Redis -----------------------------------------------------------------------------

    def _prepare_redis_node(self, index: int) -> _Server:
        name = f"redis-{index + 1}"
        port = _redis_cluster_port(self.host)
        data = self.data_dir / name
        shutil.rmtree(data, ignore_errors=True)  # a local cluster starts empty (see module)
        data.mkdir(mode=0o700)
        argv = [
            _redis_executable(), "--port", str(port), "--bind", self.host,
            "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
            "--cluster-node-timeout", str(self.timeouts.redis_node_timeout_ms),
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--dir", str(data), "--daemonize", "no",
        ]
        return _Server(name, argv, port, self._log_dir / f"{name}.log",
                       self._run_dir / f"{name}.pid", f"redis://{self.host}:{port}/0")

    async def _form_redis_cluster(self, servers: list[_Server]) -> None:
        primaries = servers[: len(servers) // 2]
        replicas = servers[len(servers) // 2:]
        clients = [aioredis.Redis(host=self.host, port=s.port, decode_responses=True)
                   for s in servers]
        try:
            ids = [await c.execute_command("CLUSTER", "MYID") for c in clients]
            # Slots split evenly over the primaries, as redis-cli --cluster create does.
            bounds = [CLUSTER_SLOTS * i // len(primaries) for i in range(len(primaries) + 1)]
            for i, _ in enumerate(primaries):
                await clients[i].execute_command(
                    "CLUSTER", "ADDSLOTS", *range(bounds[i], bounds[i + 1]))
            for s in servers[1:]:
                await clients[0].execute_command("CLUSTER", "MEET", self.host, s.port)
            await _until(lambda: _all_know(clients, len(servers)), "the nodes to meet")
            for j, _ in enumerate(replicas):
                await clients[len(primaries) + j].execute_command(
                    "CLUSTER", "REPLICATE", ids[j])
            await _until(lambda: _cluster_ready(clients, len(primaries)),
                         "cluster_state:ok with every replica in sync")
        finally:
            for c in clients:
                await c.aclose()
        log.info("redis cluster ready: %d primaries, %d replicas", len(primaries),
                 len(replicas))

    # -- NATS ------------------------------------------------------------------------------

    def _prepare_nats_nodes(self) -> list[_Server]:
        client_ports = [free_port(self.host) for _ in range(self.nats_nodes)]
        route_ports = [free_port(self.host) for _ in range(self.nats_nodes)]
        routes = ",".join(f"nats://{self.host}:{p}" for p in route_ports)
        servers = []
        for i, (port, route_port) in enumerate(zip(client_ports, route_ports, strict=True)):
            name = f"nats-{i + 1}"
            data = self.data_dir / name
            shutil.rmtree(data, ignore_errors=True)
            data.mkdir(mode=0o700)
            argv = [
                _nats_executable(), "-a", self.host, "-p", str(port), "-js", "-sd", str(data),
                "--server_name", name,
            ]
            if self.nats_nodes > 1:  # a clustered JetStream of one never elects a leader
                argv += ["--cluster_name", "homechef",
                         "--cluster", f"nats://{self.host}:{route_port}", "--routes", routes]
            servers.append(_Server(name, argv, port, self._log_dir / f"{name}.log",
                                   self._run_dir / f"{name}.pid",
                                   f"nats://{self.host}:{port}"))
        return servers

    async def _wait_jetstream(self, servers: list[_Server]) -> None:
        """Until JetStream answers through each server (its meta leader is elected and
        every server sees it)."""

        async def answers() -> bool:
            for s in servers:
                try:
                    nc = await nats.connect(s.url, connect_timeout=1, allow_reconnect=False)
                except (OSError, nats.errors.Error, TimeoutError):
                    return False
                try:
                    await nc.jetstream().account_info()
                except (nats.errors.Error, TimeoutError):
                    return False
                finally:
                    await nc.close()
            return True

        await _until(answers, "JetStream on every NATS server")
        log.info("nats cluster ready: %d servers with JetStream", len(servers))


def _redis_cluster_port(host: str) -> int:
    """A free port whose cluster-bus port (10,000 above it: Redis < 7 cannot move it) is
    free too."""
    for _ in range(1000):
        port = free_port(host)
        if port + _BUS_OFFSET > 65535:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            try:
                s.bind((host, port + _BUS_OFFSET))
            except OSError:
                continue
        return port
    raise EmbeddedError("no free port pair for a Redis Cluster node")


async def _until(check: Callable[[], Awaitable[bool]], what: str) -> None:
    deadline = time.monotonic() + _FORM_TIMEOUT_S
    while not await check():
        if time.monotonic() > deadline:
            raise EmbeddedError(f"local cluster: timed out waiting for {what}")
        await asyncio.sleep(0.1)


async def _all_know(clients: list[aioredis.Redis], n: int) -> bool:
    for c in clients:
        nodes = (await c.execute_command("CLUSTER", "NODES")).strip().splitlines()
        if len(nodes) != n or any("handshake" in line for line in nodes):
            return False
    return True


async def _cluster_ready(clients: list[aioredis.Redis], primaries: int) -> bool:
    for i, c in enumerate(clients):
        info = await c.execute_command("CLUSTER", "INFO")
        if "cluster_state:ok" not in info:
            return False
        if i >= primaries:
            repl = await c.info("replication")
            if repl.get("master_link_status") != "up":
                return False
    return True


@contextlib.asynccontextmanager
async def running_cluster(
    data_dir: Path, *, redis_nodes: int = 6, nats_nodes: int = 3,
    timeouts: ClusterTimeouts = ClusterTimeouts(),
) -> AsyncIterator[tuple[LocalCluster, ClusterUrls]]:
    """Start a `LocalCluster`, yield it with its URLs, stop it and remove its files."""
    cluster = LocalCluster(data_dir, redis_nodes=redis_nodes, nats_nodes=nats_nodes,
                           timeouts=timeouts)
    urls = await cluster.start_cluster()
    try:
        yield cluster, urls
    finally:
        await cluster.stop()
        cluster.remove_files()
