"""The bookings column as an instructor uses it during a demo, at 1280 and
390 px, against `theater local` (real services, real Redis) in Chromium:

- the newest first, paged through the API's cursor, filtered by user; the
  booking just made is first, highlighted and on screen, even while
  `theater load` books meanwhile, whose traffic is hidden (issue 24, 1 and 3);
- a booking whose movie was deleted reads cancelled, as the API says, with no
  cancel button, and is not counted when deleting its user (issue 24, 2);
- a user or movie the page cannot check because its service does not answer
  reads "확인 불가", not "삭제됨" (issue 24, 2);
- a booking that got a 504 (or no answer) is retried with the same
  Idempotency-Key until a definite answer, and books once (issue 25, 3);
- users and movies are the newest 200, so one made after the first 200
  can still be booked."""

from __future__ import annotations

import json
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from services import catalog
from tests.gateway.browser import VIEWPORTS, broken_korean_words, chromium, horizontal_overflow, open_page, shot
from tests.gateway.conftest import ROOT, theater_command


@pytest.fixture(autouse=True)
def _patient_expect() -> None:
    """A busy machine answers slowly; these checks are about what is shown, not how fast."""
    from playwright.sync_api import expect

    expect.set_options(timeout=20_000)


def tag() -> str:
    return str(uuid.uuid4().int)[:6]


def make(api: httpx.Client, path: str, body: dict[str, Any], **kw: Any) -> dict[str, Any]:
    r = api.post(path, json=body, **kw)
    assert r.status_code == 201, r.text
    return r.json()


def user(api: httpx.Client, name: str) -> dict[str, Any]:
    return make(api, "/users/", {"name": name, "email": f"u{tag()}{uuid.uuid4().hex[:4]}@example.com"})


def movie(api: httpx.Client, title: str, capacity: int = 500) -> dict[str, Any]:
    return make(api, "/movies/", {"title": title, "genre": "드라마", "year": 2020, "capacity": capacity})


def book(api: httpx.Client, u: dict[str, Any], m: dict[str, Any], seats: int = 1) -> dict[str, Any]:
    return make(api, "/bookings/", {"userId": u["id"], "movieId": m["id"], "seats": seats})


def bookings_of(api: httpx.Client, **params: str) -> list[dict[str, Any]]:
    r = api.get("/bookings/", params={"limit": "500", **params})
    assert r.status_code == 200 and r.json()["next"] is None, r.text
    return r.json()["items"]


