"""What every service shares: health, readiness, /info, X-Served-By,
metrics and the OpenAPI document."""

from __future__ import annotations

import httpx
import pytest

from services import booking_service, movie_service, user_service
from services.common.settings import Settings
from services.launcher import LiveServer
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


def test_body_limit_message_follows_the_setting(redis_url: str) -> None:
    """The 413 names the configured limit (Settings.max_body_bytes), both when
    the app's own limit refuses a body and when Starlette raises a 413."""
    from starlette.exceptions import HTTPException
    from starlette.routing import Route

    from services.common.app import build_app

    async def refuse(request):
        raise HTTPException(413)

    settings = Settings(service="user-service", redis_url=redis_url, max_body_bytes=2048)
    with LiveServer(build_app(settings, [Route("/refuse", refuse, methods=["POST"])])) as server:
        big = httpx.post(server.url + "/refuse", content=b"x" * 3000)
        assert big.status_code == 413 and big.json()["error"]["message"] == "request body is larger than 2 KiB"
        raised = httpx.post(server.url + "/refuse", content=b"x")
        assert raised.status_code == 413 and raised.json()["error"]["message"] == "request body is larger than 2 KiB"


@pytest.mark.parametrize("service", ["user-service", "movie-service", "booking-service"])
def test_only_a_service_that_calls_others_gets_a_peer_client(service: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Dependencies are built by each service for what it does: user-service
    and movie-service call no one and hold no HTTP client (pool)."""
    import importlib

    from services import catalog
    from services.common import peers

    made: list[peers.HttpClient] = []
    real_init = peers.HttpClient.__init__

    def counting_init(self: peers.HttpClient, *args: object, **kwargs: object) -> None:
        made.append(self)
        real_init(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(peers.HttpClient, "__init__", counting_init)
    spec = catalog.SERVICES[service]
    importlib.import_module(spec.module).create_app(Settings(service=service))
    assert len(made) == (1 if spec.calls else 0)


def test_new_ids_are_well_formed_distinct_and_use_every_symbol() -> None:
    from services.common.redis import Redis
    from services.common.store import ID_ALPHABET, ID_LENGTH, Store

    store = Store(Redis("redis://127.0.0.1:1/0", 1.0), "movies", "m")  # never connects: ids need no Redis
    ids = [store.new_id() for _ in range(2_000)]
    assert all(store.is_id(i) and len(i) == len("m_") + ID_LENGTH for i in ids)
    assert len(set(ids)) == len(ids)
    assert set("".join(i[2:] for i in ids)) == set(ID_ALPHABET)  # 20,000 draws reach all 32 symbols


def test_a_service_settles_the_garbage_collector_before_serving(redis_url: str) -> None:
    """Start-up objects frozen, young generation collected every 10,000
    allocations (services/common/app.py: settle_garbage_collector; the
    figures are in bench/findings.md)."""
    import gc

    before = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, 10, 10)
    try:
        app = movie_service.create_app(Settings(service="movie-service", redis_url=redis_url))
        assert gc.get_freeze_count() == 0  # building the app is not enough: serving is
        with LiveServer(app) as server:
            assert httpx.get(f"{server.url}/healthz").status_code == 200
            assert gc.get_threshold() == (10_000, 10, 10)
            assert gc.get_freeze_count() > 10_000
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
