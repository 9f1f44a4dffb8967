"""Test data for the benchmark: created through the services' real POST
endpoints (bounded concurrency, bounded time, progress lines), and read back
for the checks."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import Any

import httpx

Progress = Callable[[str], None]


class SeedError(RuntimeError):
    pass


async def _post_many(
    base_url: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int,
    deadline: float,
    progress: Progress | None,
    label: str,
) -> list[dict[str, Any]]:
    results: list[dict[str, Any] | None] = [None] * len(bodies)
    next_index = 0
    done = 0
    started = time.monotonic()
    last_report = started
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, limits=limits, timeout=10.0) as client:

        async def worker() -> None:
            nonlocal next_index, done, last_report
            while next_index < len(bodies):
                if time.monotonic() > deadline:
                    raise SeedError(f"{label}: gave up after {time.monotonic() - started:.0f}s with {done}/{len(bodies)} created")
                i = next_index
                next_index += 1
                r = await client.post(path, json=bodies[i])
                if r.status_code != 201:
                    raise SeedError(f"{label}: POST {path} {bodies[i]} answered {r.status_code}: {r.text[:300]}")
                results[i] = r.json()
                done += 1
                now = time.monotonic()
                if progress and now - last_report >= 5:
                    last_report = now
                    progress(f"  {label}: {done}/{len(bodies)} ({done / (now - started):.0f}/s)")

        await asyncio.gather(*(worker() for _ in range(max(1, min(concurrency, len(bodies))))))
    return [r for r in results if r is not None]


def post_many(
    base_url: str,
    path: str,
    bodies: Sequence[dict[str, Any]],
    *,
    concurrency: int = 16,
    timeout: float = 300.0,
    progress: Progress | None = None,
    label: str = "records",
) -> list[dict[str, Any]]:
    """POST each body (201 expected); the created records, in order."""
    if not bodies:
        return []
    deadline = time.monotonic() + timeout
    return asyncio.run(
        _post_many(base_url, path, bodies, concurrency=concurrency, deadline=deadline, progress=progress, label=label)
    )


def user_bodies(start: int, count: int, tag: str) -> list[dict[str, Any]]:
    return [{"name": f"Bench User {i}", "email": f"bench-{tag}-{i}@example.com"} for i in range(start, start + count)]


def movie_bodies(start: int, count: int, capacity: int) -> list[dict[str, Any]]:
    genres = ("drama", "comedy", "action", "documentary")
    return [
        {"title": f"Bench Movie {i}", "genre": genres[i % len(genres)], "year": 1950 + i % 75, "capacity": capacity}
        for i in range(start, start + count)
    ]


def get_json(base_url: str, path: str, params: dict[str, Any] | None = None) -> tuple[int, Any]:
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        r = client.get(path, params=params)
        try:
            return r.status_code, r.json()
        except ValueError:
            return r.status_code, None


def list_all(base_url: str, path: str, params: dict[str, Any], *, max_pages: int = 1000) -> list[dict[str, Any]] | None:
    """Every item of a paginated list ({"items", "next"}), following `cursor`;
    None when the endpoint does not answer 200."""
    items: list[dict[str, Any]] = []
    cursor: str | None = None
    with httpx.Client(base_url=base_url, timeout=10.0) as client:
        for _ in range(max_pages):
            q = dict(params)
            if cursor:
                q["cursor"] = cursor
            r = client.get(path, params=q)
            if r.status_code != 200:
                return None
            body = r.json()
            items.extend(body.get("items", []))
            cursor = body.get("next")
            if not cursor:
                return items
    raise SeedError(f"{path}: more than {max_pages} pages")


# -- bulk load through movie-service's own storage code ----------------------
async def _bulk_movies(redis_url: str, start: int, count: int, *, concurrency: int, deadline: float, progress: Progress | None) -> int:
    """Create movies exactly as POST /movies/ does (MovieIn validation, the
    record shape, Store.create with the seats key), minus HTTP: the same
    keys and index entries, many writes in flight at once."""
    from services import movie_service
    from services.common.redis import Redis
    from services.common.store import Store

    client = Redis(redis_url, 30.0)  # the services' client: many writes in flight on one connection
    movies = movie_service.Movies(Store(client, "movies", "m"))
    bodies = movie_bodies(start, count, 100)
    done = 0
    started = last = time.monotonic()

    async def one(body: dict[str, Any]) -> None:
        movie = movie_service.MovieIn.model_validate(body)
        movie_id = movies.store.new_id()
        record = {"id": movie_id, **movie.model_dump()}
        await movies.store.create(movie_id, record, also_set={movies.seats_key(movie_id): movie.capacity})

    try:
        for i in range(0, count, concurrency):
            if time.monotonic() > deadline:
                raise SeedError(f"bulk load: gave up after {time.monotonic() - started:.0f}s with {done}/{count}")
            chunk = bodies[i : i + concurrency]
            await asyncio.gather(*(one(b) for b in chunk))
            done += len(chunk)
            now = time.monotonic()
            if progress and now - last >= 5:
                last = now
                progress(f"  movies (bulk): {done}/{count} ({done / (now - started):.0f}/s)")
    finally:
        await client.aclose()
    return done


def bulk_movies(redis_url: str, start: int, count: int, *, concurrency: int = 64, timeout: float = 300.0, progress: Progress | None = None) -> int:
    return asyncio.run(
        _bulk_movies(redis_url, start, count, concurrency=concurrency, deadline=time.monotonic() + timeout, progress=progress)
    )
