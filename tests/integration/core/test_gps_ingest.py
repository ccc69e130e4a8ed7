"""GPS ingest end to end on real NATS and Redis: every rejection rule on both paths, nothing
rejected is ever indexed, and the index rebuilds from the stream after a Redis flush."""

from __future__ import annotations

import json
import random
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import websockets

from api.settings import Settings
from tests.integration.core.conftest import CoreServer, eventually, serve_core
from tests.servers import ASGI_ONLY


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def dumps(obj: object) -> str:
    """JSON with out-of-range numbers written as 1e400 (valid JSON that decodes to inf)."""
    return json.dumps(obj).replace("Infinity", "1e400")


def fresh_point(rng: random.Random | None = None) -> tuple[float, float]:
    """A point in a band of the globe no other test uses (tests never see each other)."""
    r = rng or random.Random()
    return round(r.uniform(-40, 40), 6), round(r.uniform(-170, 170), 6)


# (name, fix factory given (lat, lng, now, last_ts) -> dict, expected reason, needs a prior fix)
RULES: list[tuple[str, Any, str, bool]] = [
    ("lat_out_of_range", lambda la, ln, t, _: {"lat": 91.0, "lng": ln, "ts": t},
     "bad_coordinates", False),
    ("lng_out_of_range", lambda la, ln, t, _: {"lat": la, "lng": -180.5, "ts": t},
     "bad_coordinates", False),
    ("infinite_lat", lambda la, ln, t, _: {"lat": 1e400, "lng": ln, "ts": t},
     "bad_coordinates", False),
    ("null_island", lambda la, ln, t, _: {"lat": 0.0, "lng": 0.0, "ts": t}, "null_island", False),
    ("future_ts", lambda la, ln, t, _: {"lat": la, "lng": ln, "ts": t + 31_000},
     "future_ts", False),
    ("stale_ts", lambda la, ln, t, _: {"lat": la, "lng": ln, "ts": t - 601_000},
     "stale_ts", False),
    ("wrong_type", lambda la, ln, t, _: {"lat": "north", "lng": ln, "ts": t}, "bad_type", False),
    ("missing_ts", lambda la, ln, t, _: {"lat": la, "lng": ln}, "missing_field", False),
    ("not_newer", lambda la, ln, t, last: {"lat": la, "lng": ln, "ts": last}, "not_newer", True),
    ("implausible_jump", lambda la, ln, t, last: {"lat": la + 0.05, "lng": ln, "ts": last + 1000},
     "implausible_jump", True),
]


async def nearby(http: httpx.AsyncClient, srv: CoreServer, lat: float, lng: float,
                 radius_m: float = 20_000) -> list[dict[str, Any]]:
    r = await http.get("/api/v1/fleet/couriers/nearby",
                       params={"lat": lat, "lng": lng, "radius_m": radius_m, "limit": 100},
                       headers=srv.auth("fm-1", "fleet_manager"))
    assert r.status_code == 200, r.text
    couriers: list[dict[str, Any]] = r.json()["couriers"]
    return couriers


async def rejected_count(http: httpx.AsyncClient, reason: str) -> float:
    text = (await http.get("/metrics")).text
    line = next(x for x in text.splitlines()
                if x.startswith(f'gps_fixes_rejected_total{{reason="{reason}"}}'))
    return float(line.rsplit(" ", 1)[1])


@pytest.mark.parametrize(("name", "make", "reason", "needs_prior"), RULES,
                         ids=[r[0] for r in RULES])
async def test_http_rejects_each_rule_and_never_indexes_it(
    core_server: CoreServer, http: httpx.AsyncClient, name: str, make: Any, reason: str,
    needs_prior: bool,
) -> None:
    """POST /delivery/locations: the bad fix is 'rejected' with its reason, counted in
    /metrics, and the index shows the courier only where its accepted fixes put it."""
    courier = f"c-http-{name}-{uuid.uuid4().hex[:6]}"
    lat, lng = fresh_point()
    t = now_ms()
    headers = core_server.auth(courier, "delivery")
    if needs_prior:
        r = await http.post("/api/v1/delivery/locations", headers=headers,
                            json={"fixes": [{"lat": lat, "lng": lng, "ts": t - 5000}]})
        assert r.json() == {"accepted": 1, "rejected": []}
    before = await rejected_count(http, reason)
    r = await http.post("/api/v1/delivery/locations", headers=headers,
                        content=dumps({"fixes": [make(lat, lng, t, t - 5000)]}))
    assert r.status_code == 202, r.text
    assert r.json() == {"accepted": 0, "rejected": [{"index": 0, "reason": reason}]}
    assert await rejected_count(http, reason) == before + 1
    await _assert_only_accepted_position(http, core_server, courier, lat, lng, needs_prior)


@pytest.mark.parametrize(("name", "make", "reason", "needs_prior"), RULES,
                         ids=[r[0] for r in RULES])
