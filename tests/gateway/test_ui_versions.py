"""The canary lesson's panels in a real browser, on `theater local
--with-v2` (movie-service v1 and v2, used in turn as a Service without Istio
rules would): "누가 응답했나?" shows each answer's version and cluster, the
canary panel sends N calls with an optional A/B header or cookie and shows
the split, and v2's bookingRate shows in the movie list."""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.browser import ARTIFACTS, DESKTOP, PHONE, broken_korean_words, chromium, horizontal_overflow, open_page, shot, untranslated


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


def wait_for_count(page: Any, seen: list, n: int) -> None:
    """Request events arrive after the page has moved on: wait (at most 10 s) until n are in."""
    for _ in range(100):
        if len(seen) >= n:
            return
        page.wait_for_timeout(100)


def seed_movie(base: str) -> dict[str, Any]:
    tag = str(uuid.uuid4().int)[:6]
    with httpx.Client(base_url=base, timeout=10) as api:
        user = api.post("/users/", json={"name": f"이서연 {tag}", "email": f"seoyeon-{tag}@example.com"}).json()
        movie = api.post("/movies/", json={"title": f"괴물 {tag}", "genre": "SF", "year": 2006, "capacity": 8}).json()
        assert api.post("/bookings/", json={"userId": user["id"], "movieId": movie["id"], "seats": 2}).status_code == 201
    return movie


@pytest.mark.browser
def test_who_answered_shows_version_and_cluster(local_app_v2: str) -> None:
    from playwright.sync_api import expect

    movie = seed_movie(local_app_v2)
    with chromium() as browser:
        page, console = open_page(browser, local_app_v2 + "/", DESKTOP)
        movies = page.get_by_test_id("whoami-service").filter(has=page.get_by_role("heading", name="movie-service"))
        expect(movies.get_by_test_id("whoami-row")).to_have_count(2)
        v1 = movies.locator('[data-testid="whoami-row"][data-version="v1"]')
        v2 = movies.locator('[data-testid="whoami-row"][data-version="v2"]')
        expect(v1).to_contain_text("movie-service-local")
        expect(v2).to_contain_text("movie-service-v2-local")
        expect(v2.get_by_test_id("whoami-version")).to_have_text("v2")
        expect(v2).to_contain_text("local")
        # Six /info calls, alternated by the local gateway; the page's own list refreshes
        # (every 5 s) go through the same alternation, so the split is 3/3 only on a quiet machine.
        versions = movies.get_by_test_id("whoami-versions")
        expect(versions).to_have_text(re.compile(r"^버전: v[12] [1-5]회 · v[12] [1-5]회$"))
        counts = dict(re.findall(r"(v[12]) (\d)회", versions.inner_text()))
        assert set(counts) == {"v1", "v2"} and int(counts["v1"]) + int(counts["v2"]) == 6, counts
        # Services with one version show no version summary.
        users = page.get_by_test_id("whoami-service").filter(has=page.get_by_role("heading", name="user-service"))
        expect(users.get_by_test_id("whoami-versions")).to_have_count(0)
        expect(page.get_by_test_id("gateway-info")).to_contain_text("api-gateway@local/")
        expect(page.get_by_test_id("gateway-info")).to_contain_text(" v1 (노드 ")

        # v2's answers carry 예매율 (2 of 8 seats booked); reloading the list alternates v1 and v2.
        item = page.get_by_test_id("movie-item").filter(has_text=movie["title"])
        expect(item).to_have_count(1)
        for _ in range(4):
            if item.get_by_test_id("movie-rate").count():
                break
            page.reload()
            expect(item).to_have_count(1)
        expect(item.get_by_test_id("movie-rate")).to_have_text("예매율 25%")
        expect(page.get_by_test_id("movie-served-by")).to_contain_text(re.compile(r"movie-service@local/\S+ \(v[12]\)"))
        shot(page, "gateway-ui-versions-whoami.png")
        assert console.unexpected() == [], console.unexpected()


