"""Fleet console rendering in headless Chromium: frame time with many couriers on screen.

    python -m bench.console --couriers 2000 5000 --frames 240

Serves fleet_console/static on a loopback port (no core needed: the map and scene modules are
driven directly), opens it in Debian's /usr/bin/chromium (headless, 1280x800) and, for each
courier count, builds a scene around one city (seeded): the couriers, one order per ten
couriers (half of them assigned, with routes), ~150 supply/demand hexagons. Each frame moves
every courier (as a second of COURIER_POSITION messages would, parsed from JSON) and draws
the whole map once, as the console's requestAnimationFrame pass does. Prints per-frame draw
time (median, p95, max) and the cost of applying one second of position messages, beside
the baseline: the same page with an empty scene. A frame budget at 60 fps is 16.7 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import functools
import http.server
import json
import statistics
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import h3

from api.runtime import free_port

STATIC = Path(__file__).resolve().parents[1] / "fleet_console" / "static"
CHROMIUM = "/usr/bin/chromium"
CENTRE = (12.9716, 77.5946)

# Runs in the page: builds the scene with the console's own modules, then times frames.
_SCRIPT = """
async ({n, frames, centre}) => {
  const { MapView } = await import('./js/map.js');
  const live = await import('./js/live.js');
  document.body.innerHTML = '<canvas id="c" style="width:1280px;height:800px;display:block">'
    + '</canvas>';
  const canvas = document.getElementById('c');
  const map = new MapView(canvas, {});
  const scene = live.newScene();
  map.scene = scene;
  let seed = 7;
  const rnd = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
  const states = ['idle', 'offered', 'to_pickup', 'delivering', ''];
  const ids = [];
  for (let i = 0; i < n; i++) {
    const id = 'c' + i; ids.push(id);
    live.upsertCourier(scene, id, centre[0] + (rnd() - 0.5) * 0.25,
      centre[1] + (rnd() - 0.5) * 0.25, states[i % states.length]);
  }
  for (let i = 0; i < n / 10; i++) {
    const lat = centre[0] + (rnd() - 0.5) * 0.25, lng = centre[1] + (rnd() - 0.5) * 0.25;
    live.upsertOrder(scene, { id: 'o' + i, status: 'ready',
      courierId: i % 2 ? ids[(i * 7) % n] : '', pickup: { lat, lng },
      dropoff: { lat: lat + 0.01, lng: lng + 0.01 }, promisedMs: Date.now() + (i % 5 ? 1e6 : -1) });
  }
  if (n) {
    const r = await fetch('/cells.json');
    for (const c of await r.json()) {
      scene.outlines.set(c.cell, c.boundary);
      scene.heat.set(c.cell, { cell: c.cell, supply: c.supply, demand: c.demand });
    }
  }
  map.fit([centre[1] - 0.13, centre[0] - 0.13, centre[1] + 0.13, centre[0] + 0.13], 0);
  const msgs = ids.map((id) => JSON.stringify({ type: 'COURIER_POSITION', payload: {
    courierId: id, location: { lat: 0, lng: 0 }, cell: '', ts: 0, status: 'idle' } }));
  const draw = [], apply = [];
  for (let f = 0; f < frames; f++) {
    const t0 = performance.now();
    for (let i = 0; i < msgs.length; i++) {   // one second of positions, as the socket sees it
      const m = JSON.parse(msgs[i]);
      const c = scene.couriers.get(m.payload.courierId);
      live.upsertCourier(scene, m.payload.courierId, c.lat + 1e-5, c.lng + 1e-5,
        m.payload.status);
    }
    apply.push(performance.now() - t0);
    draw.push(map.draw(performance.now() + f * 16));
    await new Promise((res) => requestAnimationFrame(res));
  }
  return { draw, apply, couriers: scene.couriers.size, orders: scene.orders.size,
           hexes: scene.heat.size };
}
"""


def _cells(seed: int = 7) -> list[dict[str, Any]]:
    import random

    rng = random.Random(seed)
    centre = h3.latlng_to_cell(*CENTRE, 7)
    out = []
    for cell in sorted(h3.grid_disk(centre, 7))[:150]:
        out.append({"cell": cell, "boundary": [list(p) for p in h3.cell_to_boundary(cell)],
                    "supply": rng.randint(0, 30), "demand": rng.randint(0, 30)})
    return out


@contextlib.contextmanager
def _serve_static() -> Iterator[str]:
    cells = json.dumps(_cells()).encode()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == "/cells.json":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(cells)
                return
            super().do_GET()

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    handler = functools.partial(Handler, directory=str(STATIC))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.shutdown()
        server.server_close()


def _q(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(counts: list[int], frames: int) -> None:
    from playwright.async_api import async_playwright

    with _serve_static() as url:
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                               args=["--no-sandbox"])
            page = await browser.new_page(viewport={"width": 1280, "height": 800})
            # A blank page of the console's origin (index.html would start the app itself).
            await page.goto(f"{url}/console.css")
            print(f"{'couriers':>8} {'orders':>6} {'hexes':>5} | {'draw p50':>8} {'p95':>6} "
                  f"{'max':>6} ms | {'apply 1 s of positions p50':>26} ms")
            for n in [0, *counts]:
                r = await page.evaluate(_SCRIPT, {"n": n, "frames": frames,
                                                  "centre": list(CENTRE)})
                draw, apply = r["draw"][10:], r["apply"][10:]  # skip warm-up frames
                label = "baseline" if n == 0 else ""
                print(f"{r['couriers']:>8} {r['orders']:>6} {r['hexes']:>5} | "
                      f"{statistics.median(draw):>8.2f} {_q(draw, 0.95):>6.2f} "
                      f"{max(draw):>6.2f}    | {statistics.median(apply):>26.2f}    {label}")
            await browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--couriers", type=int, nargs="+", default=[2000, 5000])
    parser.add_argument("--frames", type=int, default=240)
    args = parser.parse_args()
    asyncio.run(run(args.couriers, args.frames))


if __name__ == "__main__":
    main()
