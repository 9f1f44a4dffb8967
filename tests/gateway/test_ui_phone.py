"""The page as a newcomer first sees it, on a 390x844 phone and a 1280x800
laptop: nothing wider than the screen, Korean words whole, no console
error (the favicon included), a calm local-run panel; and deleting or
cancelling asks first, in Korean."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx
import pytest

from tests.gateway.browser import (
    PHONE,
    VIEWPORTS,
    broken_korean_words,
    chromium,
    horizontal_overflow,
    open_page,
    shot,
    untranslated,
)


def seed(base: str) -> dict[str, Any]:
    """A user, a movie and a booking, with names long enough to wrap (and a
    tag of digits, so no Latin letters reach the texts checked for English)."""
    tag = str(uuid.uuid4().int)[:6]
    with httpx.Client(base_url=base, timeout=10) as api:
        user = api.post("/users/", json={"name": f"김민수 {tag}", "email": f"minsu.kim-{tag}@example.com"}).json()
        movie = api.post(
            "/movies/", json={"title": f"헤어질 결심 그리고 남겨진 이야기 {tag}", "genre": "로맨스 미스터리", "year": 2022, "capacity": 40}
        ).json()
        booking = api.post("/bookings/", json={"userId": user["id"], "movieId": movie["id"], "seats": 2}).json()
    return {"user": user, "movie": movie, "booking": booking}


@pytest.mark.browser
@pytest.mark.parametrize("size", VIEWPORTS)
def test_first_look_fits_the_screen(local_app: str, size: str) -> None:
    from playwright.sync_api import expect

    data = seed(local_app)
    viewport = VIEWPORTS[size]
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", viewport)
        expect(page.get_by_test_id("booking-item").filter(has_text=data["movie"]["title"])).to_have_count(1)
        expect(page.get_by_test_id("local-service")).to_have_count(4)
        expect(page.get_by_test_id("whoami-row")).to_have_count(3)
        page.wait_for_load_state("networkidle")

        assert page.evaluate("getComputedStyle(document.body).wordBreak") == "keep-all"
        assert horizontal_overflow(page) is None, horizontal_overflow(page)
        assert broken_korean_words(page) == []
        # The local run, calmly: no cluster cards, nothing red, no English sentence.
        note = page.get_by_test_id("local-note")
        expect(note).to_contain_text("이 컴퓨터에서 로컬로 실행 중입니다")
        assert untranslated(note.inner_text()) == ["theater", "local", "ctx1", "ctx2", "Deployment"]
        expect(page.get_by_test_id("cluster-card")).to_have_count(0)
        expect(page.get_by_test_id("status-panel")).not_to_contain_text("연결되지 않음")
        expect(page.get_by_test_id("status-panel").locator(".badge.bad")).to_have_count(0)
        if viewport == PHONE:
            # The local-services table reads as labelled cards.
            first = page.get_by_test_id("local-service").first.locator("td").first
            assert first.evaluate("td => getComputedStyle(td, '::before').content") == '"서비스"'
        shot(page, f"gateway-ui-{size}-{viewport['width']}x{viewport['height']}.png")
        # Not a single console error: /favicon.ico included.
        assert console.errors == [] and console.failed == []


def confirm(page: Any, expect: Any, text: str, answer: str) -> None:
    dialog = page.get_by_test_id("confirm-dialog")
    expect(dialog).to_be_visible()
    expect(dialog.get_by_test_id("confirm-text")).to_contain_text(text)
    if answer == "esc":
        page.keyboard.press("Escape")
    else:
        dialog.get_by_test_id(f"confirm-{answer}").click()
    expect(dialog).to_be_hidden()


@pytest.mark.browser
def test_delete_and_cancel_ask_first(local_app: str) -> None:
    from playwright.sync_api import expect

    data = seed(local_app)
    user, movie = data["user"], data["movie"]
    with chromium() as browser:
        page, console = open_page(browser, local_app + "/", PHONE)
        user_item = page.get_by_test_id("user-item").filter(has_text=user["email"])
        movie_item = page.get_by_test_id("movie-item").filter(has_text=movie["title"])
        booking = page.get_by_test_id("booking-item").filter(has_text=movie["title"])
        expect(booking.get_by_test_id("booking-status")).to_have_text("확정")

        # Cancel: "그대로 두기" and Esc keep the booking.
        booking.get_by_test_id("booking-cancel").click()
        dialog = page.get_by_test_id("confirm-dialog")
        expect(dialog.get_by_test_id("confirm-title")).to_have_text("예약을 취소할까요?")
        expect(dialog.get_by_test_id("confirm-no")).to_be_focused()  # Enter keeps things
        assert untranslated(dialog.inner_text()) == []
        assert horizontal_overflow(page) is None and broken_korean_words(page) == []
        shot(page, "gateway-ui-confirm-phone-390x844.png", full_page=False)
        confirm(page, expect, f"{user['name']} → {movie['title']}, 2석 예약을 취소합니다", "no")
        booking.get_by_test_id("booking-cancel").click()
        confirm(page, expect, "2석 예약을 취소합니다", "esc")
        expect(booking.get_by_test_id("booking-status")).to_have_text("확정")
        expect(movie_item.get_by_test_id("movie-seats")).to_have_text("38 / 40")

        # Deleting the movie names its confirmed booking; "그대로 두기" keeps it.
        movie_item.get_by_test_id("movie-delete").click()
        expect(page.get_by_test_id("confirm-title")).to_have_text("영화를 삭제할까요?")
        confirm(page, expect, "확정된 예약이 1건(2석) 있으며, 삭제하면 함께 취소되고 좌석이 돌아갑니다.", "no")
        expect(movie_item).to_have_count(1)

        # A deletion the API refuses (409, e.g. confirmed bookings): said in Korean.
        def refuse(route: Any) -> None:
            if route.request.method != "DELETE":
                route.fallback()
                return
            body = {"error": {"code": "has_bookings", "message": "user has 1 confirmed booking; cancel it first"}}
            route.fulfill(status=409, content_type="application/json", body=json.dumps(body))

        page.route(f"**/users/{user['id']}", refuse)
        user_item.get_by_test_id("user-delete").click()
        expect(page.get_by_test_id("confirm-title")).to_have_text("사용자를 삭제할까요?")
        confirm(page, expect, f"{user['name']} ({user['email']}) 사용자를 삭제합니다.", "yes")
        error = page.get_by_test_id("user-error")
        expect(error.get_by_test_id("error-headline")).to_have_text(
            "이 사용자에게 확정된 예약이 있어 삭제할 수 없습니다. 예약을 먼저 취소하세요."
        )
        assert untranslated(error.inner_text()) == []
        expect(user_item).to_have_count(1)
        page.unroute(f"**/users/{user['id']}")

        # Confirmed: the booking is cancelled and its seats come back.
        booking.get_by_test_id("booking-cancel").click()
        confirm(page, expect, "2석 예약을 취소합니다", "yes")
        expect(booking.get_by_test_id("booking-status")).to_have_text("취소됨")
        expect(movie_item.get_by_test_id("movie-seats")).to_have_text("40 / 40")

        # Confirmed deletes: gone from the lists; the booking keeps both names.
        movie_item.get_by_test_id("movie-delete").click()
        confirm(page, expect, f"{movie['title']} (2022년) 영화를 삭제합니다.", "yes")
        expect(movie_item).to_have_count(0)
        user_item.get_by_test_id("user-delete").click()
        confirm(page, expect, "사용자를 삭제합니다.", "yes")
        expect(user_item).to_have_count(0)
        expect(booking.locator(".title")).to_have_text(f"{user['name']} → {movie['title']}")
        expect(booking.get_by_test_id("booking-gone")).to_have_text(" · 사용자 삭제됨, 영화 삭제됨")
        assert horizontal_overflow(page) is None
        assert console.unexpected() == []
