"""HTTP load with wrk (Debian's `wrk` package) and Redis load with
redis-benchmark, both bounded in duration, connections and request count,
against 127.0.0.1 only.

wrk runs a generated Lua script: `request()` cycles through the given paths
(and POST bodies), `response()` counts statuses and stops a thread once it
has sent its share of the request budget, and `done()` prints one JSON line
with requests, duration, errors and latency percentiles (microseconds).
"""

from __future__ import annotations

import csv
import io
import json
import math
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

MARKER = "BENCH_JSON "
WRK_HINT = (
    "wrk is not installed. It is the HTTP load generator the benchmark uses; install it with\n"
    "    sudo apt-get install wrk        (Debian/Ubuntu)\n"
    "    brew install wrk                (macOS)\n"
    "then run the benchmark again."
)
REDIS_BENCHMARK_HINT = "redis-benchmark is not installed (it comes with redis: sudo apt-get install redis-tools)"


class ToolMissing(RuntimeError):
    pass


def require_wrk() -> str:
    path = shutil.which("wrk")
    if not path:
        raise ToolMissing(WRK_HINT)
    return path


def require_redis_benchmark() -> str:
    path = shutil.which("redis-benchmark")
    if not path:
        raise ToolMissing(REDIS_BENCHMARK_HINT)
    return path


def wrk_version() -> str:
    try:
        out = subprocess.run(["wrk", "--version"], capture_output=True, text=True, timeout=5)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    return (out.stdout + out.stderr).splitlines()[0].split(" Copyright")[0].strip() if (out.stdout + out.stderr) else "unknown"


@dataclass
class LoadResult:
    name: str
    concurrency: int
    requests: int
    seconds: float
    rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float
    max_ms: float
    socket_errors: int = 0
    statuses: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if s.startswith("2"))

    def as_dict(self) -> dict:
        return asdict(self)


def _lua_str(s: str) -> str:
    level = "=" * 3
    while f"]{level}]" in s:
        level += "="
    return f"[{level}[{s}]{level}]"


def lua_script(method: str, paths: Sequence[str], bodies: Sequence[str] | None, max_per_thread: int) -> str:
    if not paths:
        raise ValueError("need at least one path")
    if bodies is not None and len(bodies) != len(paths):
        raise ValueError("bodies and paths must have the same length")
    path_table = ",\n".join(_lua_str(p) for p in paths)
    body_table = ",\n".join(_lua_str(b) for b in bodies) if bodies is not None else ""
    return f"""
local method = {_lua_str(method)}
local paths = {{
{path_table}
}}
local bodies = {{
{body_table}
}}
local max_requests = {int(max_per_thread)}
local headers = {{}}
if #bodies > 0 then headers["Content-Type"] = "application/json" end
local threads = {{}}
local next_id = 0

function setup(thread)
  thread:set("thread_id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local i = 0
local sent = 0
statuses = {{}}

function init(args)
  -- threads start at different places in the lists
  i = (thread_id or 0) * 7919
end

function request()
  i = i + 1
  local k = (i % #paths) + 1
  if #bodies > 0 then
    return wrk.format(method, paths[k], headers, bodies[k])
  end
  return wrk.format(method, paths[k], headers)
end

function response(status, hdrs, body)
  local key = tostring(status)
  statuses[key] = (statuses[key] or 0) + 1
  sent = sent + 1
  if sent >= max_requests then
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local objs = {{}}
  for _, t in ipairs(threads) do
    local st = t:get("statuses")
    local parts = {{}}
    if st then
      for k, v in pairs(st) do
        table.insert(parts, string.format('"%s":%d', k, v))
      end
    end
    table.insert(objs, "{{" .. table.concat(parts, ",") .. "}}")
  end
  local e = summary.errors
  io.write("{MARKER}")
  io.write(string.format(
    '{{"requests":%d,"duration_us":%d,"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d,' ..
    '"p50":%d,"p90":%d,"p99":%d,"max":%d,"statuses":[%s]}}\\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max,
    table.concat(objs, ",")))
end
"""


def _check_local(base_url: str) -> None:
    host = urlsplit(base_url).hostname
    if host not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"benchmark load goes to 127.0.0.1 only, not {host}")


def run_wrk(
    name: str,
    base_url: str,
    paths: Sequence[str],
    *,
    concurrency: int,
    duration: float,
    method: str = "GET",
    bodies: Sequence[str] | None = None,
    max_requests: int = 200_000,
    threads: int = 1,
    timeout: float = 5.0,
) -> LoadResult:
    """One bounded wrk run: `duration` seconds or `max_requests` requests,
    whichever comes first, over `concurrency` keep-alive connections."""
    _check_local(base_url)
    wrk = require_wrk()
    threads = max(1, min(threads, concurrency))
    per_thread = max(1, math.ceil(max_requests / threads))
    with tempfile.NamedTemporaryFile("w", suffix=".lua", prefix="bench-", delete=False) as f:
        f.write(lua_script(method, paths, bodies, per_thread))
        script = f.name
    cmd = [
        wrk,
        f"-t{threads}",
        f"-c{concurrency}",
        f"-d{max(1, round(duration))}s",
        f"--timeout={max(1, round(timeout))}s",
        "-s",
        script,
        base_url.rstrip("/"),
    ]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + timeout + 30)
    finally:
        Path(script).unlink(missing_ok=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith(MARKER)), None)
    if proc.returncode != 0 or line is None:
        raise RuntimeError(f"wrk failed ({proc.returncode}): {proc.stderr.strip() or proc.stdout.strip()[-500:]}")
    data = json.loads(line[len(MARKER):])
    statuses: dict[str, int] = {}
    for part in data["statuses"]:
        for k, v in part.items():
            statuses[k] = statuses.get(k, 0) + v
    seconds = data["duration_us"] / 1e6
    return LoadResult(
        name=name,
        concurrency=concurrency,
        requests=data["requests"],
        seconds=round(seconds, 3),
        rps=round(data["requests"] / seconds, 1) if seconds else 0.0,
        p50_ms=data["p50"] / 1000,
        p90_ms=data["p90"] / 1000,
        p99_ms=data["p99"] / 1000,
        max_ms=data["max"] / 1000,
        socket_errors=data["connect"] + data["read"] + data["write"] + data["timeout"],
        statuses=dict(sorted(statuses.items())),
    )


@dataclass
class RedisBenchResult:
    test: str
    concurrency: int
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float


def run_redis_benchmark(port: int, *, concurrency: int, requests: int, timeout: float = 120.0) -> list[RedisBenchResult]:
    """redis-benchmark -q on 127.0.0.1:port, GET and SET, `requests` of each."""
    tool = require_redis_benchmark()
    cmd = [tool, "-h", "127.0.0.1", "-p", str(port), "-q", "--csv", "-n", str(requests), "-c", str(concurrency), "-t", "get,set"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"redis-benchmark failed: {proc.stderr.strip()}")
    rows = list(csv.DictReader(io.StringIO(proc.stdout)))
    return [
        RedisBenchResult(
            test=row["test"],
            concurrency=concurrency,
            requests=requests,
            rps=float(row["rps"]),
            p50_ms=float(row["p50_latency_ms"]),
            p99_ms=float(row["p99_latency_ms"]),
        )
        for row in rows
    ]
