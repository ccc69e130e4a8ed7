"""An ASGI app served by uvicorn in this process, on a loopback port, for tests that need
real HTTP and WebSocket clients (the browser, the simulator, `websockets`)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator

import uvicorn

from api.runtime import free_port

FAST_LANE = "api.core.ws.fastws:FastLaneProtocol"
ASGI_ONLY = "websockets-sansio"


@contextlib.asynccontextmanager
async def serve_app(app: object, port: int | None = None,
                    ws: str = FAST_LANE) -> AsyncIterator[str]:
    """Serve `app` until the block ends; yields its base URL.

    WebSockets as under ``homechef serve``: its fast-lane protocol, no permessage-deflate;
    ``ws=ASGI_ONLY`` serves them through plain ASGI (uvicorn's websockets-sansio) instead.
    """
    port = port or free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,  # type: ignore[arg-type]
                            access_log=False, lifespan="on", ws=ws, ws_ping_interval=None,
                            ws_per_message_deflate=False)
    server = uvicorn.Server(config)
    server.install_signal_handlers = lambda: None  # type: ignore[method-assign]
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 30
    while not server.started:
        if task.done() or time.monotonic() > deadline:
            raise RuntimeError(f"server on port {port} did not start")
        await asyncio.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await asyncio.wait_for(task, 15)
