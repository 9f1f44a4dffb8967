"""`uv run python -m bench [--quick] [--duration S] [--concurrency 1,16,64] ...`

Starts a fresh Redis, the four services and a constant-JSON baseline on free
127.0.0.1 ports, puts bounded load on them with wrk and redis-benchmark,
then prints a table and writes docs/benchmarks.md + docs/benchmarks.png
(raw figures in bench/out/). See docs/benchmarks.md for what is measured.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import data, load, procs, program, report, runtime_env
from services import catalog
from services.launcher import ServerProcess

ROOT = Path(__file__).resolve().parent.parent
STEPS = ("http", "redis", "contention", "scale", "pulumi")


class Progress:
    def __init__(self, budget_s: float) -> None:
        self.t0 = time.monotonic()
        self.budget_s = budget_s

    def __call__(self, msg: str) -> None:
        elapsed = time.monotonic() - self.t0
        print(f"[{int(elapsed // 60):02d}:{int(elapsed % 60):02d}] {msg}", flush=True)

    def left(self) -> float:
        return self.budget_s - (time.monotonic() - self.t0)


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[1])
    p.add_argument("--quick", action="store_true", help="short runs to check the harness: 2 s per point, sizes 1k/10k")
    p.add_argument("--duration", type=float, help="seconds per load point (default 10, quick 2)")
    p.add_argument("--concurrency", help="comma-separated connection counts (default 1,16,64)")
    p.add_argument("--sizes", help="record counts for the list-scale test (default 1000,10000,100000; quick 1000,10000)")
    p.add_argument("--contention-capacity", type=int, default=500, help="seats in the contended movie (default 500)")
    p.add_argument("--contention-clients", type=int, default=64, help="connections booking it at once (default 64)")
    p.add_argument("--pulumi-runs", type=int, help="runs of the Pulumi program under mocks (default 5, quick 2)")
    p.add_argument("--profile", default="", help="comma-separated services to run under pyinstrument (figures are then slower)")
    p.add_argument("--max-minutes", type=float, default=14.0, help="time budget; later steps are skipped past it (default 14)")
    p.add_argument("--steps", default=",".join(STEPS), help=f"comma-separated subset of {','.join(STEPS)} (default: all)")
    p.add_argument(
        "--dev-env",
        action="store_true",
        help="run the services in this (dev) environment instead of a runtime-only venv like the image's",
    )
    p.add_argument("--from-results", metavar="JSON", help="only rewrite the table and docs from a saved bench/out/*/results.json")
    p.add_argument("--no-docs", action="store_true", help="print the table only; do not rewrite docs/benchmarks.*")
    p.add_argument(
        "--soak",
        type=float,
        metavar="MINUTES",
        help="instead of the benchmark: seeded fault runs (bench/faults.py) for MINUTES, then the counts",
    )
    p.add_argument("--seed", type=int, help="--soak: first seed (default: random, printed)")
    args = p.parse_args(argv)
    args.duration = args.duration or (2.0 if args.quick else 10.0)
    args.concurrency = [int(c) for c in (args.concurrency or "1,16,64").split(",")]
    args.sizes = [int(s) for s in (args.sizes or ("1000,10000" if args.quick else "1000,10000,100000")).split(",")]
    args.pulumi_runs = args.pulumi_runs or (2 if args.quick else 5)
    args.profile = [s for s in args.profile.split(",") if s]
    args.steps = [s for s in args.steps.split(",") if s]
    for step in args.steps:
        if step not in STEPS:
            p.error(f"--steps: unknown step {step!r}")
    for name in args.profile:
        if name not in catalog.SERVICES:
            p.error(f"--profile: unknown service {name!r}")
    if max(args.concurrency) > 512 or args.duration > 60:
        p.error("keep it bounded: at most 512 connections and 60 s per point")
    return args


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    progress = Progress(args.max_minutes * 60)
    if args.soak is not None:
        from bench import soak

        return soak.soak(args.soak, args.seed, progress)
    if args.from_results:
        results = json.loads(Path(args.from_results).read_text())
        print(report.table(results))
        if not args.no_docs:
            md, png = report.write_docs(results, ROOT / "docs")
            progress(f"rewrote {md.relative_to(ROOT)} and {png.relative_to(ROOT)} from {args.from_results}")
        return 0
    try:
        load.require_wrk()
        load.require_redis_benchmark()
    except load.ToolMissing as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2

    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out_dir = ROOT / "bench" / "out" / stamp
    out_dir.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "command": "uv run python -m bench" + ("" if not argv else " " + shlex.join(argv)),
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": report.machine_info(),
        "config": {
            "duration_s": args.duration,
            "concurrency": args.concurrency,
            "sizes": args.sizes,
            "wrk_threads": 1,
            "profiled": args.profile,
        },
        "notes": [],
    }
    if args.profile:
        results["notes"].append(f"profiled under pyinstrument (slower): {', '.join(args.profile)}")
    progress(f"bench: {results['command']}  (raw output in {out_dir.relative_to(ROOT)})")

    python = None
    if args.dev_env:
        env_note = "the dev environment (all dependency groups)"
    else:
        python, env_note = runtime_env.ensure(progress)
        if python is None:
            results["notes"].append(f"runtime-only venv unavailable ({env_note}); services ran in the dev environment")
            env_note = "the dev environment (all dependency groups)"
    results["config"]["service_env"] = env_note
    progress(f"services run in {env_note}")

    with tempfile.TemporaryDirectory(prefix="theater-bench-") as tmp:
        work = Path(tmp)
        stack = procs.Stack(work / "stack", profile=args.profile, profile_dir=out_dir, python=python)
        baselines: list[ServerProcess] = []
        try:
            stack.start(progress)
            results["machine"]["redis"] = procs.redis_version(stack.redis.binary)
            baseline = procs.start_baseline(work, python)
            baselines.append(baseline)
            progress(f"baseline (constant JSON, serve.py settings) on {baseline.url} (pid {baseline.pid})")
            redis_baseline = procs.start_baseline(work, python, stack.redis_url)
            baselines.append(redis_baseline)
            progress(f"baseline (one Redis MGET, no plumbing) on {redis_baseline.url} (pid {redis_baseline.pid})")

            def rss() -> dict:
                return {**stack.rss(), **{b.name: procs.rss_mib(b.pid) for b in baselines}}

            results["rss_start"] = rss()
            run_steps(args, stack, baseline, redis_baseline, results, progress)
            results["rss_after"] = rss()
            progress("RSS after load: " + ", ".join(f"{k} {v:.1f} MiB" for k, v in results["rss_after"].items() if v))
        finally:
            progress("stopping services and redis")
            for b in baselines:
                b.stop(procs.STOP_SIGNAL)
            stack.stop()

    if "pulumi" not in args.steps:
        results["pulumi"] = {"skipped": "not asked for (--steps)"}
    elif progress.left() > 0:
        progress(f"Pulumi program under mocks, {args.pulumi_runs} runs")
        results["pulumi"] = program.time_program(args.pulumi_runs, progress)
    else:
        results["pulumi"] = {"skipped": "time budget used up"}

    results["machine"]["loadavg_end"] = report.loadavg()
    (out_dir / "results.json").write_text(json.dumps(results, indent=2))
    print()
    print(report.table(results))
    if not args.no_docs:
        md, png = report.write_docs(results, ROOT / "docs")
        progress(f"wrote {md.relative_to(ROOT)} and {png.relative_to(ROOT)}")
    progress(f"raw figures: {(out_dir / 'results.json').relative_to(ROOT)}")
    return 0


def run_steps(
    args: argparse.Namespace, stack: procs.Stack, baseline: ServerProcess, redis_baseline: ServerProcess, results: dict, progress: Progress
) -> None:
    gateway = stack.url("api-gateway")
    movie = stack.url("movie-service")
    n_users = 50 if args.quick else 200
    n_movies = 20 if args.quick else 100

    # -- data ---------------------------------------------------------------
    progress(f"seeding {n_users} users and {n_movies} movies through the services' POST endpoints")
    users = data.post_many(stack.url("user-service"), "/users/", data.user_bodies(0, n_users, "load"), progress=progress, label="users")
    movies, capacity = create_movies(movie, n_movies, progress)
    movie_paths = [f"/movies/{m['id']}" for m in movies]
    booking_bodies = [
        json.dumps({"userId": users[i % len(users)]["id"], "movieId": movies[(i * 7) % len(movies)]["id"], "seats": 1})
        for i in range(max(len(users), len(movies)) * 3)
    ]
    booking_paths = ["/bookings/"] * len(booking_bodies)
    results["seed"] = {"users": len(users), "movies": len(movies), "capacity": capacity}

    # -- HTTP load: the four targets side by side at each concurrency ---------
    if "http" in args.steps:
        pids = [p.pid for p in stack.services.values()] + [baseline.pid, redis_baseline.pid, stack.redis.proc.pid]
        results["http"] = http_load(
            args, baseline, redis_baseline, movie, gateway, movie_paths, booking_paths, booking_bodies, results, progress, pids
        )
    if "redis" in args.steps:
        results["redis_benchmark"] = redis_load(args, stack, progress)
    if "contention" in args.steps:
        if progress.left() > args.duration:
            results["contention"] = contention(args, stack, users, progress)
        else:
            results["notes"].append("skipped contention: time budget used up")
    if "scale" in args.steps:
        results["scale"] = scale(args, stack, progress)


def http_load(args, baseline, redis_baseline, movie, gateway, movie_paths, booking_paths, booking_bodies, results, progress, pids) -> list[dict]:
    targets = [
        ("baseline GET (constant JSON)", baseline.url, movie_paths, "GET", None),
        (report.REDIS_BASELINE, redis_baseline.url, movie_paths, "GET", None),
        ("movie-service GET /movies/{id}", movie, movie_paths, "GET", None),
        (report.LIST, movie, ["/movies/?limit=50"], "GET", None),
        ("gateway GET /movies/{id}", gateway, movie_paths, "GET", None),
        ("gateway POST /bookings/", gateway, booking_paths, "POST", booking_bodies),
    ]
    budget = int(args.duration * 60_000)  # request cap per point; far above what 2 cores serve
    warm = max(1.0, args.duration / 5)
    progress(f"warm-up: {warm:.0f} s per target at 16 connections")
    for name, url, paths, method, bodies in targets:
        load.run_wrk(name, url, paths, concurrency=16, duration=warm, method=method, bodies=bodies, max_requests=budget)
    http: list[dict] = []
    for c in args.concurrency:
        for name, url, paths, method, bodies in targets:
            if progress.left() < args.duration:
                results["notes"].append(f"skipped {name} at c={c}: time budget used up")
                continue
            with procs.CpuWatch(pids) as cpu:
                r = load.run_wrk(name, url, paths, concurrency=c, duration=args.duration, method=method, bodies=bodies, max_requests=budget)
            flag = "  (request cap reached: rps is a lower bound)" if r.requests >= budget else ""
            progress(
                f"{name:32s} c={c:<3d} {r.rps:9.0f} req/s  p50 {r.p50_ms:7.2f} ms  p99 {r.p99_ms:7.2f} ms  {fmt_status(r)}"
                f"  [other load {cpu.other_pct:.0f}%]{flag}"
            )
            http.append({**r.as_dict(), "other_cpu_pct": cpu.other_pct, "bench_cpu_pct": cpu.bench_pct})
    return http


def redis_load(args: argparse.Namespace, stack: procs.Stack, progress: Progress) -> list[dict]:
    """redis-benchmark GET/SET on the services' Redis, bounded by -n."""
    n = 20_000 if args.quick else 100_000
    rb = []
    for c in args.concurrency:
        for row in load.run_redis_benchmark(stack.redis.port, concurrency=c, requests=n):
            progress(f"redis-benchmark {row.test:3s} c={c:<3d} {row.rps:9.0f} req/s  p50 {row.p50_ms:7.3f} ms  p99 {row.p99_ms:7.3f} ms")
            rb.append(row.__dict__)
    return rb


