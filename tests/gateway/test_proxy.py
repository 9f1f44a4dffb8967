"""The gateway's proxy with real uvicorn backends (stand-ins that echo what
reached them): routing, pass-through both ways, and backends that are down
or slow."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from services import catalog
from services.api_gateway import create_app
from services.common.settings import Settings
from services.launcher import LiveServer, free_port
from tests.gateway.standins import echo_backend

TIMEOUT = 1.0


def dead_url() -> str:
    port = free_port()
    with socket.socket() as s:
        assert s.connect_ex(("127.0.0.1", port)) != 0
    return f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def backends() -> Iterator[dict[str, LiveServer]]:
    servers = {s.name: LiveServer(echo_backend(s.name)).start() for s in catalog.ROUTED.values()}
    yield servers
    for server in servers.values():
        server.stop()


@pytest.fixture(scope="module")
def gateway(backends: dict[str, LiveServer]) -> Iterator[LiveServer]:
    settings = Settings(
        service="api-gateway",
        cluster="ctx1",
        pod="gw-1",
        peers={name: server.url for name, server in backends.items()},
        peer_timeout=TIMEOUT,
    )
    with LiveServer(create_app(settings)) as server:
        yield server


@pytest.fixture(scope="module")
def client(gateway: LiveServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=gateway.url, timeout=10) as c:
        yield c


@pytest.mark.parametrize("path,service", [
    ("/users", "user-service"), ("/users/", "user-service"), ("/users/u-1", "user-service"),
    ("/movies", "movie-service"), ("/movies/", "movie-service"), ("/movies/m-1", "movie-service"),
    ("/bookings", "booking-service"), ("/bookings/", "booking-service"), ("/bookings/b-1", "booking-service"),
])
def test_routes_each_prefix_without_redirects(client: httpx.Client, path: str, service: str) -> None:
    r = client.get(path)
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["service"] == service and seen["path"] == path


def test_request_passes_through(client: httpx.Client) -> None:
    body = json.dumps({"name": "김민수", "email": "minsu@example.com"}, ensure_ascii=False).encode()
    headers = {
        "content-type": "application/json; charset=utf-8",
        "accept": "application/json",
        "idempotency-key": "idem-123",
        "x-request-id": "req-42",
        "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "x-b3-traceid": "463ac35c9f6413ad",
        "x-b3-spanid": "a2fb4a1d1a96d312",
        "x-b3-sampled": "1",
        "connection": "keep-alive, x-drop-me",
        "x-drop-me": "hop-by-hop because Connection names it",
        "keep-alive": "timeout=5",
    }
    r = client.post("/bookings/?userId=u%201&movieId=m-2&x=%ED%95%9C", content=body, headers=headers)
    assert r.status_code == 201
    seen = r.json()
    assert seen["method"] == "POST"
    assert seen["query"] == "userId=u%201&movieId=m-2&x=%ED%95%9C"
    assert seen["body"] == body.decode()
    got = {}
    for k, v in seen["headers"]:
        got.setdefault(k, []).append(v)
    for name in ("content-type", "accept", "idempotency-key", "x-request-id", "traceparent", "x-b3-traceid",
                 "x-b3-spanid", "x-b3-sampled"):
        assert got[name] == [headers[name]], name
    assert "x-drop-me" not in got and "keep-alive" not in got
    # Host is the backend's own; content-length matches the body.
    assert got["host"] == [client.base_url.host + ":" + got["host"][0].split(":")[1]]
    assert got["host"][0] != client.base_url.netloc.decode()
    assert got["content-length"] == [str(len(body))]


@pytest.mark.parametrize("chunked", [False, True])
def test_a_body_on_any_method_is_forwarded(client: httpx.Client, chunked: bool) -> None:
    """The proxy skips reading a body only when the request has none (no
    Content-Length, no Transfer-Encoding); a GET that carries one still
    forwards it, whether it is framed by length or chunked."""
    body = b'{"note": "a body on a GET"}'
    r = client.request("GET", "/movies/m-1", content=iter([body]) if chunked else body)
    assert r.status_code == 200, r.text
    assert r.json()["body"] == body.decode()
    r = client.get("/movies/m-1")
    assert r.json()["body"] == "" and r.json()["method"] == "GET"


def test_percent_encoded_path_is_kept(client: httpx.Client) -> None:
    r = client.get("/movies/%EC%98%81%ED%99%94%2Fx")
    assert r.json()["raw_path"] == "/movies/%EC%98%81%ED%99%94%2Fx"


def test_response_passes_through_with_both_served_by(client: httpx.Client) -> None:
    r = client.get("/movies/")
    assert r.headers["x-backend-extra"] == "kept"
    assert r.headers["set-cookie"] == "a=1"
    served = r.headers.get_list("x-served-by")
    assert served == ["movie-service@ctx9/movie-service-standin (v1)", "api-gateway@ctx1/gw-1 (v1)"]
    assert int(r.headers["content-length"]) == len(r.content)
    assert len(r.headers.get_list("date")) == 1 and len(r.headers.get_list("server")) == 1


def test_no_cookie_is_kept_between_users(gateway: LiveServer) -> None:
    # User A's answer sets a cookie; user B (a fresh client, no cookie jar of
    # its own to blame) must not have it sent on their behalf.
    assert httpx.get(gateway.url + "/movies/", timeout=10).headers["set-cookie"] == "a=1"
    seen = httpx.get(gateway.url + "/movies/", timeout=10).json()
    assert "cookie" not in {k for k, _ in seen["headers"]}


@pytest.mark.parametrize("status", [400, 404, 409, 422, 503])
def test_error_answers_pass_through_unchanged(client: httpx.Client, status: int) -> None:
    r = client.post("/users/?status=%d" % status, json={})
    assert r.status_code == status
    assert r.json() == {"error": {"code": "conflict", "message": f"user-service says no ({status})"}}
    assert r.headers["x-backend-extra"] == "kept"


def test_delete_204_and_head(client: httpx.Client) -> None:
    r = client.delete("/bookings/b-1")
    assert r.status_code == 204 and r.content == b""
    r = client.head("/users/")
    assert r.status_code == 200 and r.content == b""


def test_slow_backend_gives_504_within_timeout(client: httpx.Client) -> None:
    start = time.perf_counter()
    r = client.get("/movies/?sleep=2.5")
    elapsed = time.perf_counter() - start
    assert r.status_code == 504
    err = r.json()["error"]
    assert err["code"] == "peer_timeout" and err["peer"] == "movie-service"
    assert "movie-service" in err["message"]
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 1.0


def test_trickling_body_gives_504_too(client: httpx.Client) -> None:
    start = time.perf_counter()
    r = client.get("/users/trickle")
    assert r.status_code == 504
    assert time.perf_counter() - start < TIMEOUT + 1.0


def test_backend_down_gives_503_naming_it(backends: dict[str, LiveServer]) -> None:
    peers = {name: s.url for name, s in backends.items()}
    peers["booking-service"] = dead_url()
    settings = Settings(service="api-gateway", peers=peers, peer_timeout=TIMEOUT)
    with LiveServer(create_app(settings)) as gw:
        start = time.perf_counter()
        r = httpx.post(gw.url + "/bookings/", json={"userId": "u", "movieId": "m", "seats": 1}, timeout=10)
        assert time.perf_counter() - start < TIMEOUT + 1.0
        assert r.status_code == 503
        err = r.json()["error"]
        assert err["code"] == "peer_unavailable" and err["peer"] == "booking-service"
        assert "booking-service" in err["message"]
        # The other routes still work.
        assert httpx.get(gw.url + "/users/", timeout=10).status_code == 200


def test_gateway_plumbing_and_ui(client: httpx.Client) -> None:
    assert client.get("/healthz").json()["service"] == "api-gateway"
    assert client.get("/readyz").status_code == 200
    assert client.get("/info").json()["pod"] == "gw-1"
    assert "http_requests_total" in client.get("/metrics").text
    assert client.get("/openapi.json").status_code == 200
    r = client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert "<html" in r.text.lower()
    for name in catalog.UI_FILES:
        assert client.get("/" + name).status_code == 200, name
    assert client.get("/app.js").headers["content-type"].startswith("text/javascript")
    assert client.get("/style.css").headers["content-type"].startswith("text/css")
    # Browsers ask for /favicon.ico on every page: an icon, not a 404.
    icon = client.get("/favicon.ico")
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"
    assert icon.content == (catalog.UI_DIR / "favicon.svg").read_bytes()
    assert client.get("/pyproject.toml").status_code == 404
    assert client.get("/..%2Fcatalog.py").status_code == 404
    assert client.get("/nothing").json()["error"]["code"] == "not_found"


def test_ui_files_follow_configmap_updates(tmp_path, backends) -> None:
    """A ConfigMap mount: files are symlinks into a ..data dir that is swapped."""
    def publish(version: str) -> None:
        target = tmp_path / f"..{version}"
        target.mkdir()
        for name in catalog.UI_FILES:
            (target / name).write_text(f"{name} {version}")
        tmp_link = tmp_path / "..data_tmp"
        tmp_link.symlink_to(target.name)
        tmp_link.replace(tmp_path / "..data")
        for name in catalog.UI_FILES:
            if not (tmp_path / name).is_symlink():
                (tmp_path / name).symlink_to(f"..data/{name}")

    publish("v1")
    settings = Settings(service="api-gateway", ui_dir=tmp_path, peers={n: s.url for n, s in backends.items()})
    with LiveServer(create_app(settings)) as gw:
        assert httpx.get(gw.url + "/").text == "index.html v1"
        publish("v2")
        assert httpx.get(gw.url + "/").text == "index.html v2"
        assert httpx.get(gw.url + "/app.js").text == "app.js v2"


def test_whoami_counts_answers(client: httpx.Client) -> None:
    r = client.get("/api/whoami", params={"service": "movie-service", "n": 4})
    assert r.status_code == 200
    data = r.json()
    assert data["gateway"]["pod"] == "gw-1" and data["n"] == 4
    [svc] = data["services"]
    assert svc["service"] == "movie-service" and len(svc["answers"]) == 4
    assert svc["counts"] == {"ctx9/movie-service-standin": 4}
    assert svc["versions"] == {"v1": 4}
    all_three = client.get("/api/whoami", params={"n": 2}).json()
    assert [s["service"] for s in all_three["services"]] == [s.name for s in catalog.ROUTED.values()]
    assert client.get("/api/whoami", params={"n": 0}).status_code == 422
    assert client.get("/api/whoami", params={"service": "redis"}).status_code == 422


def test_whoami_does_not_hang_on_a_slow_service(backends: dict[str, LiveServer]) -> None:
    slow = LiveServer(echo_backend("movie-service", info_delay=2.0)).start()
    try:
        peers = {name: s.url for name, s in backends.items()} | {"movie-service": slow.url}
        settings = Settings(service="api-gateway", peers=peers, peer_timeout=0.3)
        with LiveServer(create_app(settings)) as gw:
            start = time.perf_counter()
            r = httpx.get(gw.url + "/api/whoami", params={"n": 20}, timeout=10)
            elapsed = time.perf_counter() - start
    finally:
        slow.stop()
    assert r.status_code == 200
    services = {s["service"]: s for s in r.json()["services"]}
    assert services["movie-service"]["counts"] == {"error: timeout": 1}
    assert services["user-service"]["counts"] == {"ctx9/user-service-standin": 20}
    assert elapsed < 1.5


def test_several_urls_of_a_service_are_used_in_turn(backends: dict[str, LiveServer]) -> None:
    """MOVIE_SERVICE_URL with v1 and v2 (`theater local --with-v2`): the
    proxy and /api/whoami use them in turn, as a Service spreads calls over
    its pods; whoami counts the answers per version."""
    v2 = LiveServer(echo_backend("movie-service", cluster="local", pod="movie-service-v2-local", version="v2")).start()
    try:
        peers = {name: s.url for name, s in backends.items()}
        peers["movie-service"] = f"{backends['movie-service'].url}/, {v2.url}"
        with LiveServer(create_app(Settings(service="api-gateway", peers=peers, peer_timeout=TIMEOUT))) as gw:
            served = [httpx.get(gw.url + "/movies/", timeout=10).headers.get_list("x-served-by")[0] for _ in range(4)]
            whoami = httpx.get(gw.url + "/api/whoami", params={"service": "movie-service", "n": 6}, timeout=10).json()
    finally:
        v2.stop()
    assert sorted(served) == ["movie-service@ctx9/movie-service-standin (v1)"] * 2 + [
        "movie-service@local/movie-service-v2-local (v2)"] * 2
    assert served[0] != served[1]
    [svc] = whoami["services"]
    assert svc["versions"] == {"v1": 3, "v2": 3}
    assert svc["counts"] == {"ctx9/movie-service-standin": 3, "local/movie-service-v2-local": 3}


@pytest.mark.parametrize("path", ["/movies%0A", "/movies/%0A", "/users%0D%0A", "/bookings%00"])
def test_control_characters_in_the_path_are_404_not_500(client: httpx.Client, path: str) -> None:
    r = client.get(path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


def test_gateway_openapi_covers_the_proxied_routes(client: httpx.Client) -> None:
    doc = client.get("/openapi.json").json()
    paths = doc["paths"]
    for path in ("/users/", "/users/{id}", "/movies/", "/movies/{id}", "/bookings/", "/bookings/{id}"):
        assert path in paths, sorted(paths)
    assert not any(p.startswith("/internal") for p in paths)
    assert {"UserIn", "MovieIn", "BookingIn", "Booking"} <= set(doc["components"]["schemas"])
