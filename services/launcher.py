"""The one way to start the app's servers on this machine. `theater local`
(services/local.py), the tests and the benchmarks (bench/) all use it.

- Ports: `free_port`, `port_is_free`, `wait_for_port`.
- `service_env`: the environment a service process gets, as the images get
  it in a pod (HOST/PORT, REDIS_URL, one <PEER>_URL per service it calls).
- `ServerProcess`: one server process (`python -m services.serve NAME`, as
  the images run it, or any other argv), ready once a path answers 200,
  stopped by a signal (`stop_all` stops several, callers first).
- `LiveServer`: an app built in this process, served by uvicorn in a thread
  (for tests that build apps with their own settings).

redis-server itself is started by services/redis_server.py, on these helpers.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from services import catalog

HOST = "127.0.0.1"
ROOT = Path(__file__).resolve().parent.parent  # the directory holding `services/`


# -- ports -------------------------------------------------------------------


def port_is_free(port: int, host: str = HOST) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def free_port(host: str = HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def wait_for_port(port: int, host: str = HOST, timeout: float = 10.0, proc: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"process exited with code {proc.returncode} before listening on {host}:{port}")
        try:
            with socket.create_connection((host, port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on {host}:{port} after {timeout:.0f}s")


# -- a service's environment -------------------------------------------------


def service_env(
    spec: catalog.ServiceSpec,
    port: int,
    *,
    redis_url: str | None = None,
    peers: Mapping[str, str] | None = None,
    cluster: str = "local",
    log_level: str = "warning",
    extra: Mapping[str, str] | None = None,
    base: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The environment of `spec`'s process: `base` (default: this process's
    environment) without any Redis or peer URL a developer's shell may hold,
    then HOST/PORT, CLUSTER_NAME, LOG_LEVEL, REDIS_URL (if the service uses
    Redis), one <PEER>_URL per service it calls (from `peers`, by name), and
    `extra` last."""
    env = dict(os.environ if base is None else base)
    for other in catalog.SERVICES.values():
        env.pop(other.url_env, None)
    env.pop("REDIS_URL", None)
    env.update(
        SERVICE_NAME=spec.name,
        HOST=HOST,
        PORT=str(port),
        CLUSTER_NAME=cluster,
        LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.setdefault("POD_NAME", f"{spec.name}-{cluster}")
    if spec.uses_redis and redis_url:
        env["REDIS_URL"] = redis_url
    for peer in spec.calls:
        if peers and peer in peers:
            env[catalog.SERVICES[peer].url_env] = peers[peer]
    env.update(extra or {})
    return env


def serve_argv(name: str, python: str | None = None) -> list[str]:
    """How a service runs, as in the images."""
    return [python or sys.executable, "-m", "services.serve", name]


# -- server processes --------------------------------------------------------


class ServerExited(RuntimeError):
    """The process ended while it should have been starting."""

    def __init__(self, name: str, returncode: int | None) -> None:
        super().__init__(f"{name} exited with code {returncode}")
        self.returncode = returncode


class StopRequested(Exception):
    """A stop was asked for (Ctrl-C) while waiting for a server."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the launcher dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class ServerProcess:
    """One server process listening on `port`. Its output goes to `log_path`
    (appended: a restart adds to it), or to this process's output when None."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        port: int,
        *,
        log_path: Path | None = None,
        die_with_parent: bool = False,
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.log_path = log_path
        self.die_with_parent = die_with_parent and sys.platform.startswith("linux")
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> ServerProcess:
        out: Any = None
        if self.log_path is not None:
            out = self.log_path.open("ab")
        try:
            self.proc = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT if out is not None else None,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )
        finally:
            if out is not None:
                out.close()
        return self

    def wait_ready(
        self, path: str = "/healthz", timeout: float = 30.0, stop_requested: Callable[[], bool] = lambda: False
    ) -> None:
        """Until GET `path` answers 200. Raises ServerExited, TimeoutError or
        StopRequested (when `stop_requested()` turns true)."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if stop_requested():
                raise StopRequested
            if self.proc.poll() is not None:
                raise ServerExited(self.name, self.proc.returncode)
            try:
                # The standard library is enough for one local readiness check.
                with urllib.request.urlopen(self.url + path, timeout=1.0) as answer:  # noqa: S310 (127.0.0.1)
                    if answer.status == 200:
                        return
            except OSError:  # refused, reset, timeout, HTTP errors
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.name} did not answer {self.url + path} within {timeout:.0f}s")

    def start_ready(self, path: str = "/healthz", timeout: float = 30.0) -> ServerProcess:
        """start() and wait_ready(); on failure the process is stopped and the
        error carries the end of its log."""
        self.start()
        try:
            self.wait_ready(path, timeout)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n--- {self.log_path} (tail) ---\n{self.log_tail()}") from None
        return self

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None:
            return ""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def send_signal(self, sig: int) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(sig)

    def wait_or_kill(self, timeout: float) -> None:
        """Wait for the process to end; kill it after `timeout` s."""
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc = None

    def kill(self) -> None:
        """kill -9, as a crashing node or an OOM kill would (fault runs).
        The whole process tree goes, as when Kubernetes kills a container:
        Granian's forked workers outlive a SIGKILLed parent otherwise."""
        if self.proc is not None:
            tree = descendants(self.proc.pid)
            self.proc.kill()
            for pid in tree:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            self.proc.wait()
            self.proc = None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
        self.send_signal(sig)
        self.wait_or_kill(timeout)


def descendants(pid: int) -> list[int]:
    """Every process below `pid` (children first), read from /proc."""
    found: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/children") as f:
                children = [int(c) for c in f.read().split()]
        except OSError:
            continue
        for child in children:
            found += [child, *descendants(child)]
    return found


def stop_process(proc: subprocess.Popen, sig: int, timeout: float) -> None:
    """Send `sig` to a running child, wait up to `timeout` s, then kill it."""
    if proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def stop_all(servers: Iterable[ServerProcess], sig: int = signal.SIGTERM, timeout: float = 15.0) -> None:
    """Signal every server at once (pass them callers first), then wait for each."""
    servers = list(servers)
    for server in servers:
        server.send_signal(sig)
    for server in servers:
        server.wait_or_kill(timeout)


# -- an app in this process --------------------------------------------------


class LiveServer:
    """A Starlette app built in this process, under uvicorn in a background
    thread, reachable over real HTTP (the services themselves run under
    Granian, services/serve.py: what depends on the server is tested against
    ServerProcess). uvicorn is a dev dependency; only tests use this."""

    def __init__(self, app: Any, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.server: Any = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def start(self) -> LiveServer:
        import uvicorn

        config = uvicorn.Config(
            self.app, host=HOST, port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.server = None
        self.thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