def fmt_status(r: load.LoadResult) -> str:
    parts = [f"{k}:{v}" for k, v in r.statuses.items()]
    if r.socket_errors:
        parts.append(f"socket errors:{r.socket_errors}")
    return " ".join(parts)


def create_movies(movie_url: str, n: int, progress: Progress) -> tuple[list[dict], int]:
    """Movies with a capacity large enough that the booking load never sells
    out; the largest one the service accepts."""
    last: Exception | None = None
    for capacity in (10_000, 1_000):  # 10,000 is MovieIn's maximum
        try:
            movies = data.post_many(movie_url, "/movies/", data.movie_bodies(0, n, capacity), progress=progress, label="movies")
            return movies, capacity
        except data.SeedError as exc:
            if " 422" not in str(exc) and " 400" not in str(exc):
                raise
            last = exc
    raise RuntimeError(f"movie-service refused every capacity: {last}")


def contention(args: argparse.Namespace, stack: procs.Stack, users: list[dict], progress: Progress) -> dict:
    gateway = stack.url("api-gateway")
    cap = args.contention_capacity
    seats = 2
    [m] = data.post_many(stack.url("movie-service"), "/movies/", [{"title": "Sold Out", "genre": "drama", "year": 2001, "capacity": cap}], label="movie")
    bodies = [json.dumps({"userId": u["id"], "movieId": m["id"], "seats": seats}) for u in users]
    clients = args.contention_clients
    progress(f"contention: {clients} connections booking {seats} seats each of one movie (capacity {cap}) for {args.duration:.0f} s")
    r = load.run_wrk(
        "contention POST /bookings/ (one movie)",
        gateway,
        ["/bookings/"] * len(bodies),
        method="POST",
        bodies=bodies,
        concurrency=clients,
        duration=args.duration,
        max_requests=int(args.duration * 60_000),
    )
    created = r.statuses.get("201", 0)
    status, movie = data.get_json(gateway, f"/movies/{m['id']}")
    available = movie.get("availableSeats") if isinstance(movie, dict) else None
    listed = data.list_all(gateway, "/bookings/", {"movieId": m["id"], "limit": 500})
    out: dict[str, Any] = {
        "capacity": cap,
        "seats_per_booking": seats,
        "clients": clients,
        "result": r.as_dict(),
        "created_201": created,
        "available_after": available,
    }
    checks = []
    if available is None:
        checks.append(("availableSeats readable after the run", False))
    else:
        sold = cap - available
        checks.append(("availableSeats >= 0", available >= 0))
        checks.append((f"seats in 201 answers ({created} x {seats}) == capacity - availableSeats ({sold})", created * seats == sold))
        checks.append(("sold out (every seat sold)", available < seats))
    if listed is not None:
        mine = [b for b in listed if b.get("movieId") == m["id"]]
        confirmed = [b for b in mine if b.get("status", "confirmed") == "confirmed"]
        total = sum(int(b.get("seats", 0)) for b in confirmed)
        out["listed_bookings"] = len(mine)
        out["listed_confirmed_seats"] = total
        if available is not None:
            checks.append((f"confirmed bookings listed for the movie hold {total} seats == capacity - availableSeats", total == cap - available))
        checks.append(("seats sold <= capacity", total <= cap))
    else:
        out["listed_bookings"] = None
        results_note = "GET /bookings/?movieId= not available; checked the 201 answers against availableSeats only"
        out["note"] = results_note
    out["checks"] = [{"check": c, "ok": ok} for c, ok in checks]
    out["ok"] = all(ok for _, ok in checks)
    other = {k: v for k, v in r.statuses.items() if k not in ("201", "409")}
    if other or r.socket_errors:
        out["unexpected"] = {**other, "socket_errors": r.socket_errors}
    progress(
        f"contention: {r.rps:.0f} req/s, p50 {r.p50_ms:.1f} ms, p99 {r.p99_ms:.1f} ms, {fmt_status(r)}; "
        f"seats check {'PASS' if out['ok'] else 'FAIL'}"
    )
    for c in out["checks"]:
        progress(f"  [{'ok' if c['ok'] else 'FAIL'}] {c['check']}")
    return out


