"""Embedded stores: start in parallel on free ports, answer, and leave nothing running."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import asyncpg
import nats
import redis.asyncio as aioredis

from api.runtime import EmbeddedStores, _pid_alive, _proc_start_ticks, _redis_executable, free_port


def _wait_dead(pids: list[int], timeout_s: float = 10.0) -> list[int]:
    deadline = time.monotonic() + timeout_s
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if _pid_alive(p)]
        time.sleep(0.05)
    return alive


async def _serving(port: int, timeout_s: float = 10.0) -> None:
    """Returns once a Redis server answers PING on `port`."""
    client = aioredis.Redis(host="127.0.0.1", port=port)
    deadline = time.monotonic() + timeout_s
    try:
        while True:
            try:
                await client.ping()
                return
            except aioredis.ConnectionError:
                if time.monotonic() > deadline:
                    raise AssertionError(f"no Redis on port {port} after {timeout_s} s") from None
                await asyncio.sleep(0.02)
    finally:
        await client.aclose()


async def test_start_use_stop_leaves_no_process(tmp_path: Path) -> None:
    """All three stores start and serve; after stop() none of their processes is alive."""
    stores = EmbeddedStores(tmp_path / "data")
    urls = await stores.start()
    pids = list(stores.pids.values())
    try:
        assert set(urls) == {"postgres", "redis", "nats"}
        assert all(_pid_alive(p) for p in pids)
        conn = await asyncpg.connect(urls["postgres"])
        assert await conn.fetchval("SELECT 41 + 1") == 42
        await conn.close()
        r = aioredis.from_url(urls["redis"])
        assert await r.ping()
        await r.aclose()
        nc = await nats.connect(urls["nats"])
        await nc.jetstream().account_info()  # JetStream is enabled
        await nc.close()
    finally:
        await stores.stop()
    assert _wait_dead(pids) == []
    assert list((tmp_path / "data" / "run").glob("*.pid")) == []
    stores.remove_files()


async def test_restart_keeps_postgres_data(tmp_path: Path) -> None:
    """A second start on the same DATA_DIR finds the data the first one wrote."""
    stores = EmbeddedStores(tmp_path / "data")
    urls = await stores.start(redis=False, nats=False)
    conn = await asyncpg.connect(urls["postgres"])
    await conn.execute("CREATE TABLE kept (v int); INSERT INTO kept VALUES (7)")
    await conn.close()
    await stores.stop()
    urls = await stores.start(redis=False, nats=False)
    try:
        conn = await asyncpg.connect(urls["postgres"])
        assert await conn.fetchval("SELECT v FROM kept") == 7
        await conn.close()
    finally:
        await stores.stop()
        stores.remove_files()


_CHILD = """
import asyncio, json, sys
from pathlib import Path
from api.runtime import EmbeddedStores
async def main():
    s = EmbeddedStores(Path(sys.argv[1]))
    await s.start()
    print(json.dumps(s.pids), flush=True)
    await asyncio.sleep(3600)
asyncio.run(main())
"""


async def test_killed_parent_leaves_no_orphans(tmp_path: Path) -> None:
    """SIGKILL the process that started the stores: every store process dies with it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-c", _CHILD, str(tmp_path / "data"),
        stdout=subprocess.PIPE, cwd=Path(__file__).parents[2],
    )
    assert proc.stdout is not None
    line = await asyncio.wait_for(proc.stdout.readline(), 60)
    pids = list(json.loads(line).values())
    assert len(pids) == 3
    assert all(_pid_alive(p) for p in pids)
    os.kill(proc.pid, signal.SIGKILL)
    await proc.wait()
    assert _wait_dead(pids) == []
    EmbeddedStores(tmp_path / "data").remove_files()
    location = tmp_path / "data" / "postgres-location.txt"
    assert not location.exists()


async def test_next_start_reclaims_a_leftover_server(tmp_path: Path) -> None:
    """A server recorded in a pidfile but still running (parent gone) is stopped on next start."""
    data = tmp_path / "data"
    (data / "run").mkdir(parents=True)
    exe = _redis_executable()
    port = free_port()
    stray = await asyncio.create_subprocess_exec(
        exe, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
        stdout=subprocess.DEVNULL, start_new_session=True,
    )
    await _serving(port)  # the stray server is really up before it is recorded
    ticks = _proc_start_ticks(stray.pid)
    (data / "run" / "redis.pid").write_text(f"{stray.pid}\n{ticks}\n{exe}\n")
    stores = EmbeddedStores(data)
    try:
        await stores.start(postgres=False, nats=False)
        assert await asyncio.wait_for(stray.wait(), 10) is not None
    finally:
        await stores.stop()
        if stray.returncode is None:
            stray.kill()
            await stray.wait()
        stores.remove_files()


def test_unrelated_process_in_stale_pidfile_is_left_alone(tmp_path: Path) -> None:
    """A reused pid (different start time) is never killed by reclaim."""
    data = tmp_path / "data"
    (data / "run").mkdir(parents=True)
    bystander = subprocess.Popen(["sleep", "30"])
    try:
        (data / "run" / "nats.pid").write_text(f"{bystander.pid}\n999\nnats-server\n")
        EmbeddedStores(data).reclaim()
        assert bystander.poll() is None
        assert not (data / "run" / "nats.pid").exists()
    finally:
        bystander.kill()
        bystander.wait()
