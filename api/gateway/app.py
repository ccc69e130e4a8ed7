"""The gateway: one ASGI app that forwards each request to the service owning its path.

HTTP goes through one pooled ``httpx.AsyncClient`` per service, streamed back as it arrives;
WebSockets are bridged to a ``websockets`` client connection opened before the client's
handshake is answered, so the client sees the service's own answer (its subprotocol, or its
refusal). The request id is taken from ``X-Request-ID`` (or made) and sent on to the service;
``X-Forwarded-For/Proto/Host`` tell the service who called (uvicorn trusts them from
loopback: ``FORWARDED_ALLOW_IPS`` for other hosts).

Refusals are problem+json: 404 no service owns the path, 413 body too large, 429 rate limit
(``Retry-After``), 503 the service cannot be reached (``Retry-After``), 504 it did not
answer within ``GATEWAY_READ_TIMEOUT_S``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from typing import Any, cast

import httpx
import msgspec
import websockets
from litestar.exceptions import NotAuthorizedException
from litestar.types import ASGIApp
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.typing import Subprotocol

from api.auth import TokenCodec
from api.gateway.limits import BucketLimits, TokenBuckets
from api.gateway.routes import Route, Upstream, route_for
from api.observability import Metrics, current_request_id, request_context_middleware
from api.problems import PROBLEM_JSON, problem_body
from api.settings import GatewaySettings, Settings

log = logging.getLogger("homechef.gateway")

# Plain ASGI, loosely typed: the gateway passes on messages it does not interpret.
Scope = dict[str, Any]
Message = dict[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

_HOP_BY_HOP = frozenset({
    b"connection", b"keep-alive", b"proxy-authenticate", b"proxy-authorization", b"te",
    b"trailer", b"transfer-encoding", b"upgrade", b"host", b"content-length",
    b"x-request-id", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host"})
"""Request headers not passed on as they are (hop-by-hop, or set by the gateway)."""
_HOP_BY_HOP_RESPONSE = frozenset({
    "connection", "keep-alive", "transfer-encoding", "upgrade", "x-request-id", "date",
    "server"})
"""Response headers not passed back (hop-by-hop, or added again by the gateway's server)."""
_WS_HANDSHAKE = frozenset({
    b"sec-websocket-key", b"sec-websocket-version", b"sec-websocket-extensions",
    b"sec-websocket-protocol"})
"""Handshake headers the client library makes for its own connection to the service."""


def upstream_urls(settings: Settings) -> dict[Upstream, list[str]]:
    """Base URLs of the services' processes as the gateway reaches them (several for a
    service run as several processes: ``GATEWAY_CORE_URL`` comma-separated)."""
    gw, server = settings.gateway, settings.server
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::") else server.host
    return {"core": _urls(gw.core_url) or [f"http://{host}:{server.core_port}"],
            "commerce": _urls(gw.commerce_url) or [f"http://{host}:{server.commerce_port}"]}


def _urls(value: str) -> list[str]:
    return [u.strip() for u in value.split(",") if u.strip()]


class _Pool:
    """One service's processes: requests go round-robin, and one that cannot be reached
    (refused or timed out connecting: the request never got there) is sent to the next, so
    a dead process costs a connect attempt, not an error."""

    def __init__(self, clients: list[httpx.AsyncClient]) -> None:
        self.clients = clients
        self._next = 0

    def order(self) -> list[httpx.AsyncClient]:
        """Every client, starting with this request's turn."""
        start = self._next
        self._next = (start + 1) % len(self.clients)
        return self.clients[start:] + self.clients[:start]


class _Label:
    """What the request-context middleware labels the gateway's metrics with."""

    def __init__(self, label: str) -> None:
        self.paths = {label}


class Gateway:
    """The gateway's state: service clients, limiters and the token check (one per process)."""

    def __init__(self, settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                 upstreams: Mapping[Upstream, str | list[str]] | None = None) -> None:
        if not settings.server.jwt_secret:
            raise ValueError("JWT_SECRET is required (homechef up generates one)")
        self.limits: GatewaySettings = settings.gateway
        self.upstreams = ({name: _urls(u) if isinstance(u, str) else list(u)
                           for name, u in upstreams.items()} if upstreams
                          else upstream_urls(settings))
        self.codec = TokenCodec(settings.server.jwt_secret)
        self.clock = clock
        lim = self.limits
        self.per_ip = TokenBuckets(BucketLimits(lim.ip_rate_per_s, lim.ip_burst,
                                                lim.limiter_keys_max))
        self.per_user = TokenBuckets(BucketLimits(lim.user_rate_per_s, lim.user_burst,
                                                  lim.limiter_keys_max))
        self.pools: dict[Upstream, _Pool] = {}

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        timeout = httpx.Timeout(self.limits.read_timeout_s,
                                connect=self.limits.connect_timeout_s)
        self.pools = {name: _Pool([httpx.AsyncClient(base_url=url, timeout=timeout,
                                                     trust_env=False, follow_redirects=False,
                                                     limits=httpx.Limits(max_connections=200))
                                   for url in urls])
                      for name, urls in self.upstreams.items()}
        try:
            yield
        finally:
            for pool in self.pools.values():
                for client in pool.clients:
                    await client.aclose()

    # -- limits ------------------------------------------------------------------------------
    def user_of(self, scope: Scope) -> str | None:
        """The verified user id of the request's bearer token, if it has a valid one (an
        invalid token is the service's to refuse; it only does not count per user)."""
        for name, value in scope["headers"]:
            if name == b"authorization":
                scheme, _, token = value.decode("latin-1").partition(" ")
                if scheme.lower() == "bearer" and token.strip():
                    try:
                        return self.codec.verify(token.strip()).sub
                    except NotAuthorizedException:
                        return None
        return None

    def wait_s(self, scope: Scope, route: Route) -> float:
        """Seconds the client must wait before this request is admitted (0: admitted now)."""
        now = self.clock()
        client = scope.get("client")
        wait = self.per_ip.take(client[0] if client else "?", now)
        if wait == 0.0 and route.kind == "api":
            user = self.user_of(scope)
            if user is not None:
                wait = self.per_user.take(user, now)
        return wait

    # -- ASGI --------------------------------------------------------------------------------
    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path: str = scope["path"]
        if scope["type"] == "http" and path == "/health":
            await self._health(send)
            return
        route = route_for(path)
        if route is not None:
            scope["route_handler"] = _Label(route.pattern)
        if scope["type"] == "websocket":
            await self._websocket(scope, receive, send, route)
        else:
            await self._http(scope, receive, send, route)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        stack = contextlib.AsyncExitStack()
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await stack.enter_async_context(self.running())
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await stack.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _health(self, send: Send) -> None:
        """The gateway's own health: each service process's /health status code, or
        ``down``; degraded when any process is not answering 200."""

        async def one(client: httpx.AsyncClient) -> int | str:
            try:
                r = await client.get("/health", timeout=self.limits.connect_timeout_s)
                return r.status_code
            except httpx.HTTPError:
                return "down"

        answers: dict[str, int | str] = {}
        for name, pool in self.pools.items():
            codes = await asyncio.gather(*(one(c) for c in pool.clients))
            if len(codes) == 1:
                answers[name] = codes[0]
            else:
                answers.update({f"{name}@{c.base_url}": code
                                for c, code in zip(pool.clients, codes, strict=True)})
        ok = all(v == 200 for v in answers.values())
        body = {"status": "ok" if ok else "degraded", "upstreams": answers}
        await _send_json(send, 200 if ok else 503, body, "application/json")

    async def _http(self, scope: Scope, receive: Receive, send: Send,
                    route: Route | None) -> None:
        path: str = scope["path"]
        if route is None:
            await _problem(send, 404, f"no service serves {path}", code="not_found")
            return
        if route.kind in ("api", "ws") and (wait := self.wait_s(scope, route)) > 0:
            retry = max(1, round(wait + 0.5))
            await _problem(send, 429, "too many requests; slow down", code="rate_limited",
                           headers=[(b"retry-after", str(retry).encode())], retry_after_s=retry)
            return
        limit = self.limits.upload_max_bytes if route.upload else self.limits.body_max_bytes
        try:
            body = await _read_body(scope, receive, limit)
        except _ClientGone:
            return
        if body is None:
            await _problem(send, 413, f"request body larger than {limit} bytes",
                           code="body_too_large", limit_bytes=limit)
            return
        url = httpx.URL(path=scope.get("raw_path", path.encode()).decode("latin-1"),
                        query=scope.get("query_string", b""))
        headers = self._forward_headers(scope)
        try:
            response = await self._send_to_one(route.upstream, scope["method"], url, headers,
                                               body)
        except (httpx.NetworkError, httpx.PoolTimeout, httpx.RemoteProtocolError) as exc:
            # Refused by every process, or the process died with the request (a read or
            # write broke off): either way the service is unavailable, not the request bad.
            await self._unavailable(send, route.upstream, exc)
            return
        except httpx.TimeoutException:
            await _problem(send, 504, f"{route.upstream} did not answer within "
                           f"{self.limits.read_timeout_s} s", code="upstream_timeout",
                           upstream=route.upstream)
            return
        try:
            headers = [(k.encode("latin-1"), v.encode("latin-1"))
                       for k, v in response.headers.multi_items()
                       if k.lower() not in _HOP_BY_HOP_RESPONSE]
            await send({"type": "http.response.start", "status": response.status_code,
                        "headers": headers})
            async for chunk in response.aiter_raw():
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
        except httpx.HTTPError as exc:  # the service died mid-answer: cut the response
            log.warning("%s broke off its answer to %s: %s", route.upstream, path, exc)
        finally:
            await response.aclose()

    async def _send_to_one(self, upstream: Upstream, method: str, url: httpx.URL,
                           headers: list[tuple[bytes, bytes]], body: bytes) -> httpx.Response:
        """Send to the service's next process; one that cannot be connected to passes the
        request to the one after (nothing reached it). Raises the last connect error when
        none can be reached."""
        clients = self.pools[upstream].order()
        for i, client in enumerate(clients):
            request = client.build_request(method, url, headers=headers, content=body)
            try:
                return await client.send(request, stream=True)
            except (httpx.ConnectError, httpx.ConnectTimeout):
                if i == len(clients) - 1:
                    raise
        raise AssertionError("a pool has at least one process")

    async def _unavailable(self, send: Send, upstream: Upstream, exc: Exception) -> None:
        retry = self.limits.retry_after_s
        log.warning("%s unreachable: %s: %s", upstream, type(exc).__name__, exc)
        await _problem(send, 503, f"the {upstream} service is unavailable; retry after "
                       f"{retry} s", code="upstream_unavailable",
                       headers=[(b"retry-after", str(retry).encode())], upstream=upstream,
                       retry_after_s=retry)

    def _forward_headers(self, scope: Scope, *, skip: frozenset[bytes] = frozenset()
                         ) -> list[tuple[bytes, bytes]]:
        headers = [(k, v) for k, v in scope["headers"]
                   if k not in _HOP_BY_HOP and k not in skip]
        client = scope.get("client")
        forwarded = [v for k, v in scope["headers"] if k == b"x-forwarded-for"]
        chain = b", ".join([*forwarded, *([client[0].encode()] if client else [])])
        host = next((v for k, v in scope["headers"] if k == b"host"), b"")
        scheme = scope.get("scheme", "http").replace("ws", "http")
        rid = current_request_id() or ""
        headers += [(b"x-request-id", rid.encode()), (b"x-forwarded-proto", scheme.encode()),
                    (b"x-forwarded-host", host)]
        if chain:
            headers.append((b"x-forwarded-for", chain))
        return headers

    async def _websocket(self, scope: Scope, receive: Receive, send: Send,
                         route: Route | None) -> None:
        if (await receive())["type"] != "websocket.connect":
            return
        if route is None or route.kind != "ws":
            await _refuse_ws(scope, send, 404, "no socket at this path", "not_found")
            return
        if (wait := self.wait_s(scope, route)) > 0:
            await _refuse_ws(scope, send, 429, "too many socket opens; slow down",
                             "rate_limited", retry_after_s=max(1, round(wait + 0.5)))
            return
        query = scope.get("query_string", b"").decode("latin-1")
        offered = [Subprotocol(p) for p in scope.get("subprotocols") or ()]
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in self._forward_headers(scope, skip=_WS_HANDSHAKE)]
        clients = self.pools[route.upstream].order()
        for i, client in enumerate(clients):
            base = str(client.base_url).rstrip("/").replace("http", "ws", 1)
            url = base + scope["path"] + (f"?{query}" if query else "")
            try:
                upstream = await websockets.connect(
                    url, additional_headers=headers, subprotocols=offered or None,
                    open_timeout=self.limits.connect_timeout_s,
                    max_size=self.limits.body_max_bytes, compression=None, ping_interval=None,
                    proxy=None)
                break
            except InvalidStatus as exc:  # the service refused the handshake: pass it on
                status = exc.response.status_code
                await _refuse_ws(scope, send, status, f"{route.upstream} refused the socket",
                                 "socket_refused", raw=bytes(exc.response.body))
                return
            except (OSError, TimeoutError, websockets.InvalidHandshake) as exc:
                if i < len(clients) - 1:  # the next process may take it
                    continue
                retry = self.limits.retry_after_s
                log.warning("%s unreachable for a socket: %s: %s", route.upstream,
                            type(exc).__name__, exc)
                await _refuse_ws(scope, send, 503,
                                 f"the {route.upstream} service is unavailable",
                                 "upstream_unavailable", retry_after_s=retry,
                                 upstream=route.upstream)
                return
        async with upstream:
            await send({"type": "websocket.accept", "subprotocol": upstream.subprotocol})
            await _bridge(receive, send, upstream)


