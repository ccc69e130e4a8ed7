"""The WebSocket fast lane (api/core/ws/fastws.py) on a real uvicorn server and `websockets`
client: frames as the client library reads them, text in through the callback, everything
else through ASGI, uvicorn's UTF-8 rule, flow control, and no lane without the protocol."""

from __future__ import annotations

import asyncio
import json
import random
import socket
from typing import Any

import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from api.core.ws.fastws import FastLane, lane_of, text_frame
from tests.integration.core.conftest import eventually
from tests.servers import ASGI_ONLY, serve_app


class EchoApp:
    """Accepts, reports whether it has a lane, then echoes text back through the lane (each
    message as many times as its ``n``) and binary messages back through ASGI."""

    def __init__(self) -> None:
        self.lanes: list[FastLane | None] = []
        self.paused_seen = 0
        self.drained = asyncio.Event()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        lane = lane_of(scope)
        self.lanes.append(lane)
        await send({"type": "websocket.send", "text": json.dumps({"lane": lane is not None})})
        tasks: set[asyncio.Task[None]] = set()

        def on_text(raw: bytes) -> None:
            assert lane is not None
            msg = json.loads(raw)
            if msg.get("boom"):
                raise RuntimeError("boom")
            if msg.get("flood"):
                task = asyncio.create_task(self.flood(lane, int(msg["flood"])))
                tasks.add(task)
                return
            for _ in range(int(msg.get("n", 1))):
                lane.send_text(raw)

        if lane is not None:
            lane.receive_text(on_text)
        while True:
            event = await receive()
            if event["type"] == "websocket.disconnect":
                return
            if event.get("bytes") is not None:
                await send({"type": "websocket.send", "bytes": event["bytes"]})
            else:  # text without a lane
                await send({"type": "websocket.send", "text": event["text"]})

    async def flood(self, lane: FastLane, n: int) -> None:
        """Write ``n`` 64 KiB messages honouring back-pressure; then say "done"."""
        chunk = b'"' + b"y" * 65_534 + b'"'
        for _ in range(n):
            if not lane.writable:
                self.paused_seen += 1
                await lane.drained()
            lane.send_text(chunk)
        lane.send_text(b'"done"')
        self.drained.set()


@pytest.fixture
async def echo() -> Any:
    app = EchoApp()
    async with serve_app(app) as url:
        yield app, url.replace("http://", "ws://")


def test_text_frame_lengths() -> None:
    assert text_frame(b"a") == b"\x81\x01a"
    assert text_frame(b"x" * 126)[:4] == b"\x81\x7e\x00\x7e"
    assert text_frame(b"x" * 70_000)[:10] == b"\x81\x7f" + (70_000).to_bytes(8, "big")


