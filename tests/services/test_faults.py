"""Faults: Redis stopped, a peer down or slow, and trace headers on the
calls between services. Each test builds the servers it breaks."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services import booking_service, movie_service, user_service
from services.common.tracing import TRACE_HEADERS
from services.launcher import LiveServer
from services.redis_server import RedisServer
from tests.services.conftest import Stack, dead_url, poll, settings, start_stack


def test_redis_stopped_gives_503_and_recovers_with_data(private_redis: RedisServer) -> None:
    url = private_redis.url + "/0"
    with LiveServer(user_service.create_app(settings("user-service", url, redis_timeout=0.5))) as users, \
            LiveServer(movie_service.create_app(settings("movie-service", url, redis_timeout=0.5))) as movies:
        http = httpx.Client(timeout=10)
        user = http.post(users.url + "/users", json={"name": "이서연", "email": "seo@example.com"}).json()
        movie = http.post(movies.url + "/movies", json={"title": "t", "genre": "g", "year": 2000}).json()

        private_redis.stop()
        for r in (
            http.post(users.url + "/users", json={"name": "x", "email": "x@example.com"}),
            http.get(users.url + f"/users/{user['id']}"),
            http.get(users.url + "/users"),
            http.get(movies.url + f"/movies/{movie['id']}"),
        ):
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "redis_unavailable"
            assert "Traceback" not in r.text
        ready = http.get(users.url + "/readyz")
        assert ready.status_code == 503 and ready.json()["error"]["code"] == "not_ready"
        assert http.get(users.url + "/healthz").status_code == 200  # alive, just not ready

        private_redis.start()  # same data directory and port
        assert poll(lambda: http.get(users.url + "/readyz").status_code == 200, 10.0, 0.05)
        assert poll(lambda: http.get(users.url + f"/users/{user['id']}").status_code == 200, 10.0, 0.05)
        assert http.get(users.url + f"/users/{user['id']}").json() == user  # nothing lost (AOF)
        assert http.get(movies.url + f"/movies/{movie['id']}").json() == movie
        r = http.post(users.url + "/users", json={"name": "x", "email": "x@example.com"})
        assert r.status_code == 201
        dup = http.post(users.url + "/users", json={"name": "y", "email": "seo@example.com"})
        assert dup.status_code == 409  # the unique-email index survived too
        http.close()


@pytest.mark.parametrize("down", ["user-service", "movie-service"])
def test_peer_down_gives_503_naming_it_and_records_nothing(redis_url: str, down: str) -> None:
    # The real service runs too, to create the data and check nothing changed.
    live_users = LiveServer(user_service.create_app(settings("user-service", redis_url))).start()
    live_movies = LiveServer(movie_service.create_app(settings("movie-service", redis_url))).start()
    urls = {"user_url": live_users.url, "movie_url": live_movies.url}
    urls["user_url" if down == "user-service" else "movie_url"] = dead_url()
    servers, stack_urls = start_stack(redis_url, **urls)
    try:
        with httpx.Client(timeout=10) as http:
            stack = Stack(http=http, users=live_users.url, movies=live_movies.url, bookings=stack_urls["bookings"])
            user, movie = stack.user()["id"], stack.movie(capacity=5)["id"]
            for headers in ({}, {"Idempotency-Key": "during-outage"}):
                r = stack.book(user, movie, 2, headers=headers)
                assert r.status_code == 503, r.text
                assert r.json()["error"]["code"] == "peer_unavailable"
                assert down in r.json()["error"]["message"]
            assert stack.all_bookings() == []
            assert stack.available(movie) == 5
    finally:
        for s in (*servers, live_users, live_movies):
            s.stop()


def test_booking_store_down_after_reserving_releases_the_seats(
    stack: Stack, private_redis: RedisServer
) -> None:
    """booking-service's own Redis fails after movie-service reserved the
    seats: the reservation is compensated, so nothing is left behind."""
    user, movie = stack.user()["id"], stack.movie(capacity=5)["id"]
    peers = {"user-service": stack.users, "movie-service": stack.movies}
    app = booking_service.create_app(
        settings("booking-service", private_redis.url + "/0", peers=peers, redis_timeout=0.5)
    )
    with LiveServer(app) as bookings:
        private_redis.stop()
        r = httpx.post(bookings.url + "/bookings", json={"userId": user, "movieId": movie, "seats": 3}, timeout=10)
        assert r.status_code == 503 and r.json()["error"]["code"] == "redis_unavailable"
        assert stack.available(movie) == 5


def test_movie_service_down_during_cancel_records_it_and_frees_seats_later(redis_url: str) -> None:
    """The cancel stands (202, status cancelled) even when movie-service is
    down; the reconciler gives the seats back once it answers again."""
    servers, urls = start_stack(redis_url, reconcile_interval=0.2)
    try:
        with httpx.Client(timeout=10) as http:
            stack = Stack(http=http, **urls)
            user, movie = stack.user()["id"], stack.movie(capacity=5)["id"]
            booking = stack.book(user, movie, 2).json()
            port = servers[1].port
            servers[1].stop()  # movie-service
            r = http.delete(f"{stack.bookings}/bookings/{booking['id']}")
            assert r.status_code == 202, r.text
            assert r.json()["status"] == "cancelled"
            assert http.get(f"{stack.bookings}/bookings/{booking['id']}").json()["status"] == "cancelled"
            assert http.delete(f"{stack.bookings}/bookings/{booking['id']}").status_code == 204  # repeat: no-op
            servers[1] = LiveServer(movie_service.create_app(settings("movie-service", redis_url)), port=port).start()
            assert poll(lambda: stack.available(movie) == 5, 10.0, 0.05)
            time.sleep(0.5)  # more passes: the seats came back once, not twice
            assert stack.available(movie) == 5
    finally:
        for s in servers:
            s.stop()


class StandIn:
    """A tiny peer that records the headers it gets and can answer slowly."""

    def __init__(self, delay: float = 0.0) -> None:
        self.seen: list[dict[str, str]] = []
        self.calls: list[tuple[str, str]] = []
        self.delay = delay

    def app(self) -> Starlette:
        async def user(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            self.calls.append((request.method, request.url.path))
            await asyncio.sleep(self.delay)
            return JSONResponse({"id": request.path_params["id"]})

        async def reserve(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            self.calls.append((request.method, request.url.path))
            await asyncio.sleep(self.delay)
            body = await request.json()
            return JSONResponse({**body, "availableSeats": 1}, status_code=201)

        async def release(request: Request) -> Response:
            self.seen.append(dict(request.headers))
            self.calls.append((request.method, request.url.path))
            return Response(status_code=204)

        return Starlette(
            routes=[
                Route("/users/{id}", user, methods=["GET"]),
                Route("/internal/movies/{id}/reservations", reserve, methods=["POST"]),
                Route("/internal/movies/{id}/reservations/{booking}", release, methods=["DELETE"]),
            ]
        )


def test_trace_headers_are_forwarded_to_both_peers(redis_url: str) -> None:
    peer = StandIn()
    with LiveServer(peer.app()) as fake:
        servers, urls = start_stack(redis_url, user_url=fake.url, movie_url=fake.url)
        try:
            trace = {name: f"value-of-{name}" for name in TRACE_HEADERS}
            trace["traceparent"] = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
            r = httpx.post(
                urls["bookings"] + "/bookings",
                json={"userId": "u1", "movieId": "m1", "seats": 1},
                headers={**trace, "authorization": "Bearer secret", "cookie": "a=b"},
            )
            assert r.status_code == 201, r.text
            r2 = httpx.delete(urls["bookings"] + f"/bookings/{r.json()['id']}", headers=trace)
            assert r2.status_code == 204
        finally:
            for s in servers:
                s.stop()
    assert len(peer.seen) == 4  # user check, reservation, user check after the confirm (issue 25), release
    for headers in peer.seen:
        for name, value in trace.items():
            assert headers.get(name) == value, name
        assert "authorization" not in headers and "cookie" not in headers


def test_slow_peer_gives_504_and_leaves_nothing(private_redis: RedisServer) -> None:
    # A Redis of its own: the session stack's reconciler would otherwise
    # settle this booking through the real movie-service, not the stand-in.
    redis_url = private_redis.url + "/0"
    slow = StandIn(delay=2.0)
    with LiveServer(slow.app()) as fake, \
            LiveServer(user_service.create_app(settings("user-service", redis_url))) as users:
        servers, urls = start_stack(redis_url, user_url=users.url, movie_url=fake.url, peer_timeout=0.3)
        http = httpx.Client(timeout=10)
        stack = Stack(http=http, users=users.url, movies=fake.url, bookings=urls["bookings"])
        try:
            user = stack.user()["id"]
            started = time.monotonic()
            r = httpx.post(urls["bookings"] + "/bookings", json={"userId": user, "movieId": "m1", "seats": 1})
            assert r.status_code == 504, r.text
            assert r.json()["error"]["code"] == "peer_timeout" and "movie-service" in r.json()["error"]["message"]
            assert time.monotonic() - started < 1.5
            assert stack.all_bookings() == []
            # The reservation may have arrived late: booking-service released it.
            (reserve,) = [path for method, path in slow.calls if method == "POST"]
            assert reserve == "/internal/movies/m1/reservations"
            released = lambda: any(m == "DELETE" and p.startswith("/internal/movies/m1/reservations/b_") for m, p in slow.calls)  # noqa: E731
            assert poll(released, 10.0, 0.05)
        finally:
            http.close()
            for s in servers:
                s.stop()


def test_peer_5xx_becomes_503_naming_it(stack: Stack, redis_url: str) -> None:
    async def broken(request: Request) -> Response:
        return JSONResponse({"error": {"code": "redis_unavailable", "message": "x"}}, status_code=503)

    app = Starlette(routes=[Route("/users/{id}", broken)])
    with LiveServer(app) as fake:
        servers, urls = start_stack(redis_url, user_url=fake.url, movie_url=stack.movies)
        try:
            movie = stack.movie(capacity=3)["id"]
            r = httpx.post(urls["bookings"] + "/bookings", json={"userId": "u1", "movieId": movie, "seats": 1})
            assert r.status_code == 503 and "user-service" in r.json()["error"]["message"]
            assert stack.available(movie) == 3
        finally:
            for s in servers:
                s.stop()


def test_redis_out_of_memory_gives_503_and_loses_nothing(private_redis: RedisServer) -> None:
    """A Redis that answers but refuses writes (maxmemory reached) is an
    outage to the service: 503 JSON, not a 500, and reads keep working."""
    import redis as redis_lib

    url = private_redis.url + "/0"
    admin = redis_lib.Redis.from_url(url)
    with LiveServer(user_service.create_app(settings("user-service", url))) as users:
        http = httpx.Client(timeout=10)
        user = http.post(users.url + "/users", json={"name": "박지훈", "email": "park@example.com"}).json()
        admin.config_set("maxmemory-policy", "noeviction")
        admin.config_set("maxmemory", 1)
        try:
            r = http.post(users.url + "/users", json={"name": "y", "email": "y@example.com"})
            assert r.status_code == 503, r.text
            assert r.json()["error"]["code"] == "store_full"  # issue 25: says the store is full, not unreachable
            assert http.get(users.url + f"/users/{user['id']}").json() == user
        finally:
            admin.config_set("maxmemory", 0)
        r = http.post(users.url + "/users", json={"name": "y", "email": "y@example.com"})
        assert r.status_code == 201, r.text
        assert len(http.get(users.url + "/users").json()["items"]) == 2
    admin.close()


def test_a_full_redis_gives_a_clear_503_and_keeps_every_record(private_redis: RedisServer) -> None:
    """Issue 25, item 7: Redis had no maxmemory and grew without bound. It
    now runs with catalog.REDIS's maxmemory and `noeviction` (the pod and
    the local run alike): past the limit writes are refused, the services
    answer 503 store_full, and nothing stored is ever evicted."""
    import redis as redis_py

    from services import catalog

    url = private_redis.url + "/0"
    admin = redis_py.Redis.from_url(url, decode_responses=True)
    assert admin.config_get("maxmemory-policy") == {"maxmemory-policy": catalog.REDIS.maxmemory_policy}
    assert admin.config_get("maxmemory")["maxmemory"] != "0"
    with LiveServer(user_service.create_app(settings("user-service", url))) as users, httpx.Client(timeout=10) as http:
        made = []
        admin.config_set("maxmemory", int(admin.info("memory")["used_memory"]) + 200_000)  # a little room left
        for i in range(5000):
            r = http.post(users.url + "/users/", json={"name": "x" * 100, "email": f"u{i}@example.com"})
            if r.status_code != 201:
                break
            made.append(r.json())
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "store_full" and "full" in r.json()["error"]["message"]
        assert len(made) > 10
        # Reads go on, and every record written before is still there.
        for user in made[:: max(1, len(made) // 20)]:
            assert http.get(f"{users.url}/users/{user['id']}").json() == user
    admin.close()
