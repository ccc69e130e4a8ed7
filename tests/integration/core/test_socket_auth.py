"""Socket authentication without the token in the URL, and no credential in any log line.

- A WebSocket client may offer the subprotocols ``["bearer", <token>]``; the server accepts
  with ``bearer``, on the fast lane (`homechef serve`) and on plain ASGI alike. ``?token=``
  keeps working for older clients.
- A real ``homechef serve core`` process at LOG_LEVEL=DEBUG with its access log on, driven
  with tokens in headers, query strings and subprotocols, writes none of them to its logs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
import websockets
from websockets.typing import Subprotocol

from api.auth import WS_BEARER_SUBPROTOCOL, TokenCodec
from api.runtime import free_port
from api.settings import Settings, to_environ
from tests.integration.core.conftest import CoreServer, serve_core
from tests.servers import ASGI_ONLY, FAST_LANE

JWT_RE = re.compile(r"eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*")
PING = json.dumps({"type": "PING"})


def bearer(token: str) -> list[Subprotocol]:
    """The subprotocols a client offers to authenticate a socket."""
    return [Subprotocol(WS_BEARER_SUBPROTOCOL), Subprotocol(token)]


async def pong(ws: websockets.ClientConnection) -> None:
    """The socket is open and served: a PING is answered with a PONG."""
    await ws.send(PING)
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 5))
        if message["type"] == "PONG":
            return


@pytest.fixture(params=[FAST_LANE, ASGI_ONLY], ids=["fast-lane", "asgi"])
async def server(request: pytest.FixtureRequest, core_server: CoreServer,
                 settings: Settings) -> AsyncIterator[CoreServer]:
    """Core served with the fast-lane protocol (as `homechef serve`) and with plain ASGI."""
    if request.param == FAST_LANE:
        yield core_server
        return
    async with serve_core(settings, ws=ASGI_ONLY) as srv:
        yield srv


@pytest.mark.parametrize(("path", "role"), [("/ws/courier", "delivery"),
                                            ("/ws/console", "fleet_manager")])
async def test_socket_authenticates_with_the_bearer_subprotocol(
    server: CoreServer, path: str, role: str
) -> None:
    """Offering ["bearer", token] opens the socket with no token in the URL, and the
    server picks the "bearer" subprotocol (a client that offers some requires one)."""
    token = server.token(f"u-{uuid.uuid4().hex[:6]}", role)
    async with websockets.connect(f"{server.ws_url}{path}", subprotocols=bearer(token)) as ws:
        assert ws.subprotocol == WS_BEARER_SUBPROTOCOL
        await pong(ws)


async def test_query_token_still_opens_a_socket_without_a_subprotocol(
    core_server: CoreServer,
) -> None:
    """The older ?token= form keeps working, and then no subprotocol is picked."""
    url = f"{core_server.ws_url}/ws/console?token={core_server.token('fm-q', 'fleet_manager')}"
    async with websockets.connect(url) as ws:
        assert ws.subprotocol is None
        await pong(ws)


@pytest.mark.parametrize("case", ["forged", "wrong-role", "bearer-alone"])
async def test_bearer_subprotocol_refuses_what_the_header_refuses(
    core_server: CoreServer, case: str
) -> None:
    """A forged token, a token of a role the socket does not admit, or "bearer" with no
    token never gets an open socket."""
    offered = {
        "forged": bearer(TokenCodec("another-secret-" + "y" * 30).issue("c1", "delivery")),
        "wrong-role": bearer(core_server.token("u1", "customer")),
        "bearer-alone": [Subprotocol(WS_BEARER_SUBPROTOCOL)],
    }[case]
    with pytest.raises(websockets.exceptions.WebSocketException):
        async with websockets.connect(f"{core_server.ws_url}/ws/courier",
                                      subprotocols=offered) as ws:
            await ws.recv()


@contextlib.asynccontextmanager
async def core_process(settings: Settings, log_path: Path) -> AsyncIterator[str]:
    """`homechef serve core` at LOG_LEVEL=DEBUG with its access log on, stderr and stdout in
    ``log_path``; yields its URL once healthy and stops it (SIGTERM) at the end."""
    port = free_port()
    env = {**os.environ, **to_environ(settings), "CORE_PORT": str(port),
           "COMMERCE_PORT": str(free_port()), "LOG_LEVEL": "DEBUG", "ACCESS_LOG": "true"}
    url = f"http://127.0.0.1:{port}"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "api.cli", "serve", "core", env=env,
            cwd=Path(__file__).parents[3], stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 60
        async with httpx.AsyncClient(timeout=2) as client:
            while True:
                assert proc.returncode is None, f"core exited with {proc.returncode}"
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{url}/health")).status_code == 200:
                        break
                assert time.monotonic() < deadline, "core did not become healthy"
                await asyncio.sleep(0.1)
        yield url
    finally:
        if proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), 15)
            except TimeoutError:
                proc.kill()
                await proc.wait()


async def test_a_served_core_logs_no_token(settings: Settings, tmp_path: Path) -> None:
    """HTTP with Authorization and with ?token=, sockets with ?token= and with the bearer
    subprotocol, accepted and refused, through a real `homechef serve core` (DEBUG, access
    log on): its log shows the requests with [REDACTED] and holds no JWT at all."""
    assert settings.server.jwt_secret
    codec = TokenCodec(settings.server.jwt_secret)
    forged = TokenCodec("another-secret-" + "y" * 30).issue("c-forged", "delivery")
    staff = codec.issue("fm-logs", "fleet_manager")
    courier = codec.issue("c-logs", "delivery")
    log_path = tmp_path / "core.log"
    async with core_process(settings, log_path) as url:
        ws_url = url.replace("http://", "ws://")
        async with httpx.AsyncClient(base_url=url, timeout=10) as http:
            for headers, query, status in (({"Authorization": f"Bearer {staff}"}, "", 200),
                                           ({}, f"?token={staff}", 200),
                                           ({"Authorization": f"Bearer {forged}"}, "", 401)):
                r = await http.get(f"/api/v1/fleet/stats{query}", headers=headers)
                assert r.status_code == status
        async with websockets.connect(f"{ws_url}/ws/courier?token={courier}") as ws:
            await pong(ws)
        async with websockets.connect(f"{ws_url}/ws/console", subprotocols=bearer(staff)) as ws:
            assert ws.subprotocol == WS_BEARER_SUBPROTOCOL
            await pong(ws)
        for refused in (f"{ws_url}/ws/courier?token={forged}",
                        f"{ws_url}/ws/console?token={courier}"):
            with pytest.raises(websockets.exceptions.WebSocketException):
                async with websockets.connect(refused) as ws:
                    await ws.recv()
        with pytest.raises(websockets.exceptions.WebSocketException):
            async with websockets.connect(f"{ws_url}/ws/courier",
                                          subprotocols=bearer(forged)) as ws:
                await ws.recv()
    logged = log_path.read_text(errors="replace")
    messages = "\n".join(json.loads(line).get("message", "") for line in logged.splitlines()
                         if line.startswith("{"))
    # The traffic was logged (the scan below is not vacuous) ...
    assert '"WebSocket /ws/courier?token=[REDACTED]" [accepted]' in messages, messages[-3000:]
    assert '"GET /api/v1/fleet/stats?token=[REDACTED] HTTP/1.1" 200' in messages
    assert "sec-websocket-protocol: bearer, [REDACTED]" in messages  # DEBUG: request headers
    # ... and no credential was.
    leaks = [line for line in logged.splitlines() if JWT_RE.search(line)]
    assert leaks == []
    for token in (staff, courier, forged):
        assert token.rsplit(".", 1)[1] not in logged
