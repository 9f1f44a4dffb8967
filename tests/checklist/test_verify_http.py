"""`theater verify`'s HTTP and telemetry items, without Kubernetes
(--no-kubernetes): the edge routes and the cross-cluster calls against the
real services (the local run, and the services started as in their home
clusters), and the Prometheus, Jaeger and Kiali items against a server that
answers like those APIs (tests/checklist/servers.py cites their docs)."""

from __future__ import annotations

import httpx

from checklist.report import FAIL, PASS, SKIP
from checklist.verify import Options, Verify
from services import catalog
from tests.checklist.servers import MeshLike, Telemetry, booking_trace, healthy_series, istio_requests, kiali_graph

EDGE = ["edge.healthz", "edge.route.ui", "edge.route.users", "edge.route.movies", "edge.route.bookings"]
CROSS = ["mesh.cross.gateway-movie", "mesh.cross.booking-user"]
TELEMETRY = ["mesh.mtls", "mesh.prometheus.gateway-movie", "mesh.prometheus.booking-user",
             "observability.prometheus.apps", "observability.kiali", "observability.jaeger"]


def verify(url: str, telemetry_url: str | None = None, **overrides: str):
    options = Options(url=url, skip_kubernetes=True, overrides=overrides, timeout=10)
    if telemetry_url:
        options.prometheus_url = options.jaeger_url = telemetry_url
        options.kiali_url = telemetry_url + "/kiali"
    return Verify(options).run()


def statuses(report, keys: list[str]) -> dict[str, str]:
    return {k: report.get(k).status for k in keys}


def test_a_mesh_that_works_passes_every_item(mesh_like: MeshLike, telemetry: tuple[Telemetry, str]) -> None:
    data, url = telemetry
    data.series, data.traces, data.graph = healthy_series(), [booking_trace()], kiali_graph(cross=True)
    report = verify(mesh_like.url, url)
    assert statuses(report, EDGE + CROSS + TELEMETRY) == {k: PASS for k in EDGE + CROSS + TELEMETRY}, report.render()
    assert "movie-service@ctx2" in report.get("mesh.cross.gateway-movie").detail
    assert "booking-service@ctx2" in report.get("mesh.cross.booking-user").detail
    assert "api-gateway(ctx1) → movie-service(ctx2)" in report.get("observability.kiali").detail
    assert "4bf92f3577b34da6a3ce929d0e0e4736" in report.get("observability.jaeger").detail
    assert report.get("lessons").status == SKIP  # no lesson toggle in Pulumi.ctx*.yaml
    assert report.exit_code == 0
    # What verify asked Prometheus: Istio's labels, as in its standard metrics.
    assert any('connection_security_policy="mutual_tls"' in q for q in data.queries)
    assert any('source_cluster="ctx2", destination_cluster="ctx1"' in q for q in data.queries)


def test_the_booking_round_trip_leaves_nothing_behind(mesh_like: MeshLike) -> None:
    """Its user and movie are deleted; its booking stays (cancelled, as every
    booking does), named with catalog.VERIFY_NAME_PREFIX so the page hides it."""
    mark = catalog.VERIFY_NAME_PREFIX
    with httpx.Client(base_url=mesh_like.url, timeout=10) as http:
        before = [u for u in http.get("/users/", params={"limit": "500"}).json()["items"] if u["name"].startswith(mark)]
        report = verify(mesh_like.url)
        after = [u for u in http.get("/users/", params={"limit": "500"}).json()["items"] if u["name"].startswith(mark)]
        movies = [m for m in http.get("/movies/", params={"limit": "500"}).json()["items"] if m["title"].startswith(mark)]
        newest = http.get("/bookings/", params={"order": "newest", "limit": "1"}).json()["items"]
    assert report.get("mesh.cross.booking-user").status == PASS
    assert before == after == [] and movies == []
    assert [(b["userName"][: len(mark)], b["movieTitle"][: len(mark)], b["status"]) for b in newest] == [(mark, mark, "cancelled")]


def test_telemetry_that_shows_no_crossing_fails(mesh_like: MeshLike, telemetry: tuple[Telemetry, str]) -> None:
    data, url = telemetry
    # Plain-text traffic only, no ctx2 -> ctx1 calls, one app not scraped, a one-cluster trace, no crossing edge.
    data.series = [istio_requests("api-gateway", "ctx1", "movie-service", "ctx2", 3, mtls=False)] + \
        [s for s in healthy_series() if s[0]["__name__"] == "http_requests_total" and s[0]["service"] != "movie-service"]
    data.traces, data.graph = [booking_trace(("ctx1", "ctx1"))], kiali_graph(cross=False)
    report = verify(mesh_like.url, url)
    assert statuses(report, TELEMETRY) == {"mesh.mtls": FAIL, "mesh.prometheus.gateway-movie": PASS,
                                           "mesh.prometheus.booking-user": FAIL, "observability.prometheus.apps": FAIL,
                                           "observability.kiali": FAIL, "observability.jaeger": FAIL}, report.render()
    assert "movie-service" in report.get("observability.prometheus.apps").detail
    assert report.get("observability.kiali").fix == ["uv run theater load --stack ctx1 --duration 120   # 트래픽을 만든 뒤 다시 확인"]
    assert report.exit_code == 1


def test_the_local_run_is_not_a_mesh(local_app: str) -> None:
    """Every route answers, but every service says `@local`: there is no
    cross-cluster call to see, so those items SKIP with the reason (README
    offers `verify --url … --no-kubernetes` for the local run) and the run
    passes: exit 0 when everything that can be checked passes."""
    report = verify(local_app)
    assert statuses(report, EDGE) == {k: PASS for k in EDGE}, report.render()
    assert statuses(report, CROSS) == {k: SKIP for k in CROSS}, report.render()
    gateway_movie = report.get("mesh.cross.gateway-movie").detail
    assert "movie-service@local" in gateway_movie and "로컬 실행" in gateway_movie
    booking = report.get("mesh.cross.booking-user").detail
    assert "POST /bookings/ → 201" in booking and "로컬 실행" in booking  # the booking itself worked
    assert report.get("mesh.mtls").status == SKIP  # no Prometheus found
    assert report.exit_code == 0, report.render()
    assert "FAIL 0" in report.render()


def test_an_edge_that_does_not_answer(mesh_like: MeshLike) -> None:
    report = verify("http://127.0.0.1:9")
    assert report.get("edge.healthz").status == FAIL
    assert "연결 실패" in report.get("edge.healthz").detail
    assert report.get("edge.route.users").status == SKIP
    assert report.exit_code == 1
    data = report.as_data()
    assert data["ok"] is False and data["counts"][FAIL] >= 1


def test_a_lesson_toggle_is_observed(mesh_like: MeshLike) -> None:
    """A fault that is configured but has no effect (no Envoy here) is a FAIL, with the evidence."""
    report = verify(mesh_like.url, faults='{"movie-service": {"abort": 503, "percent": 50}}')
    item = report.get("lessons.fault.movie-service")
    assert item.status == FAIL and "{200: 20}" in item.detail, item
