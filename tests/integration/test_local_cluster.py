"""The local cluster (`api.local_cluster`, ``homechef cluster up``): a Redis Cluster of three
primaries with one replica each, and a NATS cluster whose JetStream keeps every stream on
``NATS_STREAM_REPLICAS`` servers with de-duplication across servers."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import secrets
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import cast

import httpx
import nats
import pytest
import redis.asyncio as aioredis
from nats.js.api import AckPolicy, ConsumerConfig
from redis.asyncio.cluster import RedisCluster
from redis.exceptions import MaxConnectionsError, RedisError

from api.core.dispatch.store import (
    ClaimResult,
    DispatchStore,
    OfferAction,
    TransitionResult,
)
from api.local_cluster import CLUSTER_SLOTS, ClusterUrls, LocalCluster
from api.resources import connect_redis
from api.settings import Settings, StoreSettings
from dispatch.lifecycle import OrderDispatchState
from geo.index_model import status_key
from geo.travel import Vehicle
from streams.catalog import STREAMS, Names
from streams.jetstream import ensure_streams
from streams.wire import Point

pytestmark = pytest.mark.cluster


@pytest.fixture
async def cluster_names(local_cluster: tuple[LocalCluster, ClusterUrls]) -> AsyncIterator[Names]:
    """A namespace of this test's own on the cluster; its streams are deleted after. Right
    after a test restarted a killed server the cluster may still be electing its JetStream
    leaders, and the API times out meanwhile: the deletes are tried again for up to 60 s."""
    names = Names("lc" + secrets.token_hex(3))
    yield names
    nc = await nats.connect(servers=list(local_cluster[1].nats))
    try:
        js = nc.jetstream()
        give_up = time.monotonic() + 60
        for spec in STREAMS:
            while True:
                try:
                    with contextlib.suppress(nats.js.errors.NotFoundError):
                        await js.delete_stream(names.stream(spec))
                    break
                except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                    if time.monotonic() > give_up:
                        raise
                    await asyncio.sleep(0.5)
    finally:
        await nc.close()


async def test_redis_cluster_has_three_primaries_each_with_a_replica(
        local_cluster: tuple[LocalCluster, ClusterUrls]) -> None:
    """Every slot is served, by three primaries; each primary has its own replica, and a
    key written through one node is read through any other (the client follows MOVED)."""
    _, urls = local_cluster
    client = RedisCluster.from_url(urls.redis[-1], decode_responses=True)
    try:
        # CLUSTER NODES: id addr flags primary-id ping pong epoch link slot-ranges...
        rows = [line.split() for line in (await client.execute_command(
            "CLUSTER", "NODES", target_nodes=RedisCluster.RANDOM)).strip().splitlines()]
        primaries = {r[0]: r[8:] for r in rows if "master" in r[2]}
        replica_of = [r[3] for r in rows if "slave" in r[2]]
        served = 0
        for ranges in primaries.values():
            for part in ranges:
                lo, _, hi = part.partition("-")
                served += int(hi or lo) - int(lo) + 1
        assert (len(primaries), served) == (3, CLUSTER_SLOTS)
        assert sorted(replica_of) == sorted(primaries)
        key = f"lc:{secrets.token_hex(4)}"
        await client.set(key, "v", ex=60)
        other = RedisCluster.from_url(urls.redis[0], decode_responses=True)
        try:
            assert await other.get(key) == "v"
        finally:
            await other.aclose()
    finally:
        await client.aclose()


async def test_a_burst_beyond_the_connection_limit_waits_instead_of_failing(
        local_cluster: tuple[LocalCluster, ClusterUrls]) -> None:
    """redis-py's cluster client fails a command at once when its node's connections are all
    busy; the process's client (`connect_redis`) makes the burst wait its turn instead."""
    _, urls = local_cluster
    settings = Settings(stores=StoreSettings(database_url="postgresql://unused@127.0.0.1/x",
                                             redis_url=urls.redis_url, redis_cluster=True,
                                             nats_url=urls.nats_url, redis_pool_max=2))
    prefix = f"lc:{secrets.token_hex(4)}"

    async def burst(client: aioredis.Redis) -> list[object]:
        async def one(i: int) -> object:
            key = f"{{{prefix}}}:{i}"  # one slot: every call on one node
            await client.set(key, i, ex=60)
            async with client.pipeline(transaction=False) as pipe:
                pipe.incr(key)
                pipe.get(key)
                return (await pipe.execute())[1]
        return await asyncio.gather(*(one(i) for i in range(200)), return_exceptions=True)

    bare = RedisCluster.from_url(urls.redis_url, max_connections=2)
    try:
        assert any(isinstance(r, MaxConnectionsError) for r in await burst(bare))
    finally:
        await bare.aclose()
    ours = connect_redis(settings)
    try:
        assert await burst(ours) == [str(i + 1).encode() for i in range(200)]
    finally:
        await ours.aclose()


