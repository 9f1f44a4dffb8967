"""Every form's error cases in a real browser, at desktop and phone size:
each bad field gets one Korean sentence (no English, no regex), the box
leaves once the fields are fixed, the page stays as wide as the screen,
and the console stays clean."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.browser import VIEWPORTS, broken_korean_words, chromium, horizontal_overflow, open_page, shot, untranslated

CHECK = "입력값을 확인하세요."


def submit_and_read(page: Any, form: str) -> tuple[str, list[str]]:
    from playwright.sync_api import expect

    page.get_by_test_id(f"{form}-submit").click()
    box = page.get_by_test_id(f"{form}-error")
    expect(box).to_be_visible()
    headline = box.get_by_test_id("error-headline").inner_text()
    return headline, box.locator("li").all_inner_texts()


def check_box(page: Any, form: str) -> None:
    """What a newcomer sees: Korean only, nothing wider than the screen,
    no Korean word cut in two."""
    text = page.get_by_test_id(f"{form}-error").inner_text()
    assert untranslated(text) == [], text
    assert horizontal_overflow(page) is None, horizontal_overflow(page)
    assert broken_korean_words(page) == []


def fill(page: Any, values: dict[str, str]) -> None:
    for testid, value in values.items():
        el = page.get_by_test_id(testid)
        if el.evaluate("e => e.tagName") == "SELECT":
            el.select_option(value=value)
        else:
            el.fill(value)


USER_OK = {"user-name": "김민수", "user-email": "ok@example.com"}
# (what to type, the sentences expected, what fixes it: one field at a time)
USER_CASES = [
    ({"user-name": "", "user-email": ""}, ["이름을 입력하세요.", "이메일을 입력하세요."], ["user-name", "user-email"]),
    ({"user-name": "   "}, ["이름을 입력하세요."], ["user-name"]),
    ({"user-name": "가" * 101}, ["이름은 100자 이하로 입력하세요."], ["user-name"]),
    ({"user-email": "not-an-email"}, ["이메일은 name@example.com 같은 형식으로 입력하세요."], ["user-email"]),
]
MOVIE_OK = {"movie-title": "기생충", "movie-genre": "드라마", "movie-year": "2019", "movie-capacity": "10"}
MOVIE_CASES = [
    (
        {"movie-title": "", "movie-genre": "", "movie-year": ""},
        ["제목을 입력하세요.", "장르를 입력하세요.", "개봉 연도를 입력하세요."],
        ["movie-title", "movie-genre", "movie-year"],
    ),
    ({"movie-year": "이천십구"}, ["개봉 연도는 정수로 입력하세요."], ["movie-year"]),
    ({"movie-year": "1500"}, ["개봉 연도는 1888 이상으로 입력하세요."], ["movie-year"]),
    ({"movie-capacity": "0"}, ["좌석 수는 1 이상으로 입력하세요."], ["movie-capacity"]),
    ({"movie-title": "가" * 201}, ["제목은 200자 이하로 입력하세요."], ["movie-title"]),
]


def run_cases(page: Any, form: str, ok: dict[str, str], cases: list) -> None:
    from playwright.sync_api import expect

    box = page.get_by_test_id(f"{form}-error")
    for typed, expected, fixes in cases:
        fill(page, {**ok, **typed})
        headline, lines = submit_and_read(page, form)
        assert (headline, lines) == (CHECK, expected), typed
        check_box(page, form)
        for i, testid in enumerate(fixes):
            assert page.get_by_test_id(testid).get_attribute("class") == "invalid", testid
            fill(page, {testid: ok[testid]})
            if i < len(fixes) - 1:  # the other lines stay until their fields are fixed
                expect(box.locator("li")).to_have_count(len(fixes) - i - 1)
        expect(box).to_be_hidden()


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_form_errors_are_korean_sentences_that_leave_when_fixed(local_app: str, size: str) -> None:
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    taken = f"taken-{tag}@example.com"
    with httpx.Client(base_url=local_app, timeout=10) as api:
        user = api.post("/users/", json={"name": f"예약자 {tag}", "email": f"booker-{tag}@example.com"}).json()
        gone = api.post("/users/", json={"name": f"탈퇴자 {tag}", "email": f"gone-{tag}@example.com"}).json()
        movie = api.post("/movies/", json={"title": f"괴물 {tag}", "genre": "스릴러", "year": 2006, "capacity": 2}).json()
        assert api.post("/users/", json={"name": "선점", "email": taken}).status_code == 201

    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", VIEWPORTS[size])
        expect(page.get_by_test_id("booking-user").locator(f"option[value='{gone['id']}']")).to_have_count(1)
        expect(page.get_by_test_id("booking-movie").locator(f"option[value='{movie['id']}']")).to_have_count(1)

        run_cases(page, "user", {**USER_OK, "user-email": f"ok-{tag}-{size}@example.com"}, USER_CASES[:1])
        # A required field stays flagged while it is still blank.
        fill(page, {"user-name": "", "user-email": "x@example.com"})
        submit_and_read(page, "user")
        fill(page, {"user-name": "   "})
        expect(page.get_by_test_id("user-error")).to_contain_text("이름을 입력하세요.")
        shot(page, f"gateway-ui-form-error-{size}-{VIEWPORTS[size]['width']}x{VIEWPORTS[size]['height']}.png")
        fill(page, {"user-name": "김"})
        expect(page.get_by_test_id("user-error")).to_be_hidden()
        run_cases(page, "user", {**USER_OK, "user-email": f"ok-{tag}-{size}@example.com"}, USER_CASES[1:])

        # The email of another user (409): said in Korean, gone once the email changes.
        fill(page, {"user-name": "김", "user-email": taken})
        headline, lines = submit_and_read(page, "user")
        assert (headline, lines) == ("이미 같은 이메일로 등록된 사용자가 있습니다. 다른 이메일을 입력하세요.", [])
        check_box(page, "user")
        fill(page, {"user-email": f"new-{taken}"})
        expect(page.get_by_test_id("user-error")).to_be_hidden()

        run_cases(page, "movie", MOVIE_OK, MOVIE_CASES)

        booking_ok = {"booking-user": user["id"], "booking-movie": movie["id"], "booking-seats": "1"}
        page.get_by_test_id("booking-seats").fill("")
        headline, lines = submit_and_read(page, "booking")
        assert (headline, lines) == (CHECK, ["사용자를 고르세요.", "영화를 고르세요.", "좌석 수를 입력하세요."])
        check_box(page, "booking")
        fill(page, booking_ok)
        expect(page.get_by_test_id("booking-error")).to_be_hidden()
        run_cases(
            page,
            "booking",
            booking_ok,
            [
                ({"booking-seats": "0"}, ["좌석 수는 1 이상으로 입력하세요."], ["booking-seats"]),
                ({"booking-seats": "11"}, ["좌석 수는 10 이하로 입력하세요."], ["booking-seats"]),
                ({"booking-seats": "두 장"}, ["좌석 수는 정수로 입력하세요."], ["booking-seats"]),
            ],
        )

        # More seats than are left (the movie has 2).
        fill(page, {**booking_ok, "booking-seats": "3"})
        headline, lines = submit_and_read(page, "booking")
        assert headline == "남은 좌석이 부족합니다. 좌석 수를 줄이거나 다른 영화를 고르세요." and lines == []
        check_box(page, "booking")
        fill(page, {"booking-seats": "1"})
        expect(page.get_by_test_id("booking-error")).to_be_hidden()

        # A user deleted by someone else after the page listed them. The page's
        # 5 s refresh would drop the option, so its user list stays the one it
        # had (as between two refreshes): the deletion is seen only by the POST.
        listed = page.evaluate("() => [...document.querySelectorAll('[data-testid=booking-user] option')].map(o => o.value)")
        assert gone["id"] in listed

        def stale_users(route: Any) -> None:
            answer = route.fetch()
            body = answer.json()
            body["items"] = [*body["items"], gone]
            route.fulfill(response=answer, json=body)

        page.route(lambda url: url.startswith(local_app + "/users/?"), stale_users)
        with httpx.Client(base_url=local_app, timeout=10) as api:
            assert api.delete(f"/users/{gone['id']}").status_code == 204
        fill(page, {**booking_ok, "booking-user": gone["id"]})
        headline, lines = submit_and_read(page, "booking")
        assert headline.startswith("고른 사용자를 찾을 수 없습니다.") and lines == []
        check_box(page, "booking")
        fill(page, {"booking-user": user["id"]})
        expect(page.get_by_test_id("booking-error")).to_be_hidden()

        assert console.unexpected() == []
