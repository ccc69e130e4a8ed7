"""Malformed frames on the courier, console and chef sockets of a running core.

Hypothesis generates sequences of frames (JSON of the right and wrong shapes, wrong types, huge
integers, NaN and Infinity, deep nesting, random text, binary frames, text frames that are not
UTF-8) with a fixed seed. Rules: after each sequence the socket still answers a PING with a
PONG, or it was closed with a documented close code; the server logs no traceback and no error;
and a new connection is served afterwards.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from tests.fuzz.conftest import FUZZ_EXAMPLES
from tests.integration.core.conftest import CoreServer

DOCUMENTED_CLOSES = frozenset({
    1000,  # normal
    1007,  # a text frame that is not UTF-8 (RFC 6455)
    1009,  # a frame over the server's size limit (RFC 6455)
    1013,  # a store unavailable (streams.outbox.CloseCode.TRY_AGAIN_LATER)
    4400,  # malformed client message (CloseCode.BAD_REQUEST)
    4008,  # slow consumer (CloseCode.SLOW_CONSUMER)
})
"""Close codes a malformed frame may earn; 1011 and Litestar's 4500 (a handler that raised)
never."""

WS_EXAMPLES = FUZZ_EXAMPLES * 25
"""Frame sequences per socket (each one to four frames)."""

_scalars = (st.none() | st.booleans() | st.integers(min_value=-(2**80), max_value=2**80)
            | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=12))
_json = st.recursive(_scalars, lambda inner: st.lists(inner, max_size=4)
                     | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=16)
_fix = st.fixed_dictionaries(
    {"lat": _scalars, "lng": _scalars, "ts": _scalars},
    optional={"accuracy": _scalars, "speed": _scalars, "heading": _scalars})
_subscribe = st.fixed_dictionaries({}, optional={
    "cells": st.lists(st.text(max_size=16) | _scalars, max_size=4) | _json,
    "bbox": st.lists(_scalars, max_size=5) | _json})
_payload = _json | _fix | st.lists(_fix | _json, max_size=4) | _subscribe
_message = st.fixed_dictionaries(
    {"type": st.sampled_from(["LOCATION", "LOCATIONS", "PING", "PONG", "SUBSCRIBE"])
     | st.text(max_size=10) | _scalars},
    optional={"payload": _payload})


def _deep(depth: int) -> str:
    return '{"type":"SUBSCRIBE","payload":' + "[" * depth + "]" * depth + "}"


def _not_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False


_frames = st.one_of(
    (_message | _json).map(lambda v: ("text", json.dumps(v, allow_nan=True))),
    st.text(max_size=64).map(lambda t: ("text", t)),
    st.integers(min_value=1, max_value=200_000).map(lambda n: ("text", _deep(n))),
    st.binary(max_size=64).map(lambda b: ("binary", b)),
    st.binary(min_size=1, max_size=32).filter(_not_utf8).map(lambda b: ("raw_text", b)),
)


@dataclass(kw_only=True)
class SocketFuzz:
    """A client that reconnects whenever the server closes it, noting how it closed."""

    url: str
    conn: ClientConnection | None = None
    findings: list[str] = field(default_factory=list)
    closes: dict[int, int] = field(default_factory=dict)
    sequences: int = 0

    stack: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def socket(self) -> ClientConnection:
        if self.conn is None:
            self.stack = contextlib.ExitStack()
            self.conn = self.stack.enter_context(
                connect(self.url, open_timeout=10, close_timeout=2, max_size=None))
        return self.conn

    def send(self, kind: str, data: Any) -> None:
        conn = self.socket()
        if kind == "raw_text":
            conn.send(data, text=True)  # bytes in a text frame, sent unchecked
        else:
            conn.send(data)

    def answers_ping(self) -> None:
        conn = self.socket()
        conn.send('{"type":"PING"}')
        while True:
            reply = conn.recv(timeout=10)
            if json.loads(reply).get("type") == "PONG":
                return

    def closed(self, exc: ConnectionClosed, frames: list[tuple[str, Any]]) -> None:
        code = exc.rcvd.code if exc.rcvd is not None else 1006
        self.closes[code] = self.closes.get(code, 0) + 1
        if code not in DOCUMENTED_CLOSES:
            self.findings.append(f"closed {code} after {[(k, repr(d)[:120]) for k, d in frames]}")
        self.close()

    def close(self) -> None:
        with contextlib.suppress(ConnectionClosed):
            self.stack.close()
        self.conn = None


def fuzz_socket(url: str, max_examples: int) -> SocketFuzz:
    """Send generated frame sequences to the socket at ``url`` (blocking)."""
    fuzz = SocketFuzz(url=url)

    @settings(max_examples=max_examples, derandomize=True, database=None, deadline=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(frames=st.lists(_frames, min_size=1, max_size=4))
    def run(frames: list[tuple[str, Any]]) -> None:
        fuzz.sequences += 1
        try:
            for kind, data in frames:
                fuzz.send(kind, data)
            fuzz.answers_ping()
        except ConnectionClosed as exc:
            fuzz.closed(exc, frames)
        except TimeoutError:
            fuzz.findings.append(f"no PONG within 10 s after {frames!r:.300}")
            fuzz.close()

    try:
        run()
        fuzz.answers_ping()  # a connection opened after all of it is still served
    finally:
        fuzz.close()
    return fuzz


@pytest.fixture
def server_log(caplog: pytest.LogCaptureFixture) -> Iterator[pytest.LogCaptureFixture]:
    with caplog.at_level(logging.INFO):
        yield caplog


def _log_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [f"{r.name} {r.levelname}: {r.getMessage()[:300]}" for r in caplog.records
            if r.exc_info or r.levelno >= logging.ERROR or "socket reader failed" in r.msg]


@pytest.mark.timeout(max(180, 10 * FUZZ_EXAMPLES))
@pytest.mark.parametrize(("path", "role"), [("/ws/courier", "delivery"),
                                            ("/ws/console", "fleet_manager"),
                                            ("/ws/chef", "chef")])
async def test_socket_survives_malformed_frames(
    core_url: CoreServer, role_headers: dict[str, dict[str, str]],
    server_log: pytest.LogCaptureFixture, path: str, role: str,
) -> None:
    """Malformed frames get ERROR replies or a documented close code, never a handler crash
    (no traceback or error in the server's log), and the socket keeps serving."""
    token = role_headers[role]["Authorization"].removeprefix("Bearer ")
    fuzz = await asyncio.to_thread(fuzz_socket, f"{core_url.ws_url}{path}?token={token}",
                                   WS_EXAMPLES)
    assert fuzz.sequences >= WS_EXAMPLES, fuzz.sequences
    assert not fuzz.findings, "\n".join(fuzz.findings[:20])
    failures = _log_failures(server_log)
    assert not failures, "\n".join(failures[:20])
