"""Store outages at the edge: a handler that cannot reach a store answers 503 problem+json
with Retry-After (never 500), a socket closes with 1013 (try again later), /health reports the
store down within its timeout, and everything recovers once the store is back.

The Redis, NATS and PostgreSQL tests run the apps against a redis-server / nats-server /
PostgreSQL of their own (a free port, killed or paused by the test, restarted on the same port;
PostgreSQL on a copy of a cluster initialised once per session); the other stores are the
session's, with a fresh database and namespace so the apps' workers compete with no other
test's. One more PostgreSQL test ends the connections of a fresh database of the session's.
The NATS tests also check that no acknowledged GPS fix is lost: a fix the client was not
told was stored is accepted when sent again.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import msgspec
import pytest
import websockets
from websockets.exceptions import ConnectionClosed, InvalidStatus

from api.app import create_commerce_app, create_core_app
from api.auth import TokenCodec
from api.migrate import migrate
from api.problems import PROBLEM_JSON, STORE_RETRY_AFTER_S
from api.resources import connect_redis
from api.runtime import _PgLayout
from api.settings import Settings
from api.stores.live_index import LiveIndex
from tests.servers import (
    KillableServer,
    PostgresServer,
    nats_server,
    postgres_cluster,
    postgres_server,
    serve_app,
)


async def until(check: Callable[[], Awaitable[object]], timeout_s: float) -> object:
    """Poll ``check`` until it returns something truthy; fail after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    last: object = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"not reached within {timeout_s} s (last: {last!r})")


@pytest.fixture
async def own_nats(tmp_path: Path) -> AsyncIterator[KillableServer]:
    server = nats_server(tmp_path / "nats")
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture
async def isolated_settings(settings: Settings, create_database: Any, run_id: str) -> Settings:
    """The session's settings with a fresh database and namespace (so the apps' workers
    compete with no other test's) and a 1 s store timeout (a paused store then fails requests
    in seconds)."""
    database_url: str = await create_database()
    await migrate(database_url)
    return msgspec.structs.replace(
        settings,
        stores=msgspec.structs.replace(settings.stores, database_url=database_url,
                                       timeout_s=1.0),
        server=msgspec.structs.replace(settings.server,
                                       namespace=f"{run_id}_{uuid.uuid4().hex[:6]}"),
    )


def on_store(settings: Settings, store: KillableServer) -> Settings:
    """``settings`` with ``store`` in place of the session's server of its kind (a single
    server, also when the session runs on a cluster)."""
    single: dict[str, object] = (
        {"redis_url": store.url, "redis_cluster": False} if store.name == "redis"
        else {"nats_url": store.url, "nats_stream_replicas": 1})
    return msgspec.structs.replace(
        settings, stores=msgspec.structs.replace(settings.stores, **single))


@pytest.fixture
def outage_settings(isolated_settings: Settings, own_redis: KillableServer) -> Settings:
    return on_store(isolated_settings, own_redis)


def bearer(settings: Settings, user_id: str, role: str) -> dict[str, str]:
    assert settings.server.jwt_secret
    token = TokenCodec(settings.server.jwt_secret).issue(user_id, role)
    return {"Authorization": f"Bearer {token}"}


def assert_store_unavailable(r: httpx.Response, store: str = "redis") -> None:
    """The outage answer: 503, problem+json naming the store, a small Retry-After."""
    assert r.status_code == 503, (r.request.url, r.status_code, r.text)
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.headers["retry-after"] == str(STORE_RETRY_AFTER_S)
    body = r.json()
    assert body["type"] == "urn:homechef:problem:store_unavailable"
    assert body["store"] == store
    assert body["retry_after_s"] == STORE_RETRY_AFTER_S