async def _bridge(receive: Receive, send: Send, upstream: ClientConnection) -> None:
    """Pump messages both ways until either side closes; pass the close code on."""

    async def client_to_upstream() -> None:
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                await upstream.close(message.get("code", 1000))
                return
            if message.get("text") is not None:
                await upstream.send(message["text"])
            elif message.get("bytes") is not None:
                await upstream.send(message["bytes"])

    async def upstream_to_client() -> None:
        try:
            async for data in upstream:
                if isinstance(data, str):
                    await send({"type": "websocket.send", "text": data})
                else:
                    await send({"type": "websocket.send", "bytes": data})
        except ConnectionClosed:
            pass
        code = upstream.close_code or 1000
        reason = upstream.close_reason or ""
        with contextlib.suppress(Exception):  # the client may be gone already
            await send({"type": "websocket.close", "code": 1000 if code in (1005, 1006)
                        else code, "reason": reason})

    tasks = [asyncio.create_task(client_to_upstream()), asyncio.create_task(upstream_to_client())]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, ConnectionClosed, OSError):
                await t


class _ClientGone(Exception):
    """The client hung up before its body arrived: nothing is sent on."""


async def _read_body(scope: Scope, receive: Receive, max_bytes: int) -> bytes | None:
    """The whole request body, or None as soon as it is known to exceed ``max_bytes``."""
    for name, value in scope["headers"]:
        if name == b"content-length" and value.isdigit() and int(value) > max_bytes:
            return None
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _ClientGone
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > max_bytes:
            return None
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


