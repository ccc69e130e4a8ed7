"""The solver's worker processes do not outlive the server that started them."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).parents[3]

# A "server" that starts the pool, learns its worker's pid, then dies without shutting the
# pool down (as a killed or crashed process would).
SERVER = textwrap.dedent("""
    import os
    from api.core.routing.pool import SolverPool

    pool = SolverPool().get()
    print(pool.submit(os.getpid).result(timeout=60), flush=True)
    os._exit(0)
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers signal 0; it has exited all the same.
    with open(f"/proc/{pid}/stat") as f:
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


def test_worker_exits_when_its_server_dies_without_shutting_the_pool_down(
    tmp_path: Path,
) -> None:
    # Output to a file, not a pipe: the worker inherits it, and a pipe would stay open (and
    # `run` waiting) for as long as the worker lives.
    out = tmp_path / "worker.pid"
    with out.open("w") as f:
        subprocess.run([sys.executable, "-c", SERVER], cwd=ROOT, stdout=f, timeout=90,
                       check=True)
    worker = int(out.read_text().strip())
    assert worker != os.getpid()
    deadline = time.monotonic() + 10
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    still = alive(worker)
    if still:
        os.kill(worker, 9)  # do not leave it behind when the assertion fails
    assert not still, f"solver worker {worker} outlived its server by 10 s"
