"""movie-service v2 (canary, A/B lessons): the same module with
SERVICE_VERSION=v2 adds bookingRate to every movie answer and names its
version in X-Served-By and /info; a v1 client sees everything it knew."""

from __future__ import annotations

import httpx
import pytest

from services import catalog, movie_service
from services.movie_service import rate_percent
from tests.live import LiveServer
from tests.services.conftest import Stack, settings


@pytest.fixture
def movie_v2(session_stack: dict[str, str], redis_url: str):
    """movie-service v2 on the session stack's Redis: it sees v1's movies."""
    app = movie_service.create_app(settings("movie-service", redis_url, version=catalog.MOVIE_V2.version,
                                            pod="movie-service-v2-0"))
    with LiveServer(app) as server:
        yield server.url


def test_v2_adds_booking_rate_and_keeps_every_v1_field(stack: Stack, movie_v2: str) -> None:
    movie = stack.movie(capacity=8)
    user = stack.user()
    assert stack.book(user["id"], movie["id"], seats=2).status_code == 201
    v1 = stack.http.get(f"{stack.movies}/movies/{movie['id']}")
    v2 = stack.http.get(f"{movie_v2}/movies/{movie['id']}")
    assert v1.status_code == v2.status_code == 200
    assert "bookingRate" not in v1.json()
    assert v2.json() == {**v1.json(), "bookingRate": 25}  # 2 of 8 seats booked
    listed = stack.http.get(f"{movie_v2}/movies/").json()["items"]
    assert [m["bookingRate"] for m in listed] == [25]
    created = stack.http.post(f"{movie_v2}/movies/", json={"title": "괴물", "genre": "SF", "year": 2006})
    assert created.status_code == 201 and created.json()["bookingRate"] == 0
    # Reservations (what booking-service reads) are the same in both versions.
    held = stack.http.post(f"{movie_v2}/internal/movies/{movie['id']}/reservations",
                           json={"bookingId": "b_v2test", "seats": 1})
    assert held.status_code == 201 and set(held.json()) == {"movieId", "title", "bookingId", "seats", "availableSeats"}


def test_v2_says_who_it_is(stack: Stack, movie_v2: str) -> None:
    r = httpx.get(f"{movie_v2}/info")
    assert r.json()["version"] == "v2"
    assert r.headers["x-served-by"] == "movie-service@test/movie-service-v2-0 (v2)"
    assert httpx.get(f"{stack.movies}/info").headers["x-served-by"] == "movie-service@test/movie-service-0 (v1)"


def test_v2_is_in_the_openapi_document(movie_v2: str) -> None:
    schema = httpx.get(f"{movie_v2}/openapi.json").json()["components"]["schemas"]["Movie"]
    assert "bookingRate" in schema["properties"] and "bookingRate" not in schema.get("required", [])


@pytest.mark.parametrize("capacity,available,rate", [
    (100, 100, 0), (100, 0, 100), (8, 6, 25), (3, 2, 33), (3, 1, 67), (10, 12, 0), (10, -5, 100), (0, 0, 0),
])
def test_rate_percent(capacity: int, available: int, rate: int) -> None:
    assert rate_percent(capacity, available) == rate


def test_only_v2_shows_the_rate() -> None:
    assert movie_service.shows_booking_rate("v2")
    assert not any(movie_service.shows_booking_rate(v) for v in ("v1", "2024/11", "", "V2"))


def test_version_in_x_served_by_is_header_safe() -> None:
    s = settings("movie-service", "redis://x", version="Release 2024/11, (b)")
    assert s.served_by == "movie-service@test/movie-service-0 (Release-2024/11---b-)"
