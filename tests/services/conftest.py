"""Fixtures for the service tests: the three services as real uvicorn
servers on free ports, talking to each other over HTTP and to the session's
real redis-server."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import pytest
import redis

from services import booking_service, movie_service, user_service
from services.common.settings import Settings
from services.launcher import LiveServer, free_port
from services.redis_server import RedisServer


def poll(check: Callable[[], object], timeout: float = 15.0, interval: float = 0.1):  # type: ignore[no-untyped-def]
    """`check()` until it is truthy or `timeout` s have passed; its last result."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result or time.monotonic() > deadline:
            return result
        time.sleep(interval)


def settings(service: str, redis_url: str, **overrides: object) -> Settings:
    """Settings for a test app: cluster `test`, pod `<service>-0`."""
    values: dict = {"service": service, "redis_url": redis_url, "cluster": "test", "pod": f"{service}-0", "node": "n1"}
    values.update(overrides)
    return Settings(**values)


def dead_url() -> str:
    """A URL where nothing listens (connection refused)."""
    return f"http://127.0.0.1:{free_port()}"


@dataclass
class Stack:
    users: str
    movies: str
    bookings: str
    http: httpx.Client

    def user(self, name: str = "Kim", email: str | None = None) -> dict:
        email = email or f"{name.lower()}-{free_port()}@example.com"
        r = self.http.post(f"{self.users}/users/", json={"name": name, "email": email})
        assert r.status_code == 201, r.text
        return r.json()

    def movie(self, capacity: int = 100, title: str = "Parasite") -> dict:
        r = self.http.post(
            f"{self.movies}/movies/", json={"title": title, "genre": "drama", "year": 2019, "capacity": capacity}
        )
        assert r.status_code == 201, r.text
        return r.json()

    def book(self, user_id: str, movie_id: str, seats: int = 1, **kw: object) -> httpx.Response:
        return self.http.post(
            f"{self.bookings}/bookings/", json={"userId": user_id, "movieId": movie_id, "seats": seats}, **kw
        )

    def available(self, movie_id: str) -> int:
        r = self.http.get(f"{self.movies}/movies/{movie_id}")
        assert r.status_code == 200, r.text
        return r.json()["availableSeats"]

    def all_bookings(self, **params: str) -> list[dict]:
        r = self.http.get(f"{self.bookings}/bookings", params={"limit": "500", **params})
        assert r.status_code == 200, r.text
        assert r.json()["next"] is None
        return r.json()["items"]


def start_stack(
    redis_url: str, *, user_url: str | None = None, movie_url: str | None = None, **booking_overrides: object
) -> tuple[list[LiveServer], dict[str, str]]:
    """user-service and movie-service (unless their URLs are given, e.g. a
    dead URL or a stand-in) and booking-service pointing at them."""
    servers: list[LiveServer] = []
    if user_url is None:
        servers.append(LiveServer(user_service.create_app(settings("user-service", redis_url))).start())
        user_url = servers[-1].url
    if movie_url is None:
        servers.append(LiveServer(movie_service.create_app(settings("movie-service", redis_url))).start())
        movie_url = servers[-1].url
    peers = {"user-service": user_url, "movie-service": movie_url}
    booking = booking_service.create_app(settings("booking-service", redis_url, peers=peers, **booking_overrides))
    servers.append(LiveServer(booking).start())
    return servers, {"users": user_url, "movies": movie_url, "bookings": servers[-1].url}


@pytest.fixture(scope="session")
def session_stack(redis_server: RedisServer) -> Iterator[dict[str, str]]:
    servers, urls = start_stack(redis_server.url + "/0")
    yield urls
    for server in reversed(servers):
        server.stop()


@pytest.fixture
def stack(session_stack: dict[str, str], redis_url: str) -> Iterator[Stack]:
    """The three services on a flushed Redis, and an HTTP client."""
    assert redis_url.endswith("/0")  # the session stack uses database 0
    with httpx.Client(timeout=10, follow_redirects=False) as client:
        yield Stack(http=client, **session_stack)


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    yield client
    client.close()


@pytest.fixture
def private_redis(tmp_path) -> Iterator[RedisServer]:
    """A redis-server of the test's own, free to stop and restart."""
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.stop()