async def _send_json(send: Send, status: int, body: dict[str, Any], media_type: str,
                     headers: list[tuple[bytes, bytes]] | None = None) -> None:
    payload = msgspec.json.encode(body)
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", media_type.encode()), (b"content-length", str(len(payload)).encode()),
        *(headers or [])]})
    await send({"type": "http.response.body", "body": payload})


async def _problem(send: Send, status: int, detail: str, *, code: str,
                   headers: list[tuple[bytes, bytes]] | None = None, **extra: Any) -> None:
    await _send_json(send, status, problem_body(status, detail, code=code, **extra),
                     PROBLEM_JSON, headers)


async def _refuse_ws(scope: Scope, send: Send, status: int, detail: str, code: str, *,
                     raw: bytes | None = None, **extra: Any) -> None:
    """Refuse a socket's handshake with an HTTP answer where the server supports it (the
    ASGI ``websocket.http.response`` extension), else by closing it (a plain 403)."""
    if "websocket.http.response" not in (scope.get("extensions") or {}):
        await send({"type": "websocket.close", "code": 1013 if status >= 500 else 1008})
        return
    payload = raw if raw else msgspec.json.encode(problem_body(status, detail, code=code,
                                                               **extra))
    headers = [(b"content-type", PROBLEM_JSON.encode() if not raw else b"application/json")]
    if "retry_after_s" in extra:
        headers.append((b"retry-after", str(extra["retry_after_s"]).encode()))
    message: Message = {"type": "websocket.http.response.start", "status": status,
                        "headers": headers}
    await send(message)
    await send({"type": "websocket.http.response.body", "body": payload})


def create_gateway_app(settings: Settings, *, clock: Callable[[], float] = time.monotonic,
                       upstreams: Mapping[Upstream, str | list[str]] | None = None) -> Any:
    """The gateway as an ASGI app (request id in and out, metrics, JSON logs around it)."""
    gateway = Gateway(settings, clock=clock, upstreams=upstreams)
    app = request_context_middleware(Metrics("gateway"))(cast("ASGIApp", gateway))
    app.gateway = gateway  # tests read the limiters
    return app


__all__ = ["Gateway", "create_gateway_app", "upstream_urls"]