async def test_lane_round_trip_of_every_frame_length(echo: Any) -> None:
    app, url = echo
    async with websockets.connect(url, max_size=2**22) as ws:
        assert json.loads(await ws.recv()) == {"lane": True}
        for size in (0, 100, 125, 126, 1_000, 65_535, 65_536, 300_000):
            msg = json.dumps({"n": 2, "pad": "é" * (size // 2)})
            await ws.send(msg)
            assert await ws.recv() == msg  # the client checked the frame: text, valid UTF-8
            assert await ws.recv() == msg
        await ws.send(b"\x00\x01binary")  # not the lane's: the ASGI path echoes it
        assert await ws.recv() == b"\x00\x01binary"
    assert app.lanes
    assert app.lanes[0] is not None


async def test_no_lane_without_the_protocol() -> None:
    app = EchoApp()
    async with serve_app(app, ws=ASGI_ONLY) as url, \
            websockets.connect(url.replace("http://", "ws://")) as ws:
        assert json.loads(await ws.recv()) == {"lane": False}
        await ws.send('{"n": 1}')
        assert await ws.recv() == '{"n": 1}'
    assert app.lanes == [None]


async def test_invalid_utf8_closes_1007_as_uvicorn_does(echo: Any) -> None:
    _, url = echo
    async with websockets.connect(url) as ws:
        await ws.recv()
        # A text frame with invalid UTF-8, written raw (the client library refuses to).
        ws.protocol.send_frame(  # type: ignore[attr-defined]
            websockets.frames.Frame(websockets.frames.Opcode.TEXT, b'"\xff\xfe"'))
        ws.send_data()  # type: ignore[attr-defined]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1007


async def test_flow_control_pauses_and_resumes(echo: Any) -> None:
    """A client that does not read makes the transport pause: the lane reports it, the writer
    waits for `drained`, and once the client reads everything arrives in order."""
    app, url = echo
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.setblocking(False)
    port = int(url.rsplit(":", 1)[1])
    await asyncio.get_running_loop().sock_connect(sock, ("127.0.0.1", port))
    async with websockets.connect(url, sock=sock, max_queue=1, max_size=2**20) as ws:
        await ws.recv()
        n = 200  # 12.5 MiB: more than the kernel buffers take
        await ws.send(json.dumps({"flood": n}))

        async def paused() -> bool:
            return app.paused_seen >= 1

        await eventually(paused, timeout_s=10)  # the writer found the transport paused
        assert not app.drained.is_set()  # blocked: the client reads nothing yet
        got = 0
        while (msg := await asyncio.wait_for(ws.recv(), 10)) != '"done"':
            assert len(msg) == 65_536
            got += 1
    assert got == n
    assert app.paused_seen >= 1


async def test_a_failing_callback_closes_1011_and_the_app_sees_the_disconnect(
    echo: Any,
) -> None:
    """As an ASGI app's failure: the connection is closed (1011) and the app's ASGI
    ``receive`` gets the disconnect (the handler ends; nothing hangs)."""
    _, url = echo
    async with websockets.connect(url) as ws:
        await ws.recv()
        await ws.send('{"boom": 1}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1011
    async with websockets.connect(url) as ws:  # the server is fine
        await ws.recv()
        await ws.send('{"n": 1}')
        assert await ws.recv() == '{"n": 1}'



def _client_frame(first: int, payload: bytes, rng: random.Random) -> bytes:
    """A masked client frame (RFC 6455 §5.2) with a random key, written by hand."""
    mask = rng.randbytes(4)
    n = len(payload)
    if n < 126:
        head = bytes((first, 0x80 | n))
    elif n < 65536:
        head = bytes((first, 0x80 | 126)) + n.to_bytes(2, "big")
    else:
        head = bytes((first, 0x80 | 127)) + n.to_bytes(8, "big")
    return head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))


async def test_lane_reads_frames_however_tcp_cuts_them(echo: Any) -> None:
    """The lane's own frame reader: messages written as one stream cut at odd places (one
    byte, a few, thousands: headers and masks split too) arrive whole and in order; pings are
    still answered; a fragmented message is reassembled (websockets reads from there on)."""
    _, url = echo
    rng = random.Random(7)
    async with websockets.connect(url, max_size=2**20) as ws:
        await ws.recv()
        msgs = [json.dumps({"i": i, "pad": "é" * rng.choice((0, 1, 60, 200, 40_000))})
                for i in range(60)]
        blob = b"".join(_client_frame(0x81, m.encode(), rng) for m in msgs)
        pos = 0
        while pos < len(blob):
            step = rng.choice((1, 2, 3, 7, 100, 5000))
            ws.transport.write(blob[pos:pos + step])
            pos += step
            await asyncio.sleep(0)
        for m in msgs:
            assert await asyncio.wait_for(ws.recv(), 5) == m
        await asyncio.wait_for(await ws.ping(), 5)
        ws.transport.write(_client_frame(0x01, b'{"n": 1, ', rng)
                           + _client_frame(0x80, b'"frag": true}', rng))
        assert await asyncio.wait_for(ws.recv(), 5) == '{"n": 1, "frag": true}'
        await ws.send('{"n": 2}')
        assert await asyncio.wait_for(ws.recv(), 5) == '{"n": 2}'
        assert await asyncio.wait_for(ws.recv(), 5) == '{"n": 2}'


async def test_an_unmasked_client_frame_closes_1002(echo: Any) -> None:
    """What the lane's reader does not take (here: a frame without a mask) goes to
    websockets, which fails the connection as without the lane."""
    _, url = echo
    async with websockets.connect(url) as ws:
        await ws.recv()
        await ws.send('{"n": 1}')
        assert await ws.recv() == '{"n": 1}'
        ws.transport.write(b"\x81\x08" + b'{"n": 1}')
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(ws.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1002