@pytest.fixture
def load_running(local_app: str, tmp_path: Path) -> Iterator[subprocess.Popen]:
    """`theater load` sending to the app while the test runs (README 4.2)."""
    with open(tmp_path / "load.out", "w") as out:
        proc = subprocess.Popen(
            [*theater_command(), "load", "--url", local_app, "--rate", "8", "--duration", "120",
             "--mix", "reads=20,bookings=70,cancels=10"],
            cwd=ROOT, stdout=out, stderr=subprocess.STDOUT,
        )
    try:
        with httpx.Client(base_url=local_app, timeout=10) as api:
            deadline = time.monotonic() + 60
            while not any(b["userName"].startswith(catalog.LOAD_NAME_PREFIX)
                          for b in api.get("/bookings/", params={"order": "newest", "limit": "5"}).json()["items"]):
                assert proc.poll() is None and time.monotonic() < deadline, (tmp_path / "load.out").read_text()
                time.sleep(0.3)
        yield proc
    finally:
        proc.terminate()
        proc.wait(timeout=30)


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_newest_first_paged_filtered_and_the_new_one_shown(local_app: str, load_running: Any, size: str) -> None:
    from playwright.sync_api import expect

    t = tag()
    with httpx.Client(base_url=local_app, timeout=10) as api:
        minsu, jiwoo = user(api, f"김민수 {t}"), user(api, f"박지우 {t}")
        film = movie(api, f"기생충 {t}")
        older = [book(api, minsu, film) for _ in range(24)]  # more than one page of 20
        theirs = book(api, jiwoo, film)
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", VIEWPORTS[size])
        items = page.get_by_test_id("booking-item")
        expect(items.first).to_be_visible()
        # Newest first: `theater load` books meanwhile, but its bookings (and
        # its user and 10,000-seat movie) are hidden, so ours are on top.
        expect(page.get_by_test_id("hide-demo")).to_be_checked()
        expect(items.first).to_have_attribute("data-id", theirs["id"])
        expect(items.nth(1)).to_have_attribute("data-id", older[-1]["id"])
        expect(items).to_have_count(20)
        expect(page.get_by_test_id("booking-hidden")).to_contain_text("부하·점검 예약")
        expect(page.get_by_test_id("booking-list")).not_to_contain_text(catalog.LOAD_NAME_PREFIX)
        expect(page.get_by_test_id("user-list")).not_to_contain_text(catalog.LOAD_NAME_PREFIX)
        expect(page.get_by_test_id("movie-list")).not_to_contain_text(catalog.LOAD_NAME_PREFIX)

        # Paging through the API's cursor: page 2 holds the next older ones, none twice.
        first_page = [items.nth(i).get_attribute("data-id") for i in range(20)]
        page.get_by_test_id("booking-older").click()
        expect(page.get_by_test_id("booking-page")).to_have_text("2쪽")
        expect(items.first).not_to_have_attribute("data-id", first_page[0])
        second_page = [items.nth(i).get_attribute("data-id") for i in range(items.count())]
        assert not set(first_page) & set(second_page)
        assert [b["id"] for b in older[::-1]] == (first_page + second_page)[1:25]
        page.get_by_test_id("booking-newer").click()
        expect(page.get_by_test_id("booking-page")).to_have_text("1쪽")
        expect(items.first).to_have_attribute("data-id", theirs["id"])

        # A filter by user: only 박지우's booking.
        page.get_by_test_id("booking-filter").select_option(label=f"{jiwoo['name']} ({jiwoo['email']})")
        expect(items).to_have_count(1)
        expect(items.first).to_have_attribute("data-id", theirs["id"])
        expect(page.get_by_test_id("booking-older")).to_be_disabled()
        page.get_by_test_id("booking-filter").select_option(value="")
        expect(items).to_have_count(20)

        # Scroll the list away, then book: the new booking is first, highlighted, in view.
        page.get_by_test_id("booking-list").evaluate("ul => { ul.scrollTop = ul.scrollHeight; }")
        page.evaluate("window.scrollTo(0, 0)")
        page.get_by_test_id("booking-user").select_option(label=f"{minsu['name']} ({minsu['email']})")
        page.get_by_test_id("booking-movie").select_option(value=film["id"])
        page.get_by_test_id("booking-seats").fill("3")
        page.get_by_test_id("booking-submit").click()
        new = page.locator("[data-testid=booking-item].just-made")
        expect(new).to_have_count(1)
        expect(new).to_contain_text("3석")
        expect(new.get_by_test_id("booking-new")).to_have_text("방금 예약")
        expect(items.first).to_have_class("just-made")
        expect(new).to_be_in_viewport()
        expect(new.get_by_test_id("booking-cancel")).to_be_visible()
        with api_client(local_app) as api:
            made = bookings_of(api, userId=minsu["id"])
        assert new.get_attribute("data-id") == made[-1]["id"] and made[-1]["seats"] == 3
        assert horizontal_overflow(page) is None and broken_korean_words(page) == []
        shot(page, f"gateway-ui-bookings-new-{size}.png", full_page=False)

        # Demo traffic shown on request: the load's user, movie and bookings appear.
        page.get_by_test_id("hide-demo").uncheck()
        expect(page.get_by_test_id("user-list")).to_contain_text(catalog.LOAD_NAME_PREFIX)
        expect(page.get_by_test_id("movie-list")).to_contain_text(catalog.LOAD_NAME_PREFIX)
        expect(page.get_by_test_id("booking-list")).to_contain_text(catalog.LOAD_NAME_PREFIX)
        expect(page.get_by_test_id("booking-hidden")).to_have_text("")
        shot(page, f"gateway-ui-bookings-demo-shown-{size}.png")
        assert console.unexpected() == []