async def test_websocket_rejects_each_rule_and_keeps_the_socket(
    core_server: CoreServer, http: httpx.AsyncClient, name: str, make: Any, reason: str,
    needs_prior: bool,
) -> None:
    """/ws/courier: a bad fix gets {"type":"ERROR","payload":{"reason":...}}, the socket stays
    open (a valid fix after it is indexed), and the bad fix never reaches the index."""
    await _ws_rejects_and_keeps_the_socket(core_server, http, name, make, reason, needs_prior)


@pytest.fixture(scope="module")
async def asgi_core_server(settings: Settings) -> AsyncIterator[CoreServer]:
    """A second core on the same stores whose sockets have no fast lane (plain ASGI)."""
    async with serve_core(settings, ws=ASGI_ONLY) as srv:
        yield srv


@pytest.mark.parametrize(("name", "make", "reason", "needs_prior"), RULES,
                         ids=[r[0] for r in RULES])
async def test_websocket_rejects_each_rule_over_plain_asgi(
    asgi_core_server: CoreServer, http: httpx.AsyncClient, name: str, make: Any, reason: str,
    needs_prior: bool,
) -> None:
    """The same through the ASGI path (a server without the fast lane)."""
    await _ws_rejects_and_keeps_the_socket(asgi_core_server, http, name, make, reason,
                                           needs_prior)


async def _ws_rejects_and_keeps_the_socket(
    core_server: CoreServer, http: httpx.AsyncClient, name: str, make: Any, reason: str,
    needs_prior: bool,
) -> None:
    courier = f"c-ws-{name}-{uuid.uuid4().hex[:6]}"
    lat, lng = fresh_point()
    t = now_ms()
    url = f"{core_server.ws_url}/ws/courier?token={core_server.token(courier, 'delivery')}"
    async with websockets.connect(url) as ws:
        if needs_prior:
            await ws.send(json.dumps({"type": "LOCATION",
                                      "payload": {"lat": lat, "lng": lng, "ts": t - 5000}}))
        await ws.send(dumps({"type": "LOCATION", "payload": make(lat, lng, t, t - 5000)}))
        reply = json.loads(await ws.recv())
        assert reply == {"type": "ERROR", "payload": {"reason": reason}}
        await _assert_only_accepted_position(http, core_server, courier, lat, lng, needs_prior)
        # Still open and working: a good fix now is accepted and indexed.
        await ws.send(json.dumps({"type": "LOCATION",
                                  "payload": {"lat": lat, "lng": lng, "ts": now_ms()}}))

        async def indexed() -> bool:
            return any(c["courier_id"] == courier for c in await nearby(http, core_server,
                                                                        lat, lng))
        await eventually(indexed)


async def _assert_only_accepted_position(
    http: httpx.AsyncClient, srv: CoreServer, courier: str, lat: float, lng: float,
    has_prior: bool,
) -> None:
    if has_prior:
        async def found() -> list[dict[str, Any]]:
            return [c for c in await nearby(http, srv, lat, lng) if c["courier_id"] == courier]
        hits = await eventually(found)
        assert [(h["lat"], h["lng"]) for h in hits] == [(lat, lng)]  # type: ignore[union-attr]
    else:
        await _indexed_all_accepted(srv)  # anything wrongly accepted would be in by now
        everywhere = await nearby(http, srv, lat, lng, radius_m=50_000)
        assert courier not in {c["courier_id"] for c in everywhere}


async def _indexed_all_accepted(srv: CoreServer) -> None:
    """Wait until everything ``srv`` accepted so far is in the index: its pending socket fixes
    are published, and what JetStream stored is filed."""
    core: Any = srv.core
    await core.ingest.drain()
    await core.indexer.drain()


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"not json", 400, "malformed"),
        (b'{"fixes": {"lat": 1}}', 400, "malformed"),
        (b'{"points": []}', 400, "malformed"),
        (b'{"fixes": []}', 422, "empty_batch"),
    ],
)
async def test_http_invalid_body_is_problem_json(
    core_server: CoreServer, http: httpx.AsyncClient, body: bytes, status: int, code: str
) -> None:
    """A body that is not {"fixes": [...]} is a 4xx problem+json naming the problem."""
    r = await http.post("/api/v1/delivery/locations", content=body,
                        headers=core_server.auth("c-bad-body", "delivery"))
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["type"].endswith(code)


async def test_http_batch_over_limit_is_413(core_server: CoreServer,
                                            http: httpx.AsyncClient) -> None:
    """More than 1000 fixes in one request is refused as a whole (nothing published)."""
    t = now_ms()
    fixes = [{"lat": 10.0, "lng": 10.0 + i * 1e-5, "ts": t - 100_000 + i} for i in range(1001)]
    r = await http.post("/api/v1/delivery/locations", json={"fixes": fixes},
                        headers=core_server.auth("c-big", "delivery"))
    assert r.status_code == 413


