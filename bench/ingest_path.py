"""CPU per device message on core's socket path, without the network or the machine's load.

    python -m bench.ingest_path --devices 2000 --rounds 50 --repeat 5

The end-to-end figure (`bench.ingest`) moves with the shared machine: under load a backlog
batches work and lowers CPU per message, an idle core raises it. This one replays the same
masked one-fix frames (as a phone sends them) into core's own objects — uvicorn's protocol
with the fast lane (`FastLaneProtocol`), `CourierLink`, `Ingest` (validation, zones,
coalescing into ``loc.many`` every 5 ms) — and counts process CPU time per message. Only the
JetStream publish of a coalesced message is left out (a no-op): what is measured is the part
of core's work paid once per device message. Run it from two checkouts to compare code
(the same command, alternating); it prints, beside ours, the baseline of decoding the same
messages with `json.loads` alone.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import json
import os
import random
import statistics
import time
from typing import Any

from uvicorn.config import Config
from uvicorn.server import ServerState

from api.core.gps.device import CourierLink
from api.core.gps.ingest import Ingest, IngestMetrics, LastFixCache
from api.core.ws.fastws import FastLaneProtocol, lane_of
from api.observability import Metrics
from api.stores.live_index import LiveIndex
from geo.fixes import LastFix
from streams.catalog import Names

BASE_MS = 1_900_000_000_000


class _Transport:
    """What the protocol writes to: counts bytes, never pauses."""

    def __init__(self) -> None:
        self.written = 0
        self.closing = False

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, chunks: list[bytes]) -> None:
        for c in chunks:
            self.write(c)

    def is_closing(self) -> bool:
        return self.closing

    def close(self) -> None:
        self.closing = True

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 40000), "sockname": ("127.0.0.1", 8000)}.get(
            name, default)


def masked(payload: bytes, rng: random.Random) -> bytes:
    """A client text frame with a random masking key (as phones send)."""
    mask = rng.randbytes(4)
    n = len(payload)
    head = bytes((0x81, 0x80 | n)) if n < 126 else bytes((0x81, 0xFE)) + n.to_bytes(2, "big")
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "big")
    return head + mask + (int.from_bytes(payload, "big") ^ key).to_bytes(n, "big")


def messages(devices: int, rounds: int, seed: int) -> list[list[bytes]]:
    """Per round, one LOCATION message per device (1 s apart, a plausible walk)."""
    rng = random.Random(seed)
    pos = [(12.97 + rng.uniform(-0.1, 0.1), 77.59 + rng.uniform(-0.1, 0.1))
           for _ in range(devices)]
    out = []
    for r in range(rounds):
        row = []
        for i, (lat, lng) in enumerate(pos):
            lat += rng.uniform(-4e-5, 4e-5)
            lng += rng.uniform(-4e-5, 4e-5)
            pos[i] = (lat, lng)
            fix = {"lat": lat, "lng": lng, "ts": BASE_MS + (r + 1) * 1000}
            row.append(json.dumps({"type": "LOCATION", "payload": fix},
                                  separators=(",", ":")).encode())
        out.append(row)
    return out


async def measure(args: argparse.Namespace) -> tuple[float, float, int]:
    """(core µs per message, json.loads µs per message, fixes accepted) of one replay."""
    metrics = IngestMetrics(Metrics("bench"))
    index = LiveIndex(__import__("redis.asyncio", fromlist=["Redis"]).Redis(), "bench:geo")
    last_fixes = LastFixCache(index)
    now = [BASE_MS]
    ingest = Ingest(None, None, Names("bench"), metrics, last_fixes,  # type: ignore[arg-type]
                    file_stored=lambda runs: None, clock=lambda: now[0])

    async def publish(subject: str, event: Any, msg_id: str) -> None:
        return None

    ingest._publish = publish  # type: ignore[method-assign]
    couriers = [f"dev{i:05d}" for i in range(args.devices)]
    rng = random.Random(args.seed)
    rows = messages(args.devices, args.rounds, args.seed)
    frames = [[masked(m, rng) for m in row] for row in rows]
    for cid, first in zip(couriers, rows[0], strict=True):
        fix = json.loads(first)["payload"]
        last_fixes.put(cid, LastFix(lat=fix["lat"], lng=fix["lng"], ts_ms=BASE_MS))

    config = Config(app=None, ws=FastLaneProtocol, ws_ping_interval=None,  # type: ignore[arg-type]
                    ws_per_message_deflate=False, log_config=None, lifespan="off",
                    interface="asgi3")
    state = ServerState()
    protos: list[FastLaneProtocol] = []
    ready = asyncio.Semaphore(0)

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        lane = lane_of(scope)
        assert lane is not None
        link = CourierLink(scope["path"].rsplit("/", 1)[1], ingest, max_batch=1000)

        def on_text(raw: bytes) -> None:  # `_receive_fast`'s fast case
            replies = link.handle_now(raw)
            assert replies == [] or replies is None, replies

        lane.receive_text(on_text)
        ready.release()
        await receive()

    config.loaded_app = app
    config.loaded = True
    loop = asyncio.get_running_loop()
    for cid in couriers:
        proto = FastLaneProtocol(config, state, {}, loop)
        proto.connection_made(_Transport())  # type: ignore[arg-type]
        key = base64.b64encode(os.urandom(16)).decode()
        proto.data_received(
            (f"GET /ws/courier/{cid} HTTP/1.1\r\nHost: bench\r\nUpgrade: websocket\r\n"
             f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n").encode())
        protos.append(proto)
    for _ in couriers:
        await ready.acquire()
    gc.collect()
    t0 = time.process_time()
    n = 0
    for r, row in enumerate(frames):
        now[0] = BASE_MS + (r + 1) * 1000 + 50
        for proto, frame in zip(protos, row, strict=True):
            proto.data_received(frame)
            n += 1
            if n % 100 == 0:
                await asyncio.sleep(0)  # the loop's turn: flush timers, publish tasks
    ingest.flush()
    await asyncio.sleep(0.01)
    core_s = time.process_time() - t0
    t0 = time.process_time()
    for row in rows:
        for m in row:
            json.loads(m)
    base_s = time.process_time() - t0
    accepted = int(metrics.accepted._value.get())
    for proto in protos:
        proto.connection_lost(None)
    await asyncio.sleep(0)
    total = args.devices * args.rounds
    return core_s / total * 1e6, base_s / total * 1e6, accepted


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--devices", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=50)
    p.add_argument("--repeat", type=int, default=5)
    p.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    core, base = [], []
    for _ in range(args.repeat):
        c, b, accepted = asyncio.run(measure(args))
        assert accepted == args.devices * args.rounds, (accepted, "every fix accepted")
        core.append(c)
        base.append(b)
    print(f"socket path, {args.devices} devices x {args.rounds} one-fix messages, "
          f"{args.repeat} replays (process CPU time)")
    print(f"  ours: frame → FastLaneProtocol → CourierLink → Ingest: median "
          f"{statistics.median(core):.2f} µs per message (min {min(core):.2f}, "
          f"max {max(core):.2f})")
    print(f"  baseline: json.loads of the same messages: median "
          f"{statistics.median(base):.2f} µs per message")


if __name__ == "__main__":
    main()