def api_client(base: str) -> httpx.Client:
    return httpx.Client(base_url=base, timeout=10)


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_bookings_of_a_deleted_movie_read_cancelled(local_app: str, size: str) -> None:
    from playwright.sync_api import expect

    t = tag()
    with api_client(local_app) as api:
        minsu = user(api, f"김민수 {t}")
        gone_movie, kept_movie = movie(api, f"사라질 영화 {t}"), movie(api, f"남을 영화 {t}")
        first = book(api, minsu, gone_movie, 2)
        second = book(api, minsu, kept_movie, 1)
        with chromium() as browser:
            page, console = open_page(browser, local_app + "/", VIEWPORTS[size])
            one = page.locator(f"[data-testid=booking-item][data-id={first['id']}]")
            two = page.locator(f"[data-testid=booking-item][data-id={second['id']}]")
            expect(one.get_by_test_id("booking-status")).to_have_text("확정")

            # Deleted elsewhere (another browser, the CLI): the API cancels its
            # booking, and the open page follows without a reload.
            assert api.delete(f"/movies/{gone_movie['id']}").status_code == 204
            deadline = time.monotonic() + 20
            while api.get(f"/bookings/{first['id']}").json()["status"] != "cancelled":
                assert time.monotonic() < deadline
                time.sleep(0.2)
            expect(one.get_by_test_id("booking-status")).to_have_text("취소됨")
            expect(one.get_by_test_id("booking-cancel")).to_have_count(0)
            expect(one.get_by_test_id("booking-gone")).to_have_text(" · 영화 삭제됨")

            # Deleting the user counts only the booking still confirmed.
            user_item = page.get_by_test_id("user-item").filter(has_text=minsu["email"])
            user_item.get_by_test_id("user-delete").click()
            text = page.get_by_test_id("confirm-text")
            expect(text).to_contain_text("확정된 예약이 1건(1석) 있으며")
            shot(page, f"gateway-ui-bookings-delete-dialog-{size}.png", full_page=False)
            page.get_by_test_id("confirm-no").click()

            # Deleted from this page: its booking turns cancelled too, no button left.
            page.get_by_test_id("movie-item").filter(has_text=kept_movie["title"]).get_by_test_id("movie-delete").click()
            page.get_by_test_id("confirm-yes").click()
            expect(two.get_by_test_id("booking-status")).to_have_text("취소됨")
            expect(two.get_by_test_id("booking-cancel")).to_have_count(0)
            assert api.get(f"/bookings/{second['id']}").json()["status"] == "cancelled"
            user_item.get_by_test_id("user-delete").click()
            expect(text).to_contain_text("사용자를 삭제합니다.")
            expect(text).not_to_contain_text("확정된 예약")
            page.get_by_test_id("confirm-no").click()
            assert horizontal_overflow(page) is None
            shot(page, f"gateway-ui-bookings-cancelled-{size}.png")
            assert console.unexpected() == []


