"""Start what the benchmark measures, each as its own process on 127.0.0.1:
a fresh redis-server in a temp dir, the four services exactly as the images
run them (`python -m services.serve NAME`, wired by HOST/PORT/REDIS_URL and
the <PEER>_URL variables), and the constant-JSON baseline, all through
services/launcher.py. Memory comes from /proc/<pid>/smaps_rollup (PSS),
CPU time from /proc/<pid>/stat.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from services import catalog, launcher
from services.launcher import HOST, ServerProcess, free_port, service_env, stop_all
from services.redis_server import RedisServer, find_redis_server

# SIGINT: a service shuts down gracefully, and pyinstrument (when profiling)
# writes its report on the way out.
STOP_SIGNAL = signal.SIGINT


def process_tree(pid: int) -> list[int]:
    """`pid` and all its descendants: a service under Granian is a
    supervisor process and its worker, and a pod pays for both."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for task in Path(f"/proc/{p}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except (OSError, ValueError):
            pass
    return out


def _own_pss_mib(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def rss_mib(pid: int) -> float | None:
    """Memory of `pid` and its descendants in MiB: their PSS summed (from
    /proc/<pid>/smaps_rollup). A forked worker shares most pages with its
    supervisor; PSS counts each shared page once across them, as the pod's
    memory does, where summing RSS would count it twice. None if unreadable."""
    sizes = [r for r in map(_own_pss_mib, process_tree(pid)) if r is not None]
    return sum(sizes) if sizes else None


def redis_version(binary: str) -> str:
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=5).stdout
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    words = dict(w.split("=", 1) for w in out.split() if "=" in w)
    return f"Redis {words.get('v', '?')} ({words.get('malloc', '?')} malloc, {binary})"


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of `pid` and its descendants so far (all threads)."""
    total = 0.0
    for p in process_tree(pid):
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            pass
    return total


def machine_busy_seconds() -> float:
    """CPU time all cores have spent busy since boot (/proc/stat)."""
    try:
        fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    except (OSError, ValueError):
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


class CpuWatch:
    """How much CPU went to processes that are not part of the benchmark
    while one load point ran: other users of a shared machine make the
    figures noisy, and this says by how much."""

    def __init__(self, pids: list[int]) -> None:
        self.pids = pids

    def __enter__(self) -> CpuWatch:
        import resource

        self.t0 = time.monotonic()
        self.busy0 = machine_busy_seconds()
        self.ours0 = sum(cpu_seconds(p) for p in self.pids)
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.children0 = ru.ru_utime + ru.ru_stime
        return self

    def __exit__(self, *exc: object) -> None:
        import resource

        elapsed = max(time.monotonic() - self.t0, 1e-6)
        busy = machine_busy_seconds() - self.busy0
        ours = sum(cpu_seconds(p) for p in self.pids) - self.ours0
        ru = resource.getrusage(resource.RUSAGE_CHILDREN)
        load_tool = ru.ru_utime + ru.ru_stime - self.children0  # wrk / redis-benchmark, waited for
        cores = os.cpu_count() or 1
        self.bench_pct = round(100 * (ours + load_tool) / (elapsed * cores), 1)
        self.other_pct = round(max(0.0, 100 * (busy - ours - load_tool) / (elapsed * cores)), 1)


def bench_env(spec: catalog.ServiceSpec, port: int, **kw: Any) -> dict[str, str]:
    """A service's environment in a benchmark: quiet, no access log."""
    return service_env(spec, port, cluster="bench", extra={"ACCESS_LOG": "0", **kw.pop("extra", {})}, **kw)


def server(name: str, argv: Sequence[str], env: Mapping[str, str], port: int, log_dir: Path) -> ServerProcess:
    """A benchmark's server process, its output in <log_dir>/<name>.log."""
    return ServerProcess(name, argv, env, port, log_path=Path(log_dir) / f"{name}.log")


def serve_argv(name: str, profile_dir: Path | None = None, python: str | None = None) -> list[str]:
    """How a service runs: as in the images, optionally under pyinstrument
    (which only the dev environment has)."""
    if profile_dir is None:
        return launcher.serve_argv(name, python)
    out = profile_dir / f"{name}.pyinstrument.txt"
    return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out), "-m", "services.serve", name]


class Stack:
    """redis-server + the four services (callees first), all on free ports."""

    def __init__(
        self,
        work_dir: Path,
        *,
        profile: Sequence[str] = (),
        profile_dir: Path | None = None,
        python: str | None = None,
    ) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.work_dir / "redis", free_port(HOST), HOST, binary=find_redis_server(prefer_system=True))
        self.services: dict[str, ServerProcess] = {}
        self.profile = set(profile)
        self.profile_dir = profile_dir
        self.python = python  # interpreter for the services; default: this one

    @property
    def redis_url(self) -> str:
        return f"{self.redis.url}/0"

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, progress=print) -> None:
        self.redis.start()
        progress(f"redis-server on {HOST}:{self.redis.port} (data in {self.redis.data_dir})")
        ports = {name: free_port(HOST) for name in catalog.SERVICES}
        try:
            for name, spec in catalog.SERVICES.items():  # callees before callers
                peers = {peer: f"http://{HOST}:{ports[peer]}" for peer in spec.calls}
                env = bench_env(spec, ports[name], redis_url=self.redis_url, peers=peers)
                argv = serve_argv(name, self.profile_dir if name in self.profile else None, self.python)
                proc = server(name, argv, env, ports[name], self.work_dir)
                self.services[name] = proc.start_ready("/readyz")
                progress(f"{name} on {proc.url} (pid {proc.pid}, {rss_mib(proc.pid) or 0:.1f} MiB RSS)")
        except Exception:
            self.stop()
            raise

    def rss(self) -> dict[str, float | None]:
        out = {name: rss_mib(p.pid) for name, p in self.services.items()}
        out["redis"] = rss_mib(self.redis.proc.pid) if self.redis.proc is not None else None
        return out

    def stop(self) -> None:
        stop_all(reversed(list(self.services.values())), STOP_SIGNAL)
        self.services.clear()
        self.redis.stop()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_baseline(work_dir: Path, python: str | None = None, redis_url: str | None = None) -> ServerProcess:
    """The constant-JSON baseline, or with `redis_url` the one-MGET baseline."""
    port = free_port(HOST)
    name = "baseline+redis" if redis_url else "baseline"
    extra = {"BASELINE_REDIS_URL": redis_url} if redis_url else {}
    env = bench_env(catalog.MOVIE, port, extra=extra)
    proc = server(name, [python or sys.executable, "-m", "bench.baseline_app"], env, port, Path(work_dir))
    return proc.start_ready("/healthz")