async def test_streams_and_durable_consumers_are_replicated_on_three_servers(
        local_cluster: tuple[LocalCluster, ClusterUrls], cluster_names: Names) -> None:
    """``ensure_streams(replicas=3)`` puts each stream on three servers; a durable consumer
    created without a count inherits the stream's three."""
    _, urls = local_cluster
    nc = await nats.connect(servers=list(urls.nats))
    try:
        js = nc.jetstream()
        await ensure_streams(js, cluster_names, replicas=3)
        for spec in STREAMS:
            info = await js.stream_info(cluster_names.stream(spec))
            assert info.config.num_replicas == 3
            assert info.cluster is not None
            assert info.cluster.leader
            assert len(info.cluster.replicas or []) == 2
        stream = cluster_names.stream(STREAMS[0])
        await js.add_consumer(stream, ConsumerConfig(durable_name="lc_durable",
                                                     ack_policy=AckPolicy.EXPLICIT))
        consumer = await js.consumer_info(stream, "lc_durable")
        assert consumer.cluster is not None
        assert len(consumer.cluster.replicas or []) == 2
    finally:
        await nc.close()


async def test_a_stream_scaled_up_to_three_replicas_serves_as_soon_as_it_is_declared(
        local_cluster: tuple[LocalCluster, ClusterUrls], cluster_names: Names) -> None:
    """Raising ``NATS_STREAM_REPLICAS`` moves each existing stream to a new RAFT group; until
    that group has a leader, JetStream refuses consumers ("insufficient resources") and
    publishes time out. ``ensure_streams`` returns only once the group serves: the messages
    stored at one replica are kept, and a consumer and a publish succeed at once."""
    _, urls = local_cluster
    nc = await nats.connect(servers=list(urls.nats))
    try:
        js = nc.jetstream()
        await ensure_streams(js, cluster_names, replicas=1)
        spec = STREAMS[0]
        stream = cluster_names.stream(spec)
        subject = cluster_names.stream_subjects(spec)[0].replace(">", "x").replace("*", "x")
        await js.publish(subject, b"before")
        await ensure_streams(js, cluster_names, replicas=3)
        info = await js.stream_info(stream)
        assert info.cluster is not None
        assert info.cluster.leader
        assert len(info.cluster.replicas or []) == 2
        await js.add_consumer(stream, ConsumerConfig(durable_name="lc_scaled",
                                                     ack_policy=AckPolicy.EXPLICIT))
        await js.publish(subject, b"after", timeout=2)
        assert (await js.stream_info(stream)).state.messages == 2
    finally:
        await nc.close()


async def test_a_message_id_is_stored_once_when_resent_through_another_server(
        local_cluster: tuple[LocalCluster, ClusterUrls], cluster_names: Names) -> None:
    """A publish retried after a failover reaches another server: JetStream's
    ``Nats-Msg-Id`` window is the stream's, not the server's, so the retry is a duplicate."""
    _, urls = local_cluster
    first = await nats.connect(servers=[urls.nats[0]], allow_reconnect=False)
    second = await nats.connect(servers=[urls.nats[2]], allow_reconnect=False)
    try:
        await ensure_streams(first.jetstream(), cluster_names, replicas=3)
        spec = STREAMS[0]
        subject = cluster_names.stream_subjects(spec)[0].replace(">", "x").replace("*", "x")
        headers = {"Nats-Msg-Id": "order-1:assigned"}
        ack1 = await first.jetstream().publish(subject, b"one", headers=headers)
        ack2 = await second.jetstream().publish(subject, b"one", headers=headers)
        assert not ack1.duplicate
        assert ack2.duplicate
        assert ack2.seq == ack1.seq
        info = await second.jetstream().stream_info(cluster_names.stream(spec))
        assert info.state.messages == 1
    finally:
        await first.close()
        await second.close()