def own_app(redis_url: str) -> list[Any]:
    """The four services in this process on their own Redis database, for a
    test that stops one of them or fills the lists (the shared `theater
    local` run stays as the other tests expect it): user, movie, booking
    service and gateway, started."""
    from services import api_gateway, booking_service, movie_service, user_service
    from services.common.settings import Settings
    from services.launcher import LiveServer

    def settings(service: str, **extra: Any) -> Settings:
        return Settings(service=service, redis_url=redis_url, cluster="local", pod=f"{service}-0", node="n1", **extra)

    users = LiveServer(user_service.create_app(settings("user-service"))).start()
    movies = LiveServer(movie_service.create_app(settings("movie-service"))).start()
    peers = {"user-service": users.url, "movie-service": movies.url}
    bookings = LiveServer(booking_service.create_app(settings("booking-service", peers=peers))).start()
    gateway = LiveServer(api_gateway.create_app(settings("api-gateway", peers=peers | {"booking-service": bookings.url}))).start()
    return [users, movies, bookings, gateway]


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_a_service_down_is_unknown_not_deleted(redis_server: Any, size: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The 6.4 fault demo: movie-service stops. Its bookings say the movie
    cannot be checked (amber), not that it was deleted; the users side,
    which answers, still tells a deleted user."""
    from playwright.sync_api import expect

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    servers = own_app(redis_server.url + "/7")
    users, movies, bookings, gateway = servers
    try:
        t = tag()
        with api_client(gateway.url) as api:
            kim, lee = user(api, f"김민수 {t}"), user(api, f"이서연 {t}")
            film = movie(api, f"헤어질 결심 {t}")
            mine, hers = book(api, kim, film), book(api, lee, film)
            assert api.delete(f"/users/{lee['id']}").status_code == 204
        movies.stop()
        with chromium() as browser:
            page, console = open_page(browser, gateway.url + "/", VIEWPORTS[size])
            one = page.locator(f"[data-testid=booking-item][data-id={mine['id']}]")
            two = page.locator(f"[data-testid=booking-item][data-id={hers['id']}]")
            expect(page.get_by_test_id("movie-list")).to_contain_text("목록을 불러오지 못했습니다")
            expect(one.get_by_test_id("booking-unknown")).to_have_text(" · ⚠ 영화 확인 불가 (movie-service 응답 없음)")
            expect(one.get_by_test_id("booking-gone")).to_have_count(0)
            expect(one.get_by_test_id("booking-status")).to_have_text("확정")
            expect(one.get_by_test_id("booking-cancel")).to_be_visible()
            # Deleted (the user) and unknown (the movie) side by side, each its own style.
            expect(two.get_by_test_id("booking-gone")).to_have_text(" · 사용자 삭제됨")
            expect(two.get_by_test_id("booking-unknown")).to_contain_text("영화 확인 불가")
            gone_color = two.get_by_test_id("booking-gone").evaluate("e => getComputedStyle(e).color")
            unknown_color = two.get_by_test_id("booking-unknown").evaluate("e => getComputedStyle(e).color")
            assert gone_color != unknown_color
            assert horizontal_overflow(page) is None and broken_korean_words(page) == []
            shot(page, f"gateway-ui-bookings-movie-service-down-{size}.png")
            # The movie list's failure is the only kind of error logged.
            assert all(p.startswith("/movies") for s, p in console.failed if s >= 500), console.failed
    finally:
        for server in reversed(servers):
            server.stop()


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
@pytest.mark.parametrize("failure", ["504", "network"])
def test_an_unknown_outcome_is_retried_with_the_same_key(local_app: str, size: str, failure: str) -> None:
    """The gateway's deadline passed while booking-service went on and
    booked (the 504 that booked): the page says the outcome is unknown and
    retries with the same Idempotency-Key, so it books once."""
    from playwright.sync_api import expect

    t = tag()
    with api_client(local_app) as api:
        minsu, film = user(api, f"김민수 {t}"), movie(api, f"기생충 {t}", capacity=10)
    keys: list[str] = []
    answers: list[int] = []
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", VIEWPORTS[size])

        def gateway_gives_up_once(route: Any) -> None:
            if route.request.method != "POST":
                route.fallback()
                return
            keys.append(route.request.headers.get("idempotency-key", ""))
            if len(keys) > 1:
                route.fallback()
                return
            booked = route.fetch()  # booking-service books it ...
            answers.append(booked.status)
            if failure == "network":  # ... but the answer is lost
                route.abort("connectionreset")
                return
            body = {"error": {"code": "peer_timeout", "message": "booking-service did not answer within 5.0s"}}
            route.fulfill(status=504, content_type="application/json", body=json.dumps(body))

        page.route("**/bookings/", gateway_gives_up_once)
        page.get_by_test_id("booking-user").select_option(value=minsu["id"])
        page.get_by_test_id("booking-movie").select_option(value=film["id"])
        page.get_by_test_id("booking-seats").fill("2")
        page.get_by_test_id("booking-submit").click()
        error = page.get_by_test_id("booking-error")
        expect(error.get_by_test_id("error-headline")).to_have_text("결과를 알 수 없음 — 같은 요청으로 다시 시도")
        expect(error.get_by_test_id("error-note")).to_contain_text("두 번 예약되지 않습니다")
        expect(page.get_by_test_id("booking-submit")).to_have_text("같은 요청으로 다시 시도")
        assert answers == [201]  # it did book
        assert horizontal_overflow(page) is None and broken_korean_words(page) == []
        shot(page, f"gateway-ui-booking-unknown-{failure}-{size}.png", full_page=False)

        page.get_by_test_id("booking-submit").click()
        expect(error).to_be_hidden()
        expect(page.get_by_test_id("booking-submit")).to_have_text("예약하기")
        new = page.locator("[data-testid=booking-item].just-made")
        expect(new).to_contain_text("2석")
        assert len(keys) == 2 and keys[0] == keys[1] and keys[0], keys
        with api_client(local_app) as api:
            made = bookings_of(api, userId=minsu["id"])
            assert len(made) == 1 and made[0]["seats"] == 2, made  # one booking, not two
            assert api.get(f"/movies/{film['id']}").json()["availableSeats"] == 8
        expect(new).to_have_attribute("data-id", made[0]["id"])

        # The next booking is a new request with a new key.
        page.get_by_test_id("booking-movie").select_option(value=film["id"])
        page.get_by_test_id("booking-submit").click()
        expect(page.locator("[data-testid=booking-item].just-made")).not_to_have_attribute("data-id", made[0]["id"])
        assert len(keys) == 3 and keys[2] != keys[0]
        leftover = [e for e in console.unexpected() if "504" not in e and "ERR_CONNECTION_RESET" not in e]
        assert leftover == [], console.unexpected()


def test_the_page_hides_what_load_and_verify_name() -> None:
    """app.js's DEMO_PREFIXES are catalog.DEMO_NAME_PREFIXES, the names
    `theater load` and `theater verify` give what they make."""
    import re

    js = (catalog.UI_DIR / "app.js").read_text()
    found = re.search(r"^const DEMO_PREFIXES = (\[.*?\]);$", js, re.MULTILINE)
    assert found, "app.js has no DEMO_PREFIXES line"
    assert json.loads(found.group(1)) == list(catalog.DEMO_NAME_PREFIXES)
    assert catalog.LOAD_NAME_PREFIX in catalog.DEMO_NAME_PREFIXES and catalog.VERIFY_NAME_PREFIX in catalog.DEMO_NAME_PREFIXES


@pytest.mark.browser
def test_a_user_and_a_movie_made_after_the_first_200_can_be_booked(redis_server: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The page lists the newest 200 users and movies, newest first: after
    a class has made more than 200, the one just made is still in the
    lists and in the booking form (with oldest first it never appeared).
    Its own app, so the shared run's lists stay short for the other tests."""
    from playwright.sync_api import expect

    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    servers = own_app(redis_server.url + "/8")
    try:
        app, t = servers[-1].url, tag()
        with api_client(app) as api:
            for i in range(201):
                user(api, f"수강생 {t} {i}")
                movie(api, f"상영작 {t} {i}")
            newest_user, newest_movie = user(api, f"마지막 수강생 {t}"), movie(api, f"마지막 상영작 {t}")
        with chromium() as browser:
            page, console = open_page(browser, app + "/", VIEWPORTS["desktop"])
            expect(page.get_by_test_id("user-item").first).to_contain_text(newest_user["email"])
            expect(page.get_by_test_id("movie-item").first).to_contain_text(newest_movie["title"])
            page.get_by_test_id("booking-user").select_option(value=newest_user["id"])
            page.get_by_test_id("booking-movie").select_option(value=newest_movie["id"])
            page.get_by_test_id("booking-seats").fill("2")
            page.get_by_test_id("booking-submit").click()
            new = page.locator("[data-testid=booking-item].just-made")
            expect(new).to_contain_text(f"마지막 수강생 {t} → 마지막 상영작 {t}")
            assert console.unexpected() == []
    finally:
        for server in reversed(servers):
            server.stop()
