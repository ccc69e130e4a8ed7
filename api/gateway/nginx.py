"""The routing table and the gateway's limits as an nginx configuration (the official
``nginx`` image in docker-compose.yml). Pure text rendering; ``homechef gateway nginx-conf``
prints it and a test keeps `deploy/nginx.conf` equal to it.

What differs from the embedded gateway: nginx counts the per-user limit per bearer token
(it does not verify tokens), and answers a refused socket handshake as nginx does.
"""

from __future__ import annotations

import json

from api.gateway.routes import ROUTES, Kind, Route
from api.problems import PROBLEM_JSON
from api.settings import GatewaySettings

UPSTREAMS: dict[str, tuple[str, ...]] = {"core": ("core:8000",),
                                         "commerce": ("commerce:8001",)}
"""The services as docker-compose names them (docker-compose.cluster.yml runs several
processes of each: `cluster_upstreams`)."""


def cluster_upstreams(cores: int, commerces: int) -> dict[str, tuple[str, ...]]:
    """The processes of docker-compose.cluster.yml: ``core-1:8000`` ... and
    ``commerce-1:8001`` ..."""
    return {"core": tuple(f"core-{i}:8000" for i in range(1, cores + 1)),
            "commerce": tuple(f"commerce-{i}:8001" for i in range(1, commerces + 1))}


def _problem(status: int, title: str, code: str, detail: str, **extra: object) -> str:
    body = {"type": f"urn:homechef:problem:{code}", "title": title, "status": status,
            "detail": detail, **extra}
    return json.dumps(body, separators=(",", ":"))


def _location(route: Route, limits: GatewaySettings) -> str:
    kind_lines: dict[Kind, list[str]] = {
        "api": [f"limit_req zone=per_ip burst={limits.ip_burst} nodelay;",
                f"limit_req zone=per_user burst={limits.user_burst} nodelay;"],
        "ws": [f"limit_req zone=per_ip burst={limits.ip_burst} nodelay;",
               "proxy_set_header Upgrade $http_upgrade;",
               "proxy_set_header Connection $connection_upgrade;",
               "proxy_read_timeout 1h;  # sockets stay open; the services ping them"],
        "page": [],
    }
    lines = [f"proxy_pass http://{route.upstream};",
             # proxy_set_header/add_header are inherited only by levels that set none.
             "proxy_set_header X-Request-ID $req_id;",
             "proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
             "proxy_set_header X-Forwarded-Proto $scheme;",
             "proxy_set_header X-Forwarded-Host $http_host;",
             "proxy_hide_header X-Request-ID;",
             "add_header X-Request-ID $req_id always;",
             *kind_lines[route.kind],
             *([f"client_max_body_size {limits.upload_max_bytes};"] if route.upload else [])]
    body = "".join(f"            {line}\n" for line in lines)
    return f'        location ~ "{route.pattern}" {{\n{body}        }}\n'


def _answer(name: str, status: int, body: str, retry_after_s: int | None = None) -> str:
    retry = (f"            add_header Retry-After {retry_after_s} always;\n"
             if retry_after_s else "")
    return (f"        location {name} {{\n"
            f"            default_type {PROBLEM_JSON};\n"
            f"            add_header X-Request-ID $req_id always;\n{retry}"
            f"            return {status} '{body}';\n"
            f"        }}\n")


def nginx_conf(limits: GatewaySettings | None = None,
               routes: tuple[Route, ...] = ROUTES,
               upstreams: dict[str, tuple[str, ...]] | None = None) -> str:
    """The whole ``nginx.conf``: regex locations in table order (nginx, like `route_for`,
    takes the first regex that matches), limits, timeouts and problem+json refusals. With
    several servers per service nginx balances round-robin and, as the embedded gateway,
    passes a request it could not send (refused, timed out connecting) to the next."""
    lim = limits or GatewaySettings()
    retry = lim.retry_after_s
    blocks = "".join(
        f"    upstream {name} {{ {' '.join(f'server {a};' for a in addrs)} keepalive 32; }}\n"
        for name, addrs in (upstreams or UPSTREAMS).items())
    return (
        "# Generated from api/gateway/routes.py by `homechef gateway nginx-conf > "
        "deploy/nginx.conf`;\n# do not edit by hand (tests/unit/api/test_gateway.py "
        "compares them).\n"
        "events {}\n"
        "http {\n"
        "    access_log off;\n"
        "    map $http_upgrade $connection_upgrade { default upgrade; '' close; }\n"
        "    map $http_x_request_id $req_id { default $http_x_request_id; '' $request_id; }\n"
        f"    limit_req_zone $binary_remote_addr zone=per_ip:10m "
        f"rate={round(lim.ip_rate_per_s)}r/s;\n"
        f"    limit_req_zone $http_authorization zone=per_user:10m "
        f"rate={round(lim.user_rate_per_s)}r/s;\n"
        "    limit_req_status 429;\n"
        f"{blocks}"
        "    server {\n"
        f"        listen {lim.port};\n"
        f"        client_max_body_size {lim.body_max_bytes};\n"
        f"        proxy_connect_timeout {round(lim.connect_timeout_s)}s;\n"
        f"        proxy_read_timeout {round(lim.read_timeout_s)}s;\n"
        f"        proxy_send_timeout {round(lim.read_timeout_s)}s;\n"
        "        proxy_http_version 1.1;\n"
        "        error_page 502 = @unavailable;\n"
        "        error_page 504 = @timeout;\n"
        "        error_page 413 = @too_large;\n"
        "        error_page 429 = @rate_limited;\n"
        + "".join(_location(r, lim) for r in routes)
        + _answer("/", 404, _problem(404, "Not Found", "not_found",
                                     "no service serves this path"))
        + _answer("@unavailable", 503, _problem(
            503, "Service Unavailable", "upstream_unavailable",
            f"the service is unavailable; retry after {retry} s", retry_after_s=retry), retry)
        + _answer("@timeout", 504, _problem(504, "Gateway Timeout", "upstream_timeout",
                                            "the service did not answer in time"))
        + _answer("@too_large", 413, _problem(
            413, "Content Too Large", "body_too_large",
            f"request body larger than {lim.body_max_bytes} bytes",
            limit_bytes=lim.body_max_bytes))
        + _answer("@rate_limited", 429, _problem(429, "Too Many Requests", "rate_limited",
                                                 "too many requests; slow down"), 1)
        + "    }\n"
        "}\n")


__all__ = ["UPSTREAMS", "nginx_conf"]
