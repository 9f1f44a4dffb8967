"""No overselling, no double booking, no double release: concurrent
requests over real HTTP against real Redis."""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import redis

from tests.services.conftest import Stack


async def _parallel(requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    limits = httpx.Limits(max_connections=len(requests))
    async with httpx.AsyncClient(timeout=30, limits=limits) as client:
        return await asyncio.gather(
            *(client.request(method, url, **kwargs) for method, url, kwargs in requests)
        )


def parallel(requests: list[tuple[str, str, dict]]) -> list[httpx.Response]:
    return asyncio.run(_parallel(requests))


def test_50_parallel_bookings_of_2_seats_against_capacity_20(stack: Stack) -> None:
    users = [stack.user(f"fan{i}")["id"] for i in range(50)]
    movie = stack.movie(capacity=20)["id"]
    url = f"{stack.bookings}/bookings/"
    replies = parallel([("POST", url, {"json": {"userId": u, "movieId": movie, "seats": 2}}) for u in users])
    statuses = Counter(r.status_code for r in replies)
    assert statuses == {201: 10, 409: 40}, statuses
    assert all(r.json()["error"]["code"] == "sold_out" for r in replies if r.status_code == 409)
    assert stack.available(movie) == 0
    booked = stack.all_bookings(movieId=movie)
    assert len(booked) == 10 and sum(b["seats"] for b in booked) == 20
    assert {b["id"] for b in booked} == {r.json()["id"] for r in replies if r.status_code == 201}
    assert len(stack.all_bookings()) == 10


def test_mixed_seat_counts_never_oversell(stack: Stack) -> None:
    user = stack.user()["id"]
    movie = stack.movie(capacity=17)["id"]
    url = f"{stack.bookings}/bookings"
    wants = [1, 2, 3, 4, 5] * 8
    replies = parallel([("POST", url, {"json": {"userId": user, "movieId": movie, "seats": n}}) for n in wants])
    sold = sum(n for n, r in zip(wants, replies, strict=True) if r.status_code == 201)
    assert {r.status_code for r in replies} <= {201, 409}
    assert sold <= 17
    assert stack.available(movie) == 17 - sold
    assert sum(b["seats"] for b in stack.all_bookings()) == sold


def test_idempotency_key_retry_returns_the_first_booking(stack: Stack) -> None:
    user, movie = stack.user()["id"], stack.movie(capacity=10)["id"]
    headers = {"Idempotency-Key": "retry-1"}
    first = stack.book(user, movie, 3, headers=headers)
    assert first.status_code == 201
    assert "idempotent-replayed" not in first.headers
    again = stack.book(user, movie, 3, headers=headers)
    assert again.status_code == 201 and again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    # Same body, different JSON spelling: still the same request.
    spelled = stack.http.post(
        f"{stack.bookings}/bookings",
        content=f'{{ "seats": 3, "movieId": "{movie}",  "userId": "{user}" }}',
        headers={**headers, "content-type": "application/json"},
    )
    assert spelled.status_code == 201 and spelled.json() == first.json()
    assert len(stack.all_bookings()) == 1 and stack.available(movie) == 7
    # A different key is a different booking.
    assert stack.book(user, movie, 3, headers={"Idempotency-Key": "retry-2"}).json()["id"] != first.json()["id"]
    assert stack.available(movie) == 4


def test_idempotency_key_with_another_body_is_422(stack: Stack) -> None:
    user, movie = stack.user()["id"], stack.movie(capacity=10)["id"]
    assert stack.book(user, movie, 1, headers={"Idempotency-Key": "k"}).status_code == 201
    r = stack.book(user, movie, 2, headers={"Idempotency-Key": "k"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert len(stack.all_bookings()) == 1 and stack.available(movie) == 9


def test_concurrent_retries_with_one_key_book_once(stack: Stack) -> None:
    user, movie = stack.user()["id"], stack.movie(capacity=10)["id"]
    body = {"userId": user, "movieId": movie, "seats": 2}
    url = f"{stack.bookings}/bookings/"
    replies = parallel([("POST", url, {"json": body, "headers": {"Idempotency-Key": "burst"}})] * 20)
    assert [r.status_code for r in replies] == [201] * 20
    assert len({r.json()["id"] for r in replies}) == 1
    assert sum(r.headers.get("idempotent-replayed") == "true" for r in replies) == 19
    assert len(stack.all_bookings()) == 1 and stack.available(movie) == 8


def test_failed_attempt_does_not_pin_the_key(stack: Stack) -> None:
    """A failure leaves nothing behind, so a retry with the same key runs again."""
    user, movie = stack.user()["id"], stack.movie(capacity=2)["id"]
    blocker = stack.book(user, movie, 2).json()
    r = stack.book(user, movie, 2, headers={"Idempotency-Key": "after-cancel"})
    assert r.status_code == 409
    assert stack.http.delete(f"{stack.bookings}/bookings/{blocker['id']}").status_code == 204
    r = stack.book(user, movie, 2, headers={"Idempotency-Key": "after-cancel"})
    assert r.status_code == 201 and "idempotent-replayed" not in r.headers
    assert stack.available(movie) == 0


def test_idempotency_keys_expire_after_a_day(stack: Stack, redis_client: redis.Redis) -> None:
    user, movie = stack.user()["id"], stack.movie()["id"]
    assert stack.book(user, movie, 1, headers={"Idempotency-Key": "ttl"}).status_code == 201
    (key,) = redis_client.keys("bookings:idem:*")  # test-side inspection only
    assert 23 * 3600 < redis_client.ttl(key) <= 24 * 3600


def test_cancel_frees_seats_exactly_once_even_when_repeated(stack: Stack) -> None:
    user, movie = stack.user()["id"], stack.movie(capacity=10)["id"]
    booking = stack.book(user, movie, 4).json()
    other = stack.book(user, movie, 3).json()
    assert stack.available(movie) == 3
    for _ in range(3):
        assert stack.http.delete(f"{stack.bookings}/bookings/{booking['id']}").status_code == 204
    assert stack.available(movie) == 7
    # Concurrent cancels of another booking: its 3 seats come back once.
    url = f"{stack.bookings}/bookings/{other['id']}"
    replies = parallel([("DELETE", url, {})] * 20)
    assert {r.status_code for r in replies} == {204}
    assert stack.available(movie) == 10
    statuses = {b["id"]: b["status"] for b in stack.all_bookings()}
    assert statuses == {booking["id"]: "cancelled", other["id"]: "cancelled"}


def test_seats_cannot_be_released_twice_at_movie_service(stack: Stack) -> None:
    """The internal reservation endpoints are idempotent per booking id."""
    movie = stack.movie(capacity=5)["id"]
    url = f"{stack.movies}/internal/movies/{movie}/reservations"
    assert stack.http.post(url, json={"bookingId": "b_x", "seats": 2}).status_code == 201
    assert stack.http.post(url, json={"bookingId": "b_x", "seats": 2}).status_code == 200  # retry: held once
    assert stack.available(movie) == 3
    replies = parallel([("DELETE", f"{url}/b_x", {})] * 10)
    assert {r.status_code for r in replies} == {204}
    assert stack.available(movie) == 5
    # A reservation that arrives after its release does not hold seats.
    r = stack.http.post(url, json={"bookingId": "b_x", "seats": 2})
    assert r.status_code == 409 and r.json()["error"]["code"] == "released"
    assert stack.http.delete(f"{url}/b_late").status_code == 204  # released before it was held
    assert stack.http.post(url, json={"bookingId": "b_late", "seats": 1}).status_code == 409
    assert stack.available(movie) == 5


def test_bookings_confirm_with_short_timeouts(redis_url: str) -> None:
    """The confirm's fence (not after the deadline, nor after the Redis
    timeout less a margin for the clocks) leaves room to confirm with the
    short timeouts the fault runs use (peer 2 s, Redis 0.5 s): a fence of
    `now + Redis timeout - 0.5 s` refused every booking there."""
    import httpx

    from tests.services.conftest import start_stack

    servers, urls = start_stack(redis_url, peer_timeout=2.0, redis_timeout=0.5)
    try:
        with httpx.Client(timeout=10) as http:
            stack = Stack(http=http, **{k: urls[k] for k in ("users", "movies", "bookings")})
            user, movie = stack.user(), stack.movie(capacity=5)
            for _ in range(3):
                r = stack.book(user["id"], movie["id"], 1)
                assert r.status_code == 201 and r.json()["status"] == "confirmed", r.text
    finally:
        for s in reversed(servers):
            s.stop()
