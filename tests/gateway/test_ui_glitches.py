"""Small things a class notices on the projector and on a phone (issue 24,
4), at 1280 and 390 px against `theater local`: long titles and e-mails
wrap between words, never inside one; the status table keeps service names
and URLs whole; the A/B examples fit their inputs; the canary panel drops
an old count after an input error and lists its rows in a fixed order."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.browser import VIEWPORTS, chromium, clipped_placeholders, horizontal_overflow, midword_breaks, open_page, shot


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_long_names_wrap_between_words(local_app: str, size: str) -> None:
    from playwright.sync_api import expect

    t = str(uuid.uuid4().int)[:6]
    email = f"minsu.kim.longname-{t}@example-university.ac.kr"
    title = f"The Lord of the Rings: The Fellowship of the Ring {t} 반지의 제왕 확장판 특별 상영"
    with httpx.Client(base_url=local_app, timeout=10) as api:
        user = api.post("/users/", json={"name": f"김민수 {t}", "email": email}).json()
        movie = api.post("/movies/", json={"title": title, "genre": "판타지", "year": 2001, "capacity": 30}).json()
        api.post("/bookings/", json={"userId": user["id"], "movieId": movie["id"], "seats": 1})
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", VIEWPORTS[size])
        expect(page.get_by_test_id("user-item").filter(has_text=email)).to_have_count(1)
        expect(page.get_by_test_id("booking-item").filter(has_text=title)).to_have_count(1)
        expect(page.get_by_test_id("local-service")).to_have_count(4)
        page.wait_for_load_state("networkidle")
        lists = "[data-testid=user-list] li, [data-testid=movie-list] li, [data-testid=booking-list] li"
        assert midword_breaks(page, lists) == []
        # The status table: service names, URLs and pods stay whole.
        assert midword_breaks(page, "[data-testid=local-table] td") == []
        assert horizontal_overflow(page) is None, horizontal_overflow(page)
        shot(page, f"gateway-ui-long-names-{size}.png")
        assert console.unexpected() == []


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_canary_panel_inputs_and_rows(local_app: str, size: str) -> None:
    from playwright.sync_api import expect

    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", VIEWPORTS[size])
        panel = page.get_by_test_id("canary-panel")
        # The A/B examples are readable in full, on a phone too.
        assert clipped_placeholders(page, "[data-testid=canary-panel] input[placeholder]") == []

        # A run, then an input error: the old "20 / 20" goes with the old result.
        page.get_by_test_id("canary-run").click()
        expect(page.get_by_test_id("canary-progress")).to_have_text("20 / 20")
        page.get_by_test_id("canary-header").fill("x-theater-group beta")
        page.get_by_test_id("canary-run").click()
        expect(page.get_by_test_id("canary-error")).to_contain_text("헤더는 이름: 값 형식으로 입력하세요")
        expect(page.get_by_test_id("canary-progress")).to_have_text("")
        expect(page.get_by_test_id("canary-row")).to_have_count(0)
        page.get_by_test_id("canary-header").fill("")

        # Rows in one order whatever the counts: v1 before v2, run after run.
        def answer_with(versions: list[str]) -> None:
            sent = iter(versions * 10)

            def fulfil(route: Any) -> None:
                version = next(sent)
                served = f"movie-service@local/movie-service-{version}-local ({version}), api-gateway@local/api-gateway-local (v1)"
                route.fulfill(status=200, content_type="application/json", body='{"items": [], "next": null}',
                              headers={"X-Served-By": served})

            page.unroute("**/movies/?limit=1")
            page.route("**/movies/?limit=1", fulfil)

        orders = []
        for versions in (["v1", "v1", "v1", "v2"], ["v2", "v2", "v2", "v1"]):
            answer_with(versions)
            page.get_by_test_id("canary-run").click()
            expect(page.get_by_test_id("canary-progress")).to_have_text("20 / 20")
            expect(page.get_by_test_id("canary-row")).to_have_count(2)
            rows = page.get_by_test_id("canary-row")
            orders.append([rows.nth(i).get_attribute("data-version") for i in range(2)])
        assert orders == [["v1", "v2"], ["v1", "v2"]]
        expect(page.get_by_test_id("canary-share").last).to_have_text("15회 (75%)")  # v2's share in the second run
        assert horizontal_overflow(page) is None
        shot(page, f"gateway-ui-canary-{size}.png")
        assert console.unexpected() == []
