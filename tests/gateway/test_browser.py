"""The whole demo in a real browser: Playwright driving Debian's Chromium
(/usr/bin/chromium, never a downloaded browser) against `theater local`.
Form errors, the phone layout and the confirmations have their own files
(test_ui_forms.py, test_ui_phone.py); the shared checks are in browser.py."""

from __future__ import annotations

import re
import uuid
from pathlib import Path

import pytest

from tests.gateway.browser import DESKTOP, PHONE, chromium, horizontal_overflow, midword_breaks, open_page, shot


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    """A busy machine answers slowly; these checks are about what is shown, not how fast."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


@pytest.mark.browser
def test_demo_in_the_browser(local_app: str) -> None:
    from playwright.sync_api import expect

    name = "김민수"
    email = f"minsu-{uuid.uuid4().hex[:6]}@example.com"
    title = f"기생충 {uuid.uuid4().hex[:4]}"
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", DESKTOP)
        expect(page.get_by_role("heading", name=re.compile("사용자"))).to_be_visible()

        # An invalid form: a Korean sentence next to it, not raw JSON; the
        # server's English original folded away under "서버 원문".
        page.get_by_test_id("user-name").fill(name)
        page.get_by_test_id("user-email").fill("not-an-email")
        page.get_by_test_id("user-submit").click()
        error = page.get_by_test_id("user-error")
        expect(error).to_be_visible()
        expect(error).to_contain_text("입력값을 확인하세요")
        expect(error).to_contain_text("이메일은 name@example.com 같은 형식으로 입력하세요.")
        expect(error.locator("details summary")).to_have_text("서버 원문")
        expect(error.locator("details")).to_contain_text("email must be an email address such as kim@example.com.")
        assert "{" not in error.inner_text() and "email must" not in error.inner_text()
        expect(page.get_by_test_id("user-email")).to_have_class(re.compile("invalid"))

        # A user with a Korean name: editing the email closes the box.
        page.get_by_test_id("user-email").fill(email)
        expect(error).to_be_hidden()
        page.get_by_test_id("user-submit").click()
        user_item = page.get_by_test_id("user-item").filter(has_text=email)
        expect(user_item.get_by_test_id("user-item-name")).to_have_text(name)
        expect(page.get_by_test_id("user-served-by")).to_contain_text("user-service@local/")

        # A movie with 10 seats.
        page.get_by_test_id("movie-title").fill(title)
        page.get_by_test_id("movie-genre").fill("드라마")
        page.get_by_test_id("movie-year").fill("2019")
        page.get_by_test_id("movie-capacity").fill("10")
        page.get_by_test_id("movie-submit").click()
        movie_item = page.get_by_test_id("movie-item").filter(has_text=title)
        seats = movie_item.get_by_test_id("movie-seats")
        expect(seats).to_have_text("10 / 10")

        # A booking of 3 seats: listed, and the seats drop.
        page.get_by_test_id("booking-user").select_option(label=f"{name} ({email})")
        page.get_by_test_id("booking-movie").select_option(label=f"{title} (잔여 10석)")
        page.get_by_test_id("booking-seats").fill("3")
        with page.expect_request(lambda r: r.method == "POST" and "/bookings" in r.url) as sent:
            page.get_by_test_id("booking-submit").click()
        # Each booking click carries its own Idempotency-Key (mesh retries book once).
        key = sent.value.headers.get("idempotency-key", "")
        assert re.fullmatch(r"[0-9a-f]{32}", key), sent.value.headers
        booking = page.get_by_test_id("booking-item").filter(has_text=f"{name} → {title}")
        expect(booking).to_have_count(1)
        expect(booking.get_by_test_id("booking-status")).to_have_text("확정")
        expect(booking).to_contain_text("3석")
        expect(seats).to_have_text("7 / 10")

        # More seats than are left: the booking form explains.
        page.get_by_test_id("booking-movie").select_option(label=f"{title} (잔여 7석)")
        page.get_by_test_id("booking-seats").fill("8")
        page.get_by_test_id("booking-submit").click()
        booking_error = page.get_by_test_id("booking-error")
        expect(booking_error).to_contain_text("남은 좌석이 부족합니다")
        expect(seats).to_have_text("7 / 10")
        page.get_by_test_id("booking-seats").fill("2")
        expect(booking_error).to_be_hidden()

        # The panels: a calm local run (no cluster cards), who answered.
        expect(page.get_by_test_id("local-note")).to_contain_text("이 컴퓨터에서 로컬로 실행 중입니다")
        expect(page.get_by_test_id("cluster-card")).to_have_count(0)
        expect(page.get_by_test_id("status-panel")).not_to_contain_text("연결되지 않음")
        expect(page.get_by_test_id("local-service")).to_have_count(4)
        expect(page.get_by_test_id("local-services")).not_to_contain_text("응답 없음")
        expect(page.get_by_test_id("whoami-service")).to_have_count(3)
        expect(page.locator("[data-service=movie-service] [data-testid=whoami-row]")).to_contain_text("movie-service-local")
        expect(page.locator("[data-service=movie-service] [data-testid=whoami-row]")).to_contain_text("6회")

        shot(page, "gateway-ui-booked.png")

        # Cancel: asked first; the seats come back only once confirmed.
        booking.get_by_test_id("booking-cancel").click()
        dialog = page.get_by_test_id("confirm-dialog")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(f"{name} → {title}, 3석 예약을 취소합니다")
        dialog.get_by_test_id("confirm-yes").click()
        expect(dialog).to_be_hidden()
        expect(booking.get_by_test_id("booking-status")).to_have_text("취소됨")
        expect(seats).to_have_text("10 / 10")
        expect(booking.get_by_test_id("booking-cancel")).to_have_count(0)

        assert horizontal_overflow(page) is None
        shot(page, "gateway-ui.png")
        assert console.unexpected() == []


@pytest.mark.browser
def test_status_panel_shows_both_clusters(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The deployment-status and who-answered panels fed by two stand-in
    Kubernetes APIs (ctx2 without the ClusterRole for nodes) and stand-in
    services answering from ctx1 and ctx2."""
    from playwright.sync_api import expect

    from services import catalog
    from services.api_gateway import create_app
    from services.common.settings import Settings
    from services.launcher import LiveServer
    from tests.gateway import fake_kube as fk
    from tests.gateway.standins import echo_backend

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    one, two = fk.ctx1_cluster(), fk.ctx2_cluster()
    two.forbidden = {"nodes"}
    homes = {"user-service": "ctx1", "movie-service": "ctx2", "booking-service": "ctx2"}
    servers = [LiveServer(one.app()).start(), LiveServer(two.app()).start()]
    try:
        backends = {name: LiveServer(echo_backend(name, cluster, f"{name}-6f7d-x{i}")).start()
                    for i, (name, cluster) in enumerate(homes.items())}
        servers += backends.values()
        settings = Settings(
            service="api-gateway", cluster="ctx1", pod="api-gateway-7d9f8c6b5-abcde", node="ctx1-worker",
            peers={name: s.url for name, s in backends.items()},
            peer_timeout=20.0,  # this test shows answers; a loaded machine must not turn them into timeouts
            local_kubeconfig=fk.write_kubeconfig(tmp_path / "ctx1.yaml", servers[0].url, one.token, "ctx1"),
            remote_kubeconfig=fk.write_kubeconfig(tmp_path / "ctx2.yaml", servers[1].url, two.token, "ctx2"),
        )
        gateway = LiveServer(create_app(settings)).start()
        servers.append(gateway)
        with chromium() as browser:
            page, console = open_page(browser, gateway.url + "/", DESKTOP)
            ctx1 = page.locator("[data-testid=cluster-card][data-cluster=ctx1]")
            ctx2 = page.locator("[data-testid=cluster-card][data-cluster=ctx2]")
            expect(ctx1).to_have_attribute("data-reachable", "true")
            expect(ctx1.get_by_test_id("pods-table").locator("tbody tr")).to_have_count(3)
            crashing = ctx1.get_by_test_id("pods-table").locator("tr", has_text="user-service-7d9f8c6b5-klmno")
            expect(crashing).to_contain_text("CrashLoopBackOff")
            expect(crashing).to_contain_text("1/2")
            expect(ctx1.get_by_test_id("deployments-table").locator("tr", has_text="user-service")).to_contain_text("1 / 2")
            expect(ctx1.get_by_test_id("nodes-table")).to_contain_text("ctx1-control-plane")
            expect(ctx2.get_by_test_id("cluster-message")).to_contain_text("권한(RBAC)")
            expect(ctx2.get_by_test_id("cluster-message")).to_contain_text("nodes")
            expect(ctx2.get_by_test_id("pods-table")).to_contain_text("movie-service-5c6d7e8f9-pqrst")
            expect(page.get_by_test_id("local-note")).to_have_count(0)  # a cluster run is not the local run
            movie_row = page.locator("[data-service=movie-service] [data-testid=whoami-row]")
            expect(movie_row).to_contain_text("ctx2")
            expect(movie_row).to_contain_text("6회")
            assert set(catalog.CLUSTERS) == {"ctx1", "ctx2"}
            assert horizontal_overflow(page) is None
            # Pod, node and Deployment names wrap only before a generated suffix, never "booking-/service".
            assert midword_breaks(page, "[data-testid=status-clusters] td") == []
            shot(page, "gateway-ui-clusters.png")

            # On a phone the node, Deployment and pod tables become labelled cards.
            page.set_viewport_size(PHONE)
            expect(crashing.locator("td").first).to_have_attribute("data-label", "이름")
            assert horizontal_overflow(page) is None, horizontal_overflow(page)
            assert midword_breaks(page, "[data-testid=status-clusters] td") == []
            shot(page, "gateway-ui-clusters-phone-390x844.png")
            assert console.unexpected() == []
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.mark.browser
def test_a_cluster_not_yet_connected_is_calm_and_failures_read_in_korean(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ctx1 read through its kubeconfig, ctx2 not connected yet (a set-up
    step, not a failure), and services that do not answer."""
    from playwright.sync_api import expect

    from services import catalog
    from services.api_gateway import create_app
    from services.common.settings import Settings
    from services.launcher import LiveServer
    from tests.gateway import fake_kube as fk
    from tests.gateway.browser import untranslated
    from tests.gateway.test_status import closed_port

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    one = fk.ctx1_cluster()
    servers = [LiveServer(one.app()).start()]
    try:
        settings = Settings(
            service="api-gateway", cluster="ctx1", pod="api-gateway-7d9f8c6b5-abcde", node="ctx1-worker",
            peers={s.name: f"http://127.0.0.1:{closed_port()}" for s in catalog.ROUTED.values()},
            local_kubeconfig=fk.write_kubeconfig(tmp_path / "ctx1.yaml", servers[0].url, one.token, "ctx1"),
        )
        gateway = LiveServer(create_app(settings)).start()
        servers.append(gateway)
        with chromium() as browser:
            page, _ = open_page(browser, gateway.url + "/", DESKTOP)
            ctx2 = page.locator("[data-testid=cluster-card][data-cluster=ctx2]")
            expect(ctx2.get_by_test_id("cluster-message")).to_have_text(
                "ctx2: 다른 클러스터의 kubeconfig가 아직 연결되지 않았습니다 (README 3.2 의 8단계 참고)"
            )
            expect(ctx2.locator(".badge")).to_have_text("연결 전")
            expect(ctx2.locator(".badge.bad")).to_have_count(0)
            # The English detail is folded away, one click from view.
            expect(ctx2.locator("details.detail")).not_to_have_attribute("open", "")
            assert "REMOTE_KUBECONFIG" not in ctx2.inner_text()
            # /info calls that fail are named in Korean in the who-answered panel.
            rows = page.get_by_test_id("whoami-row")
            expect(rows).to_have_count(3)
            for text in rows.all_inner_texts():
                assert "연결할 수 없음" in text and untranslated(text) == [], text
    finally:
        for server in reversed(servers):
            server.stop()
