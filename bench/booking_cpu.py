"""`uv run python -m bench.booking_cpu [N] [CONCURRENCY]`: CPU time the app
spends per booking through the gateway, summed over api-gateway,
user-service, movie-service, booking-service and Redis (from /proc, after a
warm-up of 200 bookings), for N bookings (default 600) from CONCURRENCY
clients (default 16). Prints one JSON line.

Why next to the wrk figures: on a shared machine the booking path's req/s
swings with other load (it crosses four processes, each waiting for a
core), while CPU time per booking barely moves. Compare two checkouts by
running this in each, back to back."""

from __future__ import annotations

import asyncio
import json
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench import procs


async def _book(gateway: str, users: list[str], movies: list[str], n: int, concurrency: int) -> dict[int, int]:
    codes: dict[int, int] = {}
    gate = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=concurrency)) as client:

        async def one(i: int) -> None:
            async with gate:
                body = {"userId": users[i % len(users)], "movieId": movies[i % len(movies)], "seats": 1}
                r = await client.post(f"{gateway}/bookings/", json=body)
                codes[r.status_code] = codes.get(r.status_code, 0) + 1

        await asyncio.gather(*(one(i) for i in range(n)))
    return codes


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 600
    concurrency = int(args[1]) if len(args) > 1 else 16
    with tempfile.TemporaryDirectory(prefix="theater-booking-cpu-") as tmp:
        stack = procs.Stack(Path(tmp))
        stack.start(lambda message: None)
        try:
            gateway = stack.url("api-gateway")
            with httpx.Client(timeout=30) as http:
                users = [http.post(f"{gateway}/users/", json={"name": f"u{i}", "email": f"u{i}@example.com"}).json()["id"] for i in range(20)]
                movie = {"title": "m", "genre": "g", "year": 2000, "capacity": 10000}
                movies = [http.post(f"{gateway}/movies/", json=movie).json()["id"] for _ in range(10)]
            names = [*stack.services, "redis"]
            pids = [p.pid for p in stack.services.values()] + [stack.redis.proc.pid]  # type: ignore[union-attr]
            asyncio.run(_book(gateway, users, movies, 200, concurrency))  # warm-up
            before = [procs.cpu_seconds(p) for p in pids]
            started = time.monotonic()
            codes = asyncio.run(_book(gateway, users, movies, n, concurrency))
            wall = time.monotonic() - started
            cpu = [procs.cpu_seconds(p) - b for p, b in zip(pids, before, strict=True)]
        finally:
            stack.stop()
    print(json.dumps({
        "bookings": n,
        "concurrency": concurrency,
        "answers": codes,
        "wall_s": round(wall, 1),
        "cpu_ms_per_booking": round(1000 * sum(cpu) / n, 2),
        "per_process_ms": {name: round(1000 * c / n, 2) for name, c in zip(names, cpu, strict=True)},
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
