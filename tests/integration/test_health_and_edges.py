"""Both apps: /health reports each store (503 when one is down), problem+json errors,
request ids, Prometheus metrics and the OpenAPI schema."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from litestar import Litestar
from litestar.testing import AsyncTestClient

from api.app import create_commerce_app, create_core_app
from api.migrate import migrate
from api.runtime import EmbeddedStores
from api.settings import Settings

FACTORIES: list[Callable[[Settings], Litestar]] = [create_core_app, create_commerce_app]


@pytest.mark.parametrize("factory", FACTORIES, ids=["core", "commerce"])
async def test_health_ok_lists_every_store(
    factory: Callable[[Settings], Litestar], settings: Settings
) -> None:
    """All stores up: 200, status ok, and a status and latency for each dependency."""
    async with AsyncTestClient(factory(settings)) as client:
        r = await client.get("/health")
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "ok"
    assert set(body["dependencies"]) == {"postgres", "redis", "nats"}
    for dep in body["dependencies"].values():
        assert dep["status"] == "up"
        assert dep["latency_ms"] >= 0


@pytest.mark.parametrize("store", ["redis", "nats", "postgres"])
async def test_health_503_when_a_store_goes_down(
    store: str, settings: Settings, tmp_path: Path
) -> None:
    """Stop one store under a running app: /health turns 503 and names the store that is down."""
    own = EmbeddedStores(tmp_path / "own")
    urls = await own.start(postgres=store == "postgres", redis=store == "redis",
                           nats=store == "nats")
    if store == "postgres":
        await migrate(urls["postgres"])  # core's start-up reads its tables
    # The store of its own is a single server, also when the session runs on a cluster.
    by_store: dict[str, dict[str, object]] = {
        "postgres": {"stores__database_url": urls.get("postgres")},
        "redis": {"stores__redis_url": urls.get("redis"), "stores__redis_cluster": False},
        "nats": {"stores__nats_url": urls.get("nats"), "stores__nats_stream_replicas": 1},
    }
    app = create_core_app(settings.replace(**by_store[store]))
    try:
        async with AsyncTestClient(app) as client:
            assert (await client.get("/health")).status_code == 200
            await own.stop()
            r = await client.get("/health")
            assert r.status_code == 503
            body = r.json()
            assert body["status"] == "degraded"
            assert body["dependencies"][store]["status"] == "down"
            assert body["dependencies"][store]["error"]
            others = {k: v["status"] for k, v in body["dependencies"].items() if k != store}
            assert set(others.values()) == {"up"}
    finally:
        await own.stop()
        own.remove_files()


async def test_unknown_route_is_problem_json(settings: Settings) -> None:
    """A 404 is application/problem+json with status, title and the path as instance."""
    async with AsyncTestClient(create_commerce_app(settings)) as client:
        r = await client.get("/api/v1/no-such-thing")
    assert r.status_code == 404
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == 404
    assert body["title"] == "Not Found"
    assert body["instance"] == "/api/v1/no-such-thing"


async def test_wrong_method_is_problem_json(settings: Settings) -> None:
    """POST to a GET-only route is a 405 problem, not a 500."""
    async with AsyncTestClient(create_core_app(settings)) as client:
        r = await client.post("/health")
    assert r.status_code == 405
    assert r.headers["content-type"].startswith("application/problem+json")


async def test_request_id_is_echoed_or_generated(settings: Settings) -> None:
    """A caller's X-Request-ID comes back unchanged; without one the server makes one."""
    async with AsyncTestClient(create_core_app(settings)) as client:
        given = await client.get("/health", headers={"X-Request-ID": "abc-123"})
        made = await client.get("/health")
    assert given.headers["x-request-id"] == "abc-123"
    assert len(made.headers["x-request-id"]) >= 16


async def test_metrics_count_requests_by_route(settings: Settings) -> None:
    """/metrics is Prometheus text and counts requests by route template and status."""
    async with AsyncTestClient(create_core_app(settings)) as client:
        for _ in range(3):
            await client.get("/health")
        text = (await client.get("/metrics")).text
    assert 'http_requests_total{method="GET",route="/health",status="200"} 3.0' in text
    assert "http_request_duration_seconds_bucket" in text


@pytest.mark.parametrize("factory", FACTORIES, ids=["core", "commerce"])
async def test_openapi_schema_is_served(
    factory: Callable[[Settings], Litestar], settings: Settings
) -> None:
    """OpenAPI lives at /schema and documents /health."""
    async with AsyncTestClient(factory(settings)) as client:
        r = await client.get("/schema/openapi.json")
    assert r.status_code == 200
    assert "/health" in r.json()["paths"]