@pytest.mark.browser
@pytest.mark.parametrize("viewport", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_canary_panel_counts_the_split(local_app_v2: str, viewport: dict[str, int]) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page, console = open_page(browser, local_app_v2 + "/", viewport)
        panel = page.get_by_test_id("canary-panel")
        expect(panel).to_contain_text("카나리·A/B 분배")
        sent: list[dict[str, str]] = []
        page.on("requestfinished", lambda r: sent.append(r.all_headers()) if "/movies/?limit=1" in r.url else None)

        panel.get_by_test_id("canary-n").select_option("20")
        panel.get_by_test_id("canary-run").click()
        expect(panel.get_by_test_id("canary-progress")).to_have_text("20 / 20")
        rows = panel.get_by_test_id("canary-row")
        expect(rows).to_have_count(2)
        counts = {rows.nth(i).get_attribute("data-version"): int(rows.nth(i).get_attribute("data-count")) for i in range(2)}
        assert set(counts) == {"v1", "v2"} and sum(counts.values()) == 20
        # In turn, like a Service over v1 and v2 pods (the mesh's weights decide in Kubernetes).
        assert 7 <= counts["v2"] <= 13, counts
        expect(rows.first.get_by_test_id("canary-share")).to_have_text(re.compile(r"^\d+회 \(\d+%\)$"))
        expect(rows.first).to_contain_text("local")
        expect(panel.get_by_test_id("canary-summary")).to_have_text("GET /movies/ 20회: 버전과 클러스터별 응답 수")
        wait_for_count(page, sent, 20)
        assert len(sent) == 20

        # The A/B header and cookie ride on every call; the cookie is gone afterwards.
        sent.clear()
        panel.get_by_test_id("canary-header").fill("X-Theater-Group: beta")
        panel.get_by_test_id("canary-cookie").fill("theater-group=beta")
        panel.get_by_test_id("canary-run").click()
        expect(panel.get_by_test_id("canary-summary")).to_contain_text("헤더 x-theater-group: beta, 쿠키 theater-group=beta")
        wait_for_count(page, sent, 20)
        assert len(sent) == 20
        assert all(h.get("x-theater-group") == "beta" and "theater-group=beta" in h.get("cookie", "") for h in sent), sent[0]
        assert "theater-group" not in page.evaluate("document.cookie")

        # A malformed header: a Korean sentence, nothing sent.
        sent.clear()
        panel.get_by_test_id("canary-header").fill("x-theater-group beta")
        panel.get_by_test_id("canary-run").click()
        error = panel.get_by_test_id("canary-error")
        expect(error).to_have_text("헤더는 이름: 값 형식으로 입력하세요. 예: x-theater-group: beta")
        page.wait_for_timeout(500)
        assert sent == []
        assert untranslated(error.inner_text().split("예:")[0]) == []

        assert horizontal_overflow(page) is None, horizontal_overflow(page)
        assert broken_korean_words(page) == []
        panel.screenshot(path=str(ARTIFACTS / f"gateway-ui-canary-{viewport['width']}x{viewport['height']}.png"))
        assert console.unexpected() == [], console.unexpected()


@pytest.mark.browser
def test_canary_panel_names_a_failed_call_in_korean(local_app_v2: str) -> None:
    """A 503 from the route (what an abort fault or a missing subset gives) is counted as an error row."""
    from playwright.sync_api import expect

    with chromium() as browser:
        page, _ = open_page(browser, local_app_v2 + "/", DESKTOP)
        calls = {"n": 0}

        def every_other(route: Any) -> None:
            calls["n"] += 1
            if calls["n"] % 2:
                route.fulfill(status=503, content_type="text/plain", body="no healthy upstream")
            else:
                route.fallback()

        page.route(re.compile(r".*/movies/\?limit=1$"), every_other)
        panel = page.get_by_test_id("canary-panel")
        panel.get_by_test_id("canary-run").click()
        expect(panel.get_by_test_id("canary-progress")).to_have_text("20 / 20")
        error_row = panel.locator('[data-testid="canary-row"][data-version=""]')
        expect(error_row).to_contain_text("서비스를 사용할 수 없습니다. 잠시 후 다시 시도하세요.")
        expect(error_row.get_by_test_id("canary-share")).to_have_text("10회 (50%)")