def core_requests(settings: Settings) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers) of core endpoints that read Redis."""
    courier = bearer(settings, f"cour-{uuid.uuid4().hex[:6]}", "delivery")
    customer = bearer(settings, f"cust-{uuid.uuid4().hex[:6]}", "customer")
    staff = bearer(settings, "fm-1", "fleet_manager")
    return [
        ("GET", "/api/v1/delivery/orders", courier),
        ("GET", "/api/v1/delivery/offers", courier),
        ("GET", f"/api/v1/orders/{uuid.uuid4()}/track", customer),
        ("GET", "/api/v1/fleet/stats", staff),
    ]


async def socket_close_code(url: str, headers: dict[str, str]) -> int | str:
    """How the server ends an order socket: its close code, or the HTTP status."""
    try:
        async with websockets.connect(url, additional_headers=headers, open_timeout=10) as ws:
            try:
                await asyncio.wait_for(ws.recv(), 15)
            except ConnectionClosed as exc:
                return exc.rcvd.code if exc.rcvd else "closed"
            return "open"
    except InvalidStatus as exc:
        return f"http {exc.response.status_code}"


@pytest.mark.parametrize("fault", ["killed", "paused"])
async def test_core_answers_503_while_redis_is_down_and_recovers(
        outage_settings: Settings, own_redis: KillableServer, fault: str) -> None:
    """With Redis killed (connection refused) or paused (timeouts), every core endpoint that
    needs it answers 503 problem+json with Retry-After, an order socket closes with 1013 and
    /health answers 503 with redis "down" within a few seconds; once Redis is back (empty, or
    resumed) the same requests succeed again."""
    app = create_core_app(outage_settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        requests = core_requests(outage_settings)
        for method, path, headers in requests:
            r = await http.request(method, path, headers=headers)
            assert r.status_code < 500, (path, r.status_code, r.text)

        if fault == "killed":
            await own_redis.kill()
        else:
            own_redis.pause()
        try:
            for method, path, headers in requests:
                assert_store_unavailable(await http.request(method, path, headers=headers))

            started = time.monotonic()
            health = await http.get("/health")
            assert time.monotonic() - started < 5, "health must not hang on a dead store"
            assert health.status_code == 503
            report = health.json()
            assert report["status"] == "degraded"
            assert report["dependencies"]["redis"]["status"] == "down"
            assert report["dependencies"]["postgres"]["status"] == "up"

            ws_url = url.replace("http://", "ws://") + f"/ws/orders/{uuid.uuid4()}"
            customer = bearer(outage_settings, "cust-ws", "customer")
            assert await socket_close_code(ws_url, customer) == 1013
        finally:
            if fault == "killed":
                await own_redis.start()
            else:
                own_redis.resume()

        async def all_answer() -> bool:
            for method, path, headers in requests:
                r = await http.request(method, path, headers=headers)
                if r.status_code >= 500:
                    return False
            return (await http.get("/health")).status_code == 200

        await until(all_answer, timeout_s=15)


async def test_commerce_login_answers_503_while_redis_is_down(
        outage_settings: Settings, own_redis: KillableServer) -> None:
    """Commerce's login keeps its failure counters in Redis: with Redis gone it answers 503
    problem+json with Retry-After (not 500), and logs in again once Redis is back."""
    app = create_commerce_app(outage_settings)
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        email = f"outage-{uuid.uuid4().hex[:8]}@example.com"
        credentials = {"email": email, "password": "correct-horse-1"}
        r = await http.post("/api/v1/auth/register", json={**credentials, "role": "customer"})
        assert r.status_code == 201, r.text

        await own_redis.kill()
        try:
            assert_store_unavailable(await http.post("/api/v1/auth/login", json=credentials))
        finally:
            await own_redis.start()

        async def logs_in() -> bool:
            return (await http.post("/api/v1/auth/login", json=credentials)).status_code == 200

        await until(logs_in, timeout_s=15)


async def test_gps_batches_answer_503_while_nats_is_down_and_recover(
        isolated_settings: Settings, own_nats: KillableServer) -> None:
    """An HTTP GPS batch waits for JetStream's ack: with NATS killed it answers 503
    problem+json naming NATS with Retry-After (not 500, and within the client's patience),
    /health shows nats down; with NATS back on its store the same batch is accepted."""
    settings = on_store(isolated_settings, own_nats)
    app = create_core_app(settings)
    courier = bearer(settings, f"cour-{uuid.uuid4().hex[:6]}", "delivery")

    async def post_fix() -> httpx.Response:
        await asyncio.sleep(0.002)  # each fix newer than the last (millisecond timestamps)
        fix = {"lat": 12.97, "lng": 77.59, "ts": time.time_ns() // 1_000_000}
        return await http.post("/api/v1/delivery/locations", headers=courier,
                               json={"fixes": [fix]})

    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        r = await post_fix()
        assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text

        await own_nats.kill()
        try:
            assert_store_unavailable(await post_fix(), store="nats")
            health = await http.get("/health")
            assert health.status_code == 503
            assert health.json()["dependencies"]["nats"]["status"] == "down"
        finally:
            await own_nats.start()

        async def accepted() -> bool:
            r = await post_fix()
            return r.status_code == 202 and r.json()["accepted"] == 1

        await until(accepted, timeout_s=20)


async def test_commerce_survives_postgres_dropping_its_connections(
        isolated_settings: Settings) -> None:
    """PostgreSQL ending every connection of the service (as a restart or failover does: 57P01
    "terminating connection due to administrator command") never makes a request a 500:
    each answer is the normal one or a 503 with Retry-After, and the pool reconnects."""
    app = create_commerce_app(isolated_settings)
    database_url = isolated_settings.stores.database_url
    assert database_url
    database = database_url.rsplit("/", 1)[1]
    async with serve_app(app) as url, httpx.AsyncClient(base_url=url, timeout=30) as http:
        email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
        credentials = {"email": email, "password": "correct-horse-1"}
        r = await http.post("/api/v1/auth/register", json={**credentials, "role": "customer"})
        assert r.status_code == 201, r.text
        me = {"Authorization": f"Bearer {r.json()['access_token']}"}

        admin = await asyncpg.connect(database_url.rsplit("/", 1)[0] + "/postgres")
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()", database)
        finally:
            await admin.close()
        assert ended >= 1

        statuses = []
        for _ in range(12):  # more requests than the pool has connections
            r = await http.get("/api/v1/users/me", headers=me)
            statuses.append(r.status_code)
            if r.status_code == 503:
                assert_store_unavailable(r, store="postgres")
        assert set(statuses) <= {200, 503}, statuses
        assert statuses[-1] == 200, statuses


async def indexed_ts(settings: Settings, courier_id: str) -> int | None:
    """The ``ts`` of the courier's fix in the live index (None: none there)."""
    redis = connect_redis(settings)
    try:
        pos = await LiveIndex(redis, f"{settings.server.namespace}:geo").position(courier_id)
    finally:
        await redis.aclose()
    return None if pos is None else pos.ts_ms


async def test_a_gps_batch_that_failed_is_accepted_when_resent(
        isolated_settings: Settings, own_nats: KillableServer) -> None:
    """A batch answered 503 because JetStream never acked it was not "seen": resent once
    NATS is back, the same fix is accepted (not refused as ``not_newer``) and reaches the
    live index."""
    settings = on_store(isolated_settings, own_nats)
    courier_id = f"cour-{uuid.uuid4().hex[:6]}"
    courier = bearer(settings, courier_id, "delivery")
    first = {"lat": 12.97, "lng": 77.59, "ts": time.time_ns() // 1_000_000 - 2000}
    lost = {**first, "lat": 12.9701, "ts": first["ts"] + 1000}
    async with serve_app(create_core_app(settings)) as url, \
            httpx.AsyncClient(base_url=url, timeout=30) as http:

        async def post(fix: dict[str, Any]) -> httpx.Response:
            return await http.post("/api/v1/delivery/locations", headers=courier,
                                   json={"fixes": [fix]})

        r = await post(first)
        assert (r.status_code, r.json()["accepted"]) == (202, 1), r.text
        await own_nats.kill()
        try:
            assert_store_unavailable(await post(lost), store="nats")
        finally:
            await own_nats.start()

        async def resent() -> dict[str, Any] | None:
            r = await post(lost)
            return r.json() if r.status_code == 202 else None

        body = await until(resent, timeout_s=20)
        assert body == {"accepted": 1, "rejected": []}

        async def indexed() -> bool:
            return await indexed_ts(settings, courier_id) == lost["ts"]

        await until(indexed, timeout_s=15)


async def test_socket_fixes_never_stored_are_reported_and_accepted_when_resent(
        isolated_settings: Settings, own_nats: KillableServer) -> None:
    """A device-socket fix JetStream never acked (NATS killed) is reported to the device as
    ``ERROR not_stored`` with its ``ts``; sent again once NATS is back it is accepted (no
    ``not_newer``) and reaches the live index."""
    settings = on_store(isolated_settings, own_nats).replace(
        ingest__publish_attempts=2, ingest__publish_timeout_s=0.5)
    courier_id = f"cour-{uuid.uuid4().hex[:6]}"
    courier = bearer(settings, courier_id, "delivery")
    first = {"lat": 12.97, "lng": 77.59, "ts": time.time_ns() // 1_000_000 - 5000}
    lost = {**first, "lat": 12.9701, "ts": first["ts"] + 1000}
    async with serve_app(create_core_app(settings)) as url:
        ws_url = url.replace("http://", "ws://") + "/ws/courier"
        async with websockets.connect(ws_url, additional_headers=courier) as ws:

            async def send(fix: dict[str, Any]) -> None:
                await ws.send(json.dumps({"type": "LOCATION", "payload": fix}))

            async def indexed(ts: int) -> bool:
                return await indexed_ts(settings, courier_id) == ts

            await send(first)
            await until(lambda: indexed(first["ts"]), timeout_s=15)
            await own_nats.kill()
            try:
                await send(lost)
                reply = json.loads(await asyncio.wait_for(ws.recv(), 15))
            finally:
                await own_nats.start()
            assert reply["type"] == "ERROR", reply
            payload = reply["payload"]
            assert (payload["reason"], payload["fromTs"], payload["toTs"]) == (
                "not_stored", lost["ts"], lost["ts"])

            # Sent again as a device would: once, and again after each not_stored (while NATS
            # reconnects); never refused as not_newer, until it is in the live index.
            await send(lost)
            deadline = time.monotonic() + 30
            while not await indexed(lost["ts"]):
                assert time.monotonic() < deadline, "the resent fix never reached the index"
                try:
                    answer = json.loads(await asyncio.wait_for(ws.recv(), 0.5))
                except TimeoutError:
                    continue
                assert answer["payload"]["reason"] == "not_stored", answer
                await send(lost)


@pytest.fixture(scope="session")
async def pg_cluster(tmp_data_root: Path) -> AsyncIterator[_PgLayout]:
    """One ``initdb`` per session, copied for each test's own PostgreSQL."""
    cluster = await postgres_cluster(tmp_data_root / "pg-cluster")
    yield cluster
    shutil.rmtree(cluster.base, ignore_errors=True)  # as root: under /tmp, not the data root
    shutil.rmtree(tmp_data_root / "pg-cluster", ignore_errors=True)


@pytest.fixture
async def own_postgres(pg_cluster: _PgLayout) -> AsyncIterator[PostgresServer]:
    server = await postgres_server(pg_cluster)
    try:
        yield server
    finally:
        await server.remove()


@pytest.fixture
async def pg_outage_settings(isolated_settings: Settings,
                             own_postgres: PostgresServer) -> Settings:
    """The isolated settings on the test's own PostgreSQL (migrated)."""
    await migrate(own_postgres.url)
    return isolated_settings.replace(stores__database_url=own_postgres.url)


def _role_of(path: str) -> str:
    for prefix, role in (("/api/v1/admin/", "admin"), ("/api/v1/chef/", "chef"),
                         ("/api/v1/delivery/", "delivery"), ("/api/v1/fleet/", "fleet_manager")):
        if path.startswith(prefix):
            return role
    return "customer"


def every_operation(app: Any, settings: Settings) -> list[tuple[str, str, dict[str, str]]]:
    """(method, path, headers) of every operation of ``app`` but /health, path parameters
    filled with fresh ids, as a user of the role the path is for."""
    requests = []
    for path, ops in app.openapi_schema.to_schema()["paths"].items():
        if path == "/health":
            continue
        for method in ops:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            concrete = re.sub(r"\{[^}]*_id\}", lambda _: str(uuid.uuid4()), path)
            role = _role_of(path)
            requests.append((method.upper(), concrete,
                             bearer(settings, str(uuid.uuid4()), role)))
    return requests


async def test_commerce_and_core_answer_503_while_postgres_is_down_and_recover(
        pg_outage_settings: Settings, own_postgres: PostgresServer) -> None:
    """PostgreSQL killed (kill -9) under running services: every commerce and core GET that
    needs it, and the sign-in and sign-up posts, answer 503 problem+json naming postgres with
    Retry-After; no operation of either service (each sent an empty JSON body) answers 500;
    /health is 503 with postgres down; core's live endpoints (Redis only) keep answering,
    availability (recorded in PostgreSQL) answers 503; once PostgreSQL is back everything
    answers as before, without a restart of either service."""
    settings = pg_outage_settings
    commerce_app = create_commerce_app(settings)
    core_app = create_core_app(settings)
    async with serve_app(commerce_app) as commerce_url, serve_app(core_app) as core_url, \
            httpx.AsyncClient(base_url=commerce_url, timeout=30) as commerce, \
            httpx.AsyncClient(base_url=core_url, timeout=30) as core:
        email = f"pg-{uuid.uuid4().hex[:8]}@example.com"
        credentials = {"email": email, "password": "correct-horse-1"}
        r = await commerce.post("/api/v1/auth/register", json={**credentials, "role": "customer"})
        assert r.status_code == 201, r.text
        me = {"Authorization": f"Bearer {r.json()['access_token']}"}
        refresh = {"refresh_token": r.json()["refresh_token"]}
        staff = bearer(settings, "fm-1", "fleet_manager")
        courier = bearer(settings, f"cour-{uuid.uuid4().hex[:6]}", "delivery")
        assert (await commerce.get("/api/v1/users/me", headers=me)).status_code == 200
        assert (await core.get("/api/v1/fleet/zones", headers=staff)).status_code == 200

        posts = [("POST", "/api/v1/auth/login", credentials),
                 ("POST", "/api/v1/auth/register",
                  {"email": f"new-{email}", "password": "correct-horse-1", "role": "customer"}),
                 ("POST", "/api/v1/auth/forgot-password", {"email": email}),
                 ("POST", "/api/v1/auth/refresh", refresh)]
        must_fail = {"/api/v1/users/me", "/api/v1/chefs", "/api/v1/orders", "/api/v1/cart",
                     "/api/v1/admin/users", "/api/v1/fleet/zones"}

        await own_postgres.kill()
        try:
            answers: dict[str, int] = {}
            for client, app in ((commerce, commerce_app), (core, core_app)):
                for method, path, headers in every_operation(app, settings):
                    r = await client.request(method, path, headers=headers,
                                             json=None if method == "GET" else {})
                    answers[f"{method} {path}"] = r.status_code
                    if r.status_code >= 500:
                        assert_store_unavailable(r, store="postgres")
                    if method == "GET" and path in must_fail:
                        assert_store_unavailable(r, store="postgres")
            assert_store_unavailable(await commerce.get("/api/v1/users/me", headers=me),
                                     store="postgres")
            for method, path, body in posts:
                r = await commerce.request(method, path, json=body)
                assert_store_unavailable(r, store="postgres")
            for client in (commerce, core):
                health = await client.get("/health")
                assert health.status_code == 503
                assert health.json()["dependencies"]["postgres"]["status"] == "down"
            # Core's live state is Redis: the courier's own orders still answer. Availability
            # is recorded in PostgreSQL (for a rebuild after Redis loss): 503 until it is.
            r = await core.get("/api/v1/delivery/orders", headers=courier)
            assert r.status_code == 200, r.text
            r = await core.put("/api/v1/delivery/availability", headers=courier,
                               json={"online": True, "vehicle": "bike"})
            assert_store_unavailable(r, store="postgres")
            assert 500 not in answers.values(), answers
        finally:
            await own_postgres.start()

        async def recovered() -> bool:
            checks = [await commerce.get("/api/v1/users/me", headers=me),
                      await commerce.post("/api/v1/auth/login", json=credentials),
                      await core.get("/api/v1/fleet/zones", headers=staff),
                      await core.put("/api/v1/delivery/availability", headers=courier,
                                     json={"online": True, "vehicle": "bike"}),
                      await commerce.get("/health"), await core.get("/health")]
            return all(r.status_code == 200 for r in checks)

        await until(recovered, timeout_s=20)
