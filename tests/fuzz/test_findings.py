"""Regressions for what the fuzzers found: each input once, with the answer it must get."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import httpx
import msgspec
import pytest
import websockets

from geo.fixes import RejectReason, decode_fixes
from streams.wire import decode_client, decode_courier
from tests.integration.core.conftest import CoreServer

DEEP = "[" * 5000 + "]" * 5000
"""Nested deeper than msgspec decodes (it raises RecursionError, not DecodeError)."""

PROBLEM_JSON = "application/problem+json"


def test_too_deep_fixes_are_malformed() -> None:
    """A fixes payload nested too deeply is MALFORMED, like any payload that is not fixes."""
    assert decode_fixes(DEEP) is RejectReason.MALFORMED


@pytest.mark.parametrize(("decode", "kind"), [(decode_client, "PING"),
                                              (decode_courier, "OFFER_EXPIRED")])
def test_too_deep_socket_message_is_a_decode_error(decode: object, kind: str) -> None:
    """Socket message decoders raise only DecodeError, also for JSON nested too deeply."""
    with pytest.raises(msgspec.DecodeError, match="nested too deeply"):
        decode(f'{{"type":"{kind}","x":' + DEEP + "}")  # type: ignore[operator]


async def test_huge_notification_id_is_not_found(
        commerce_url: str, role_headers: dict[str, dict[str, str]]) -> None:
    """A notification id beyond bigint names no notification: 404 problem+json, not 500."""
    async with httpx.AsyncClient(base_url=commerce_url, timeout=10) as client:
        r = await client.put("/api/v1/users/me/notifications/1810709910770449645568/read",
                             headers=role_headers["customer"])
    assert r.status_code == 404, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)


async def test_too_deep_fix_batch_is_a_bad_request(
        core_url: CoreServer, role_headers: dict[str, dict[str, str]]) -> None:
    """POST /delivery/locations with JSON nested too deeply is 400 malformed, not 500."""
    async with httpx.AsyncClient(base_url=core_url.url, timeout=10) as client:
        for body in ('{"fixes":' + DEEP + "}", '{"x":' + DEEP + ',"fixes":[]}'):
            r = await client.post("/api/v1/delivery/locations", content=body,
                                  headers={**role_headers["delivery"],
                                           "content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert r.headers["content-type"].startswith(PROBLEM_JSON)


async def _until_pong(ws: websockets.ClientConnection) -> list[dict[str, object]]:
    """Send PING; the messages received before its PONG."""
    await ws.send('{"type":"PING"}')
    seen: list[dict[str, object]] = []
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), 10))
        if message.get("type") == "PONG":
            return seen
        seen.append(message)


@pytest.mark.parametrize(("path", "role"), [("/ws/courier", "delivery"),
                                            ("/ws/console", "fleet_manager")])
async def test_too_deep_frame_earns_an_error_reply(
        core_url: CoreServer, role_headers: dict[str, dict[str, str]],
        path: str, role: str) -> None:
    """A frame nested too deeply gets an ERROR reply and the socket stays open."""
    token = role_headers[role]["Authorization"].removeprefix("Bearer ")
    async with websockets.connect(f"{core_url.ws_url}{path}?token={token}") as ws:
        await ws.send('{"type":"PING","x":' + DEEP + "}")
        replies = await _until_pong(ws)
    assert [m["type"] for m in replies] == ["ERROR"]


@pytest.mark.parametrize(("path", "role"), [("/ws/courier", "delivery"),
                                            ("/ws/console", "fleet_manager")])
async def test_text_frame_not_utf8_closes_1007_without_a_traceback(
        core_url: CoreServer, role_headers: dict[str, dict[str, str]],
        caplog: pytest.LogCaptureFixture, path: str, role: str) -> None:
    """A text frame that is not UTF-8 closes the socket with 1007 (RFC 6455) in a closing
    handshake, even while the client keeps sending, and is logged as one line without a
    traceback (it is the client's mistake, not the server's)."""
    token = role_headers[role]["Authorization"].removeprefix("Bearer ")
    with caplog.at_level(logging.INFO):
        async with websockets.connect(f"{core_url.ws_url}{path}?token={token}") as ws:
            await ws.send(b"\xff\xfe", text=True)
            with contextlib.suppress(websockets.ConnectionClosed):
                for _ in range(3):  # a client still sending gets the close frame all the same
                    await ws.send('{"type":"PING","x":' + DEEP * 40 + "}")
            with pytest.raises(websockets.ConnectionClosed) as closed:
                await asyncio.wait_for(ws.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007
    assert not [r for r in caplog.records if r.exc_info or r.levelno >= logging.ERROR]


@pytest.mark.parametrize(("service", "path", "role"), [
    ("commerce", "/api/v1/auth/login", "anonymous"),
    ("commerce", "/api/v1/users/me/addresses", "customer"),
    ("core", "/api/v1/routing/optimize", "admin"),
    ("core", "/api/v1/fleet/orders/o-1/assign", "fleet_manager"),
])
async def test_too_deep_json_body_is_a_bad_request(
        core_url: CoreServer, commerce_url: str, role_headers: dict[str, dict[str, str]],
        service: str, path: str, role: str) -> None:
    """Any JSON body nested deeper than msgspec decodes is 400 problem+json, not 500."""
    base = core_url.url if service == "core" else commerce_url
    async with httpx.AsyncClient(base_url=base, timeout=10) as client:
        for body in (DEEP, '{"email":' + DEEP + "}"):
            r = await client.post(path, content=body, headers={
                **role_headers[role], "content-type": "application/json"})
            assert r.status_code == 400, r.text
            assert r.headers["content-type"].startswith(PROBLEM_JSON)
            assert r.json()["type"] == "urn:homechef:problem:malformed"


@pytest.mark.parametrize(("method", "path", "role", "params", "body"), [
    ("GET", "/api/v1/chefs", "anonymous", {"search": "a\x00b"}, None),
    ("GET", "/api/v1/admin/users", "admin", {"search": "a\x00b"}, None),
    ("POST", "/api/v1/users/me/addresses", "delivery", None, {
        "label": "a\x00b", "line1": "1 MG Road", "city": "Bengaluru", "state": "KA",
        "postal_code": "560001", "latitude": 12.97, "longitude": 77.59}),
])
async def test_nul_in_stored_text_is_a_bad_request(
        commerce_url: str, role_headers: dict[str, dict[str, str]], method: str, path: str,
        role: str, params: dict[str, str] | None, body: dict[str, object] | None) -> None:
    """Text with a NUL character, which PostgreSQL cannot store or compare, is 400
    problem+json (invalid_text) wherever it is sent, not 500."""
    async with httpx.AsyncClient(base_url=commerce_url, timeout=10) as client:
        r = await client.request(method, path, params=params, json=body,
                                 headers=role_headers[role])
    assert r.status_code == 400, r.text
    assert r.headers["content-type"].startswith(PROBLEM_JSON)
    assert r.json()["type"] == "urn:homechef:problem:invalid_text"