def scale(args: argparse.Namespace, stack: procs.Stack, progress: Progress) -> dict:
    """First page of GET /movies/?limit=50 on movie-service as the collection
    grows to each size."""
    movie = stack.url("movie-service")
    path = "/movies/?limit=50"
    points = []
    have = count_records(stack)
    loader = ""
    dur = max(2.0, args.duration / 2)
    for size in sorted(args.sizes):
        if progress.left() < dur + 5:
            points.append({"records": size, "skipped": "time budget used up"})
            continue
        if size > have:
            progress(f"scale: adding {size - have} movies (now {have})")
            t = time.monotonic()
            try:
                how = add_movies(stack, have, size - have, progress, max(30.0, progress.left() - 60))
            except data.SeedError as exc:  # out of time on a busy machine: say so, keep the other steps' figures
                points.append({"records": size, "skipped": str(exc)})
                progress(f"scale: skipped {size}: {exc}")
                break
            loader = how
            have = count_records(stack)
            progress(f"scale: {have} movies, loaded {how} in {time.monotonic() - t:.0f} s")
        r = load.run_wrk(f"first page at {size}", movie, [path], concurrency=1, duration=dur, max_requests=int(dur * 60_000))
        r16 = load.run_wrk(f"first page at {size}", movie, [path], concurrency=16, duration=dur, max_requests=int(dur * 60_000))
        progress(
            f"scale: {have:>7d} movies: first page c=1 p50 {r.p50_ms:.2f} ms p99 {r.p99_ms:.2f} ms; "
            f"c=16 {r16.rps:.0f} req/s p50 {r16.p50_ms:.2f} ms  {fmt_status(r)}"
        )
        points.append({"records": have, "target": size, "c1": r.as_dict(), "c16": r16.as_dict()})
    return {"path": path, "points": points, "loader": loader}


def count_records(stack: procs.Stack) -> int:
    import redis

    client = redis.Redis.from_url(stack.redis_url)
    try:
        return int(client.zcard("movies:index"))
    finally:
        client.close()


def add_movies(stack: procs.Stack, start: int, count: int, progress: Progress, deadline: float) -> str:
    """Add `count` movies with movie-service's own storage code straight into
    Redis (bench.data.bulk_movies), 64 writes in flight: the same records,
    seat keys and index entries POST /movies/ makes, without HTTP."""
    data.bulk_movies(stack.redis_url, start, count, timeout=deadline, progress=progress)
    return "written by movie-service's own code (MovieIn, Movies, Store.create) straight into Redis, 64 at a time"


if __name__ == "__main__":
    sys.exit(main())