async def test_cluster_up_runs_the_system_on_the_clusters_and_stops_on_ctrl_c(
        tmp_path: Path) -> None:
    """``homechef cluster up --cores 2`` starts the clusters, prints the environment that
    points homechef at them, runs two core processes, commerce and the gateway on them (the
    gateway's /health answers for both core processes), and stops everything on SIGINT."""
    from api.runtime import free_port

    ports = {"CORE_PORT": free_port(), "COMMERCE_PORT": free_port(),
             "GATEWAY_PORT": free_port()}
    env = {k: v for k, v in os.environ.items()
           if k not in ("DATABASE_URL", "REDIS_URL", "NATS_URL", "REDIS_CLUSTER")}
    env.update({"DATA_DIR": str(tmp_path), **{k: str(v) for k, v in ports.items()}})
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "api.cli", "cluster", "up", "--redis-nodes", "2",
        "--nats-nodes", "1", "--cores", "2", stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE, env=env)
    assert proc.stdout is not None
    lines: list[str] = []
    try:
        async with asyncio.timeout(120):
            while not lines or lines[-1] != "Press Ctrl-C to stop.":
                line = await proc.stdout.readline()
                assert line, f"exited early: {(await proc.communicate())[1].decode()[-500:]}"
                lines.append(line.decode().strip())
        text = "\n".join(lines)
        redis_url = re.search(r"REDIS_CLUSTER=true REDIS_URL=(\S+)", text)
        nats_url = re.search(r"NATS_URL=(\S+) NATS_STREAM_REPLICAS=1", text)
        assert redis_url, text
        assert nats_url, text
        assert re.search(r"core-2 +http://127\.0\.0\.1:\d+", text), text
        client = RedisCluster.from_url(redis_url.group(1))
        try:
            assert await client.ping()
        finally:
            await client.aclose()
        async with httpx.AsyncClient(timeout=10) as http:
            r = await http.get(f"http://127.0.0.1:{ports['GATEWAY_PORT']}/health")
        assert r.status_code == 200, r.text
        cores = [k for k in r.json()["upstreams"] if k.startswith("core@")]
        assert len(cores) == 2, r.text
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGINT)
        out, _ = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    assert out.decode().strip().endswith("stopped")
    assert not list((tmp_path / "cluster" / "run").glob("*.pid"))


async def test_dispatch_state_survives_its_primary_killed_and_transitions_go_on(
        local_cluster: tuple[LocalCluster, ClusterUrls]) -> None:
    """kill -9 the primary holding the dispatch slot: its replica takes over within a few
    node timeouts, a claim made before the kill (replicated: WAIT) is still there, and the
    next transition (the accept) succeeds through the same client. The killed node comes
    back as a replica."""
    cluster, urls = local_cluster
    ns = "lc" + secrets.token_hex(3)
    client = RedisCluster.from_url(urls.redis_url)
    store = DispatchStore(cast(aioredis.Redis, client), ns, status_key(f"{ns}:geo"))
    now = 1_700_000_000_000
    try:
        assert await store.enqueue("o1", region="r1", enter_ms=now - 1, now_ms=now - 10,
                                   pickup=Point(12.97, 77.59), dropoff=Point(12.98, 77.60),
                                   ready_ms=now, promised_ms=now + 60_000, number="o1",
                                   chef_id="k1")
        await store.set_availability("c1", online=True, vehicle=Vehicle.BIKE, now_ms=now)
        result, offer_id = await store.offer("c1", "o1", now_ms=now, expires_ms=now + 30_000)
        assert result == ClaimResult.OK
        primary = client.get_node_from_key(store.p)
        assert await client.execute_command("WAIT", 1, 5000, target_nodes=primary) == 1
        victim = cluster.node_at(primary.port)
        killed_at = time.monotonic()
        await cluster.kill(victim)
        while True:  # the replica is promoted after cluster-node-timeout
            try:
                record = await store.order("o1")
                break
            except RedisError:
                assert time.monotonic() - killed_at < 30, "no failover in 30 s"
                await asyncio.sleep(0.2)
        recovered_s = time.monotonic() - killed_at
        assert record is not None
        assert (record.state, record.courier_id) == (OrderDispatchState.OFFERED, "c1")
        accepted = await store.resolve(offer_id, OfferAction.ACCEPT, courier_id="c1",
                                       now_ms=now + 1_000, order_id="o1")
        assert accepted.result == TransitionResult.ACCEPTED
        assert client.get_node_from_key(store.p).port != primary.port
        print(f"dispatch slot failover: reads and writes again after {recovered_s:.1f} s")
    finally:
        await client.aclose()
        await cluster.restart(cluster.node_at(primary.port))