async def test_http_mixed_batch_reports_each_index(core_server: CoreServer,
                                                    http: httpx.AsyncClient) -> None:
    """Good fixes in a batch are accepted even when others in it are rejected."""
    lat, lng = fresh_point()
    t = now_ms()
    courier = f"c-mixed-{uuid.uuid4().hex[:6]}"
    r = await http.post("/api/v1/delivery/locations", headers=core_server.auth(courier, "delivery"),
                        json={"fixes": [{"lat": lat, "lng": lng, "ts": t - 3000},
                                        {"lat": 95, "lng": lng, "ts": t - 2000},
                                        {"lat": lat, "lng": lng + 1e-4, "ts": t - 1000}]})
    assert r.json() == {"accepted": 2, "rejected": [{"index": 1, "reason": "bad_coordinates"}]}

    async def at_latest() -> bool:
        hits = [c for c in await nearby(http, core_server, lat, lng) if c["courier_id"] == courier]
        return bool(hits) and hits[0]["lng"] == lng + 1e-4
    await eventually(at_latest)


@pytest.mark.parametrize(
    ("role", "token", "status"),
    [("customer", True, 403), ("fleet_manager", True, 403), (None, False, 401)],
)
async def test_only_couriers_may_post_fixes(
    core_server: CoreServer, http: httpx.AsyncClient, role: str | None, token: bool, status: int
) -> None:
    """Ingest is for role delivery only; no token is 401, another role 403."""
    headers = core_server.auth("u-x", role) if token and role else {}
    r = await http.post("/api/v1/delivery/locations", headers=headers,
                        json={"fixes": [{"lat": 1.0, "lng": 1.0, "ts": now_ms()}]})
    assert r.status_code == status
    assert r.headers["content-type"].startswith("application/problem+json")


@pytest.mark.parametrize("token_kind", ["none", "customer", "garbage"])
async def test_courier_socket_refuses_bad_auth(core_server: CoreServer, token_kind: str) -> None:
    """/ws/courier without a courier's valid token never gets an open socket."""
    query = {"none": "", "customer": f"?token={core_server.token('u1', 'customer')}",
             "garbage": "?token=abc.def.ghi"}[token_kind]
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(f"{core_server.ws_url}/ws/courier{query}") as ws:
            await ws.recv()


async def test_courier_socket_accepts_header_token_and_batches(
    core_server: CoreServer, http: httpx.AsyncClient
) -> None:
    """The token may come in the Authorization header; LOCATIONS batches report bad indexes."""
    courier = f"c-batch-{uuid.uuid4().hex[:6]}"
    lat, lng = fresh_point()
    t = now_ms()
    async with websockets.connect(f"{core_server.ws_url}/ws/courier",
                                  additional_headers=core_server.auth(courier, "delivery")) as ws:
        await ws.send(json.dumps({"type": "LOCATIONS", "payload": [
            {"lat": lat, "lng": lng, "ts": t - 2000},
            {"lat": lat, "lng": lng, "ts": t - 2000},
            {"lat": lat, "lng": lng + 2e-4, "ts": t - 1000},
        ]}))
        reply = json.loads(await ws.recv())
        assert reply == {"type": "ERROR", "payload": {"reason": "not_newer", "index": 1}}
        await ws.send(json.dumps({"type": "DANCE", "payload": {}}))
        assert json.loads(await ws.recv())["payload"]["reason"] == "unknown_type"

    async def at_latest() -> bool:
        hits = [c for c in await nearby(http, core_server, lat, lng) if c["courier_id"] == courier]
        return bool(hits) and hits[0]["lng"] == lng + 2e-4
    await eventually(at_latest)


async def test_index_rebuilds_from_stream_after_redis_flush(
    core_server: CoreServer, http: httpx.AsyncClient
) -> None:
    """Flush the index's Redis keys: the indexer replays the stream and finds every courier
    again, at its latest position."""
    rng = random.Random(7)
    lat0, lng0 = fresh_point(rng)
    t = now_ms()
    couriers = {f"c-rb-{uuid.uuid4().hex[:6]}-{i}": (lat0 + rng.uniform(-0.02, 0.02),
                                                     lng0 + rng.uniform(-0.02, 0.02))
                for i in range(30)}
    for cid, (la, ln) in couriers.items():
        r = await http.post("/api/v1/delivery/locations",
                            headers=core_server.auth(cid, "delivery"),
                            json={"fixes": [{"lat": la - 0.001, "lng": ln, "ts": t - 4000},
                                            {"lat": la, "lng": ln, "ts": t - 2000}]})
        assert r.json()["accepted"] == 2

    async def all_found() -> bool:
        got = {c["courier_id"]: (c["lat"], c["lng"])
               for c in await nearby(http, core_server, lat0, lng0)}
        return all(got.get(cid) == pos for cid, pos in couriers.items())

    await eventually(all_found)
    redis = core_server.core.couriers.redis  # type: ignore[attr-defined]
    keys = [k async for k in redis.scan_iter(match=f"{core_server.settings.server.namespace}:geo*")]
    await redis.delete(*keys)
    assert await nearby(http, core_server, lat0, lng0) == []
    await eventually(all_found, timeout_s=15)
