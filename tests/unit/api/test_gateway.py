"""The gateway's routing table and limiters, without servers."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from api.app import create_commerce_app, create_core_app
from api.gateway.limits import BucketLimits, TokenBuckets
from api.gateway.nginx import cluster_upstreams, nginx_conf
from api.gateway.routes import route_for
from api.settings import ServerSettings, Settings

ROOT = Path(__file__).resolve().parents[3]
SHARED = {"/health", "/metrics"}
"""Each service's own (the gateway answers /health itself; /metrics stays internal)."""


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda _: str(uuid.uuid4()), path)


def test_every_route_of_each_service_reaches_that_service() -> None:
    """Each path either service serves is routed to it by the table (none falls to the
    other), and nothing else (a made-up path) is routed."""
    settings = Settings(server=ServerSettings(jwt_secret="g" * 40))
    for service, app in (("core", create_core_app(settings)),
                         ("commerce", create_commerce_app(settings))):
        paths = {r.path for r in app.routes} - SHARED
        if service == "core":
            paths = {p for p in paths if not p.startswith("/schema")}  # commerce's is public
        assert paths
        for path in paths:
            route = route_for(_concrete(path))
            assert route is not None, path
            assert route.upstream == service, path
    assert route_for("/etc/passwd") is None
    assert route_for("/api/v2/orders") is None


@pytest.mark.parametrize(("path", "upstream", "kind"), [
    ("/api/v1/orders/abc/track", "core", "api"),
    ("/api/v1/orders/abc", "commerce", "api"),
    ("/api/v1/orders/abc/track/more", "commerce", "api"),
    ("/api/v1/delivery/locations", "core", "api"),
    ("/api/v1/delivery/profile", "commerce", "api"),
    ("/api/v1/delivery/earnings", "commerce", "api"),
    ("/api/v1/fleetx", "commerce", "api"),
    ("/ws/orders/abc", "core", "ws"),
    ("/console/", "core", "page"),
    ("/console/js/app.js", "core", "page"),
])
def test_table_rows(path: str, upstream: str, kind: str) -> None:
    """Specific core paths win over commerce's catch-all; prefixes end at a segment."""
    route = route_for(path)
    assert route is not None
    assert (route.upstream, route.kind) == (upstream, kind)


def test_compose_nginx_conf_is_rendered_from_the_table() -> None:
    """deploy/nginx.conf is exactly what the table renders (regenerate with
    `homechef gateway nginx-conf > deploy/nginx.conf`), and lists the routes in order."""
    text = (ROOT / "deploy" / "nginx.conf").read_text()
    assert text == nginx_conf()
    assert text.index("/orders/[^/]+/(track|share)") < text.index('"^/api/v1/"')
    assert "client_max_body_size 1048576;" in text


def test_cluster_nginx_conf_balances_over_every_process() -> None:
    """deploy/nginx-cluster.conf (docker-compose.cluster.yml's gateway) is the same table
    with three core and two commerce processes (`homechef gateway nginx-conf --cores 3
    --commerces 2 > deploy/nginx-cluster.conf`)."""
    text = (ROOT / "deploy" / "nginx-cluster.conf").read_text()
    assert text == nginx_conf(upstreams=cluster_upstreams(3, 2))
    assert ("upstream core { server core-1:8000; server core-2:8000; server core-3:8000; "
            "keepalive 32; }") in text
    assert "upstream commerce { server commerce-1:8001; server commerce-2:8001;" in text


def test_bucket_admits_a_burst_then_the_rate() -> None:
    """A full bucket admits `burst` requests at once, then one per 1/rate seconds; the wait
    it reports is exact; keys are independent."""
    buckets = TokenBuckets(BucketLimits(rate_per_s=2.0, burst=3, max_keys=10))
    assert [buckets.take("a", 100.0) for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.take("a", 100.0) == pytest.approx(0.5)
    assert buckets.take("b", 100.0) == 0.0
    assert buckets.take("a", 100.5) == 0.0
    assert buckets.take("a", 100.5) == pytest.approx(0.5)
    assert buckets.take("a", 200.0) == 0.0  # refilled, capped at burst
    assert [buckets.take("a", 200.0) for _ in range(3)] == [0.0, 0.0, pytest.approx(0.5)]


def test_buckets_keep_only_the_most_recent_keys() -> None:
    """Memory is bounded: beyond max_keys the least recently seen key is dropped (and would
    start full again)."""
    buckets = TokenBuckets(BucketLimits(rate_per_s=1.0, burst=1, max_keys=2))
    buckets.take("a", 0.0)
    buckets.take("b", 0.0)
    buckets.take("a", 0.0)  # a is now the most recent
    buckets.take("c", 0.0)
    assert len(buckets) == 2
    assert buckets.take("b", 0.0) == 0.0  # b was dropped: full again
    assert buckets.take("c", 0.0) > 0.0  # c was kept: still empty
