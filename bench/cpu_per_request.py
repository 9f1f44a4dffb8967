"""`uv run python -m bench.cpu_per_request [SECONDS] [CONCURRENCY] [--py-spy DIR]`:
CPU time per request of each process on the paths bench measures, with wrk
at CONCURRENCY connections (default 16) for SECONDS per target (default 5).

Why next to the wrk figures: on a shared 2-core machine req/s swings with
other load, while CPU time per request barely moves. When a Python
process is the bottleneck, its req/s is about 1 / (its CPU per request),
so the ratios of bench's targets can be read off these figures:
movie-service against the constant-JSON baseline, a list page against a
single read, the gateway's added cost, a booking's total across the five
processes. Compare two checkouts by running this in each, back to back.

With --py-spy DIR, each service is sampled by py-spy (`py-spy record`,
`--native` off, `--idle` off) during the targets that load it, and a
flame graph (SVG) plus a "top functions" text summary are written to DIR.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from bench import data, load, procs, runtime_env

TARGETS = (
    # name, which process serves it, path kind
    ("baseline GET (constant JSON)", "baseline", "movie"),
    ("baseline GET + 1 Redis MGET", "baseline+redis", "movie"),
    ("movie-service GET /movies/{id}", "movie-service", "movie"),
    ("movie-service GET /movies/?limit=50", "movie-service", "list"),
    ("gateway GET /movies/{id}", "api-gateway", "movie"),
    ("gateway POST /bookings/", "api-gateway", "booking"),
)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.cpu_per_request", description=__doc__.split("\n\n")[1])
    p.add_argument("seconds", nargs="?", type=float, default=5.0)
    p.add_argument("concurrency", nargs="?", type=int, default=16)
    p.add_argument("--py-spy", metavar="DIR", help="profile each service with py-spy into DIR")
    p.add_argument("--only", help="comma-separated substrings of target names to run")
    p.add_argument("--dev-env", action="store_true", help="services in the dev environment, not the runtime venv")
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    python = None if args.dev_env else runtime_env.ensure(lambda m: print(m, file=sys.stderr))[0]
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    out_dir = Path(args.py_spy) if args.py_spy else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="theater-cpu-") as tmp:
        stack = procs.Stack(Path(tmp) / "stack", python=python)
        stack.start(lambda m: None)
        extra: list[procs.Proc] = []
        try:
            extra.append(procs.start_baseline(Path(tmp), python))
            extra.append(procs.start_baseline(Path(tmp), python, stack.redis_url))
            servers = {**stack.services, **{b.name: b for b in extra}}
            users = data.post_many(stack.url("user-service"), "/users/", data.user_bodies(0, 200, "cpu"), label="users")
            movies = data.post_many(stack.url("movie-service"), "/movies/", data.movie_bodies(0, 100, 10_000), label="movies")
            movie_paths = [f"/movies/{m['id']}" for m in movies]
            bodies = [
                json.dumps({"userId": users[i % len(users)]["id"], "movieId": movies[(i * 7) % len(movies)]["id"], "seats": 1})
                for i in range(600)
            ]
            pids = {name: s.pid for name, s in servers.items()} | {"redis": stack.redis.proc.pid}  # type: ignore[union-attr]
            for name, server, kind in TARGETS:
                if args.only and not any(s in name for s in args.only.split(",")):
                    continue
                url = servers[server].url
                paths, method, bods = {
                    "movie": (movie_paths, "GET", None),
                    "list": (["/movies/?limit=50"], "GET", None),
                    "booking": (["/bookings/"] * len(bodies), "POST", bodies),
                }[kind]
                load.run_wrk(name, url, paths, concurrency=args.concurrency, duration=1.0, method=method, bodies=bods, max_requests=10**7)
                spies = []
                if out_dir:
                    tag = name.split(" ")[0] + "-" + kind
                    for svc in ("api-gateway", "booking-service", "user-service", "movie-service", "baseline", "baseline+redis"):
                        if svc == server or (kind == "booking" and svc in ("booking-service", "user-service", "movie-service")) or (server == "api-gateway" and svc == "movie-service"):
                            worker = procs.process_tree(pids[svc])[-1]
                            base = out_dir / f"{tag}.{svc}"
                            spies.append(subprocess.Popen(
                                [spy, "record", "-p", str(worker), "-d", str(int(args.seconds)), "-r", "200", "-f", "raw", "-o", f"{base}.txt"],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            ))
                before = {k: procs.cpu_seconds(v) for k, v in pids.items()}
                r = load.run_wrk(name, url, paths, concurrency=args.concurrency, duration=args.seconds, method=method, bodies=bods, max_requests=10**7)
                cpu = {k: procs.cpu_seconds(v) - before[k] for k, v in pids.items()}
                for s in spies:
                    s.wait()
                per = {k: round(1e6 * v / max(r.requests, 1)) for k, v in cpu.items() if v > 0.005}
                row = {"target": name, "c": args.concurrency, "rps": round(r.rps), "p50_ms": r.p50_ms, "statuses": r.statuses, "cpu_us_per_req": per}
                rows.append(row)
                print(json.dumps(row), flush=True)
        finally:
            for b in extra:
                b.stop()
            stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