async def test_jetstream_loses_nothing_when_the_streams_leader_is_killed(
        local_cluster: tuple[LocalCluster, ClusterUrls], cluster_names: Names) -> None:
    """kill -9 the server leading a stream (a client connected to it moves to another
    server): a new leader is elected, publishing goes on (each retried with its
    ``Nats-Msg-Id`` until acked, so stored once), every message acked before the kill is
    still in the stream, and a durable consumer resumes after the last message it acked."""
    cluster, urls = local_cluster
    nc = await nats.connect(servers=list(urls.nats), reconnect_time_wait=0.2,
                            max_reconnect_attempts=-1)
    killed: str | None = None
    try:
        js = nc.jetstream()
        await ensure_streams(js, cluster_names, replicas=3)
        spec = STREAMS[0]
        stream = cluster_names.stream(spec)
        subject = cluster_names.stream_subjects(spec)[0].replace(">", "x").replace("*", "x")

        async def send(i: int, deadline_s: float = 30.0) -> None:
            give_up = time.monotonic() + deadline_s
            while True:
                try:
                    await js.publish(subject, str(i).encode(), timeout=1,
                                     headers={"Nats-Msg-Id": f"m{i}"})
                    return
                except (nats.errors.Error, TimeoutError):
                    assert time.monotonic() < give_up, f"message {i} not stored in time"
                    await asyncio.sleep(0.1)

        async def fetch(n: int, since: float, failure: str) -> list[int]:
            """`n` messages, acknowledged; as `consume_batches` does, fetch again while the
            consumer has no leader (503) for up to 30 s after `since`."""
            got: list[int] = []
            while len(got) < n:
                assert time.monotonic() - since < 30, failure
                try:
                    batch = await sub.fetch(n - len(got), timeout=2)
                except (nats.js.errors.ServiceUnavailableError, nats.errors.TimeoutError):
                    await asyncio.sleep(0.2)
                    continue
                for msg in batch:
                    await msg.ack_sync()
                    got.append(int(msg.data))
            return got

        for i in range(50):
            await send(i)
        sub = await js.pull_subscribe(subject, durable="lc_resume", stream=stream)
        # A new replicated consumer answers 503 until it has a leader.
        first = await fetch(50, time.monotonic(), "the new consumer never served")
        assert first == list(range(50))

        # The stream's RAFT leader (server names are the node names): the worst server to
        # lose, the others must elect a new leader before a publish is acked again.
        leader = (await js.stream_info(stream)).cluster
        assert leader is not None
        assert leader.leader is not None
        killed = leader.leader
        killed_at = time.monotonic()
        await cluster.kill(killed)
        for i in range(50, 100):
            await send(i)
        recovered_s = time.monotonic() - killed_at

        info = await js.stream_info(stream)
        assert (info.state.messages, info.state.last_seq) == (100, 100)
        rest = await fetch(50, killed_at, "the consumer did not resume in 30 s")
        resumed_s = time.monotonic() - killed_at
        assert rest == list(range(50, 100))
        print(f"NATS stream leader {killed} killed: publishes acked again within "
              f"{recovered_s:.1f} s, the durable consumer resumed within {resumed_s:.1f} s")
    finally:
        await nc.close()
        if killed is not None:
            await cluster.restart(killed)
