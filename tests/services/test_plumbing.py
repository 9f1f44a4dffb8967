"""What every service shares: health, readiness, /info, X-Served-By,
metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from services import booking_service, movie_service, user_service
from services.common.settings import Settings
from tests.live import LiveServer
from tests.services.conftest import Stack

MODULES = {"user-service": user_service, "movie-service": movie_service, "booking-service": booking_service}


@pytest.mark.parametrize("service", list(MODULES))
def test_info_and_served_by_come_from_the_environment(
    service: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {
        "CLUSTER_NAME": "ctx2",
        "POD_NAME": f"{service}-7d9f-abc12",
        "NODE_NAME": "worker-3",
        "SERVICE_VERSION": "v2",
        "REDIS_URL": redis_url,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with LiveServer(MODULES[service].create_app()) as server:  # settings from the environment
        r = httpx.get(server.url + "/info")
        assert r.status_code == 200
        assert r.json() == {
            "service": service,
            "version": "v2",
            "cluster": "ctx2",
            "pod": f"{service}-7d9f-abc12",
            "node": "worker-3",
        }
        expected = f"{service}@ctx2/{service}-7d9f-abc12 (v2)"
        for path in ("/info", "/healthz", "/readyz", "/nope", "/metrics"):
            assert httpx.get(server.url + path).headers["x-served-by"] == expected, path
        assert httpx.get(server.url + "/healthz").json()["status"] == "ok"
        ready = httpx.get(server.url + "/readyz")
        assert ready.status_code == 200 and ready.json()["checks"] == {"redis": "ok"}


def test_served_by_on_errors_and_posts(stack: Stack) -> None:
    r = stack.http.post(f"{stack.users}/users", content=b"[]")
    assert r.status_code == 400 and r.headers["x-served-by"] == "user-service@test/user-service-0 (v1)"
    r = stack.book("u_aaaaaaaaaa", "m_aaaaaaaaaa")
    assert r.status_code == 404 and r.headers["x-served-by"] == "booking-service@test/booking-service-0 (v1)"


def test_metrics_count_requests_by_route_and_status(stack: Stack) -> None:
    user = stack.user()
    stack.http.get(f"{stack.users}/users/{user['id']}")
    stack.http.get(f"{stack.users}/users/u_aaaaaaaaaa")
    text = stack.http.get(f"{stack.users}/metrics").text
    lines = text.splitlines()

    def value(prefix: str) -> float:
        matches = [line for line in lines if line.startswith(prefix)]
        assert matches, f"no series {prefix} in /metrics"
        return float(matches[0].rsplit(" ", 1)[1])

    # The route template, not the id, labels the series.
    assert value('http_requests_total{method="GET",route="/users/{id}",service="user-service",status="200"}') >= 1
    assert value('http_requests_total{method="GET",route="/users/{id}",service="user-service",status="404"}') >= 1
    assert value('http_requests_total{method="POST",route="/users/",service="user-service",status="201"}') >= 1
    assert "http_request_duration_seconds_bucket" in text
    assert user["id"] not in text


@pytest.mark.parametrize(
    "base, paths, schemas",
    [
        ("users", {"/users", "/users/", "/users/{id}"}, {"UserIn", "User"}),
        ("movies", {"/movies/", "/movies/{id}", "/internal/movies/{id}/reservations"}, {"MovieIn", "Movie", "ReservationIn"}),
        ("bookings", {"/bookings/", "/bookings/{id}"}, {"BookingIn", "Booking"}),
    ],
)
def test_openapi_lists_paths_and_schemas(stack: Stack, base: str, paths: set, schemas: set) -> None:
    doc = stack.http.get(getattr(stack, base) + "/openapi.json").json()
    assert paths <= set(doc["paths"])
    assert schemas <= set(doc["components"]["schemas"])
    collection = doc["paths"][f"/{base}/"]
    assert "201" in {str(k) for k in collection["post"]["responses"]}
    assert "200" in {str(k) for k in collection["get"]["responses"]}


def test_settings_from_env_reads_peer_urls() -> None:
    s = Settings.from_env("booking-service", {"USER_SERVICE_URL": "http://u:1/", "MOVIE_SERVICE_URL": "http://m:2"})
    assert s.peers == {"user-service": "http://u:1", "movie-service": "http://m:2"}
