"""`uv run python -m bench.deletion [--bookings 100000] [--movies 10]`

Deleting a user who holds N bookings (issue 25, items 1 and 2), against real
processes: a fresh redis-server and the four services started by
bench/procs.py exactly as the images run them.

1. one user and `movies` movies (capacity 10,000 each) are created through
   the API; N confirmed bookings of that user, one seat each, spread over
   the movies, are written straight into Redis with the key layout
   booking-service and movie-service use (services/booking_ledger.py,
   services/movie_service.py): records, indexes, and the seats held at
   movie-service. Seeding 100k through the API would take minutes;
2. other users keep reading (their bookings list, a movie) and booking
   (POST /bookings/ on a movie of their own) through the api-gateway;
3. the user is deleted (DELETE /users/{id}), and the clock runs until
   - every booking is cancelled (booking-service's progress key for the
     deletion says `done`), and
   - every seat is back (each movie's available seats equal its capacity);
4. then it checks every one of the N bookings reads `cancelled` and the
   settle queue is empty.

Prints, and returns as a dict: the seeding time, the time to cancel and to
give every seat back, the release rate, and the other users' latency (p50,
p99, max) and status codes during the deletion. tests/services/
test_deletion_scale.py runs the same scenario and asserts its bounds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import secrets
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import redis

from bench import procs
from services.common.store import ID_ALPHABET, ID_LENGTH

CAPACITY = 10_000  # movie_service.MovieIn's maximum
OTHER_USERS = 4
SLOWLOG_US = 10_000  # Redis logs every command slower than this (10 ms) during the deletion


def new_id(kind: str) -> str:
    return f"{kind}_" + "".join(ID_ALPHABET[b & 31] for b in secrets.token_bytes(ID_LENGTH))


def seed_bookings(redis_url: str, user: dict[str, Any], movies: list[dict[str, Any]], n: int) -> list[str]:
    """N confirmed one-seat bookings of `user`, round-robin over `movies`,
    written with booking-service's and movie-service's key layout: the
    record, its four index entries, and the seat held at movie-service.
    The booking ids, in order."""
    r = redis.Redis.from_url(redis_url, decode_responses=True)
    try:
        base = int(r.incrby("bookings:seq", n)) - n
        ids = [new_id("b") for _ in range(n)]
        held: dict[str, int] = {m["id"]: 0 for m in movies}
        chunk = 5000
        for start in range(0, n, chunk):
            pipe = r.pipeline(transaction=False)
            by_movie: dict[str, dict[str, int]] = {}
            for i in range(start, min(n, start + chunk)):
                movie = movies[i % len(movies)]
                seq, bid, mid = base + i + 1, ids[i], movie["id"]
                record = {
                    "id": bid, "userId": user["id"], "movieId": mid, "seats": 1, "status": "confirmed",
                    "createdAt": "2026-12-06T00:00:00.000Z", "userName": user["name"], "movieTitle": movie["title"],
                }
                pipe.set(f"bookings:{bid}", json.dumps(record, separators=(",", ":")))
                for index in ("index", f"by-user:{user['id']}", f"by-movie:{mid}", f"by-pair:{user['id']}:{mid}"):
                    pipe.zadd(f"bookings:{index}", {bid: seq})
                by_movie.setdefault(mid, {})[bid] = 1
                held[mid] += 1
            for mid, rows in by_movie.items():
                pipe.hset(f"movies:{mid}:reservations", mapping=rows)
                pipe.decrby(f"movies:{mid}:seats", len(rows))
            pipe.execute()
        return ids
    finally:
        r.close()


@dataclass
class Latencies:
    samples: list[float] = field(default_factory=list)
    statuses: dict[int, int] = field(default_factory=dict)

    def add(self, seconds: float, status: int) -> None:
        self.samples.append(seconds)
        self.statuses[status] = self.statuses.get(status, 0) + 1

    def quantile(self, q: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@dataclass
class Result:
    bookings: int
    movies: int
    seed_s: float
    cancel_s: float | None
    release_s: float | None
    release_per_s: float | None
    others_requests: int
    others_p50_ms: float | None
    others_p99_ms: float | None
    others_max_ms: float | None
    others_statuses: dict[int, int]
    all_cancelled: bool
    settle_left: int
    slowest_redis_ms: float  # the longest single Redis command (script call) during the deletion (SLOWLOG)
    slowest_command: str
    redis_used_mb: float  # Redis' used_memory once the bookings are seeded

    def line(self) -> str:
        return (
            f"{self.bookings} bookings over {self.movies} movies: seeded in {self.seed_s:.1f} s; "
            f"all cancelled {fmt(self.cancel_s)} s and every seat back {fmt(self.release_s)} s after DELETE "
            f"({fmt(self.release_per_s, 0)} seats/s); other users' requests during it: {self.others_requests}, "
            f"p50 {fmt(self.others_p50_ms)} ms, p99 {fmt(self.others_p99_ms)} ms, max {fmt(self.others_max_ms)} ms, "
            f"statuses {self.others_statuses}; every booking cancelled: {self.all_cancelled}; "
            f"settle queue left: {self.settle_left}; longest single Redis command: "
            f"{self.slowest_redis_ms:.1f} ms ({self.slowest_command}); Redis used {self.redis_used_mb:.0f} MB after seeding"
        )


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


async def _others(http: aiohttp.ClientSession, base: str, users: list[dict], movie: dict, stop: asyncio.Event,
                  lat: Latencies) -> None:
    """Other users reading and booking until `stop` is set."""

    async def one(user: dict[str, Any], i: int) -> None:
        while not stop.is_set():
            for method, path, body in (
                ("GET", f"/bookings/?userId={user['id']}&limit=20", None),
                ("GET", f"/movies/{movie['id']}", None),
                ("POST", "/bookings/", {"userId": user["id"], "movieId": movie["id"], "seats": 1}),
            ):
                t = time.perf_counter()
                try:
                    async with http.request(method, base + path, json=body) as reply:
                        await reply.read()
                        status = reply.status
                except (aiohttp.ClientError, asyncio.TimeoutError):
                    status = 0
                lat.add(time.perf_counter() - t, status)
            await asyncio.sleep(0.02)

    await asyncio.gather(*(one(u, i) for i, u in enumerate(users)))


def _cancelled_everywhere(r: redis.Redis, ids: list[str]) -> bool:
    for start in range(0, len(ids), 5000):
        for raw in r.mget([f"bookings:{b}" for b in ids[start : start + 5000]]):
            if raw is None or json.loads(raw)["status"] != "cancelled":
                return False
    return True


async def scenario(urls: dict[str, str], redis_url: str, n: int, movies_n: int = 10, limit_s: float = 300.0) -> Result:
    """Run the deletion against running services. `urls`: base URLs for
    users, movies and bookings (the gateway's for all three, or each
    service's own)."""
    timeout = aiohttp.ClientTimeout(total=15)
    async with aiohttp.ClientSession(timeout=timeout) as http:

        async def post(kind: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
            async with http.post(urls[kind] + path, json=body) as reply:
                assert reply.status == 201, await reply.text()
                return await reply.json()

        tag = secrets.token_hex(4)
        user = await post("users", "/users/", {"name": "Many", "email": f"many-{tag}@example.com"})
        others = [await post("users", "/users/", {"name": f"Other{i}", "email": f"o{i}-{tag}@example.com"})
                  for i in range(OTHER_USERS)]
        movies = [await post("movies", "/movies/", {"title": f"Big {i}", "genre": "drama", "year": 2020,
                                                     "capacity": CAPACITY}) for i in range(movies_n)]
        theirs = await post("movies", "/movies/", {"title": "Theirs", "genre": "drama", "year": 2020,
                                                    "capacity": CAPACITY})
        t = time.monotonic()
        ids = await asyncio.to_thread(seed_bookings, redis_url, user, movies, n)
        seed_s = time.monotonic() - t

        r = redis.Redis.from_url(redis_url, decode_responses=True)
        used_mb = int(r.info("memory")["used_memory"]) / 1e6
        lat = Latencies()
        stop = asyncio.Event()
        load = asyncio.create_task(_others(http, urls["bookings"], others, theirs, stop, lat))
        await asyncio.sleep(1.0)  # the others' requests before the deletion are not counted
        lat.samples.clear()
        lat.statuses.clear()
        seats_keys = [f"movies:{m['id']}:seats" for m in movies]
        progress_key = f"bookings:forget:users:{user['id']}"
        r.config_set("slowlog-log-slower-than", SLOWLOG_US)
        r.config_set("slowlog-max-len", 1024)
        r.slowlog_reset()
        t0 = time.monotonic()
        async with http.delete(f"{urls['users']}/users/{user['id']}") as reply:
            assert reply.status == 204, await reply.text()
        cancel_s = release_s = None
        while time.monotonic() - t0 < limit_s and release_s is None:
            await asyncio.sleep(0.05)
            elapsed = time.monotonic() - t0
            if cancel_s is None and r.get(progress_key) == "done":
                cancel_s = elapsed
            if all(int(v or 0) == CAPACITY for v in r.mget(seats_keys)):
                release_s = elapsed
        stop.set()
        await load
        slow = r.slowlog_get(1024)
        slowest = max(slow, key=lambda e: e["duration"], default=None)
        all_cancelled = _cancelled_everywhere(r, ids)
        settle_left = int(r.zcard("bookings:settle"))
        r.close()
    ms = [s * 1000 for s in lat.samples]
    lat.samples = ms
    return Result(
        bookings=n, movies=movies_n, seed_s=seed_s, cancel_s=cancel_s, release_s=release_s,
        release_per_s=(n / release_s) if release_s else None, others_requests=len(ms),
        others_p50_ms=lat.quantile(0.5), others_p99_ms=lat.quantile(0.99), others_max_ms=max(ms) if ms else None,
        others_statuses=dict(sorted(lat.statuses.items())), all_cancelled=all_cancelled, settle_left=settle_left,
        slowest_redis_ms=(slowest["duration"] / 1000) if slowest else 0.0,
        slowest_command=_command_name(slowest) if slowest else f"none over {SLOWLOG_US / 1000:.0f} ms",
        redis_used_mb=used_mb,
    )


def _command_name(entry: dict[str, Any]) -> str:
    command = entry.get("command", "")
    if isinstance(command, bytes):
        command = command.decode(errors="replace")
    return " ".join(str(command).split()[:1])


def run(work_dir: Path, n: int, movies_n: int = 10, progress=print) -> Result:  # type: ignore[no-untyped-def]
    """Start redis-server and the four services, run the scenario through
    the api-gateway, stop them."""
    with procs.Stack(work_dir) as stack:
        gateway = stack.url("api-gateway")
        urls = {"users": gateway, "movies": gateway, "bookings": gateway}
        result = asyncio.run(scenario(urls, stack.redis_url, n, movies_n))
    progress(result.line())
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.deletion", description=__doc__.split("\n\n")[1])
    p.add_argument("--bookings", type=int, default=100_000)
    p.add_argument("--movies", type=int, default=10, help=f"movies the bookings spread over (capacity {CAPACITY} each)")
    p.add_argument("--json", type=Path, help="also write the figures here")
    args = p.parse_args(argv)
    if args.bookings > args.movies * CAPACITY:
        p.error(f"--bookings at most --movies x {CAPACITY}")
    with tempfile.TemporaryDirectory(prefix="bench-deletion-") as tmp:
        result = run(Path(tmp), args.bookings, args.movies)
    if args.json:
        args.json.write_text(json.dumps(asdict(result), indent=2) + "\n")


if __name__ == "__main__":
    main()
