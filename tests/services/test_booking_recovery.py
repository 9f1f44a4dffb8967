"""The booking flow's answers to single faults, one at a time and
deterministic (the seeded mixtures run in test_fault_runs.py): a peer that
did the work but answered 503, a request that died half-way, a late
confirm, a replay after a cancel."""

from __future__ import annotations

import asyncio
import time

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.booking_ledger import Ledger
from services.common import redis as redis_mod
from services.common.settings import Settings
from services.common.store import Store
from services.launcher import LiveServer
from tests.services.conftest import Stack, poll, start_stack


def work_then_503(movie_url: str, failing: dict[str, bool]) -> Starlette:
    """movie-service behind a sidecar that loses its answers: each request is
    forwarded (the work is done) and, while failing["on"], answered 503."""

    async def forward(request: Request) -> Response:
        async with httpx.AsyncClient() as client:
            reply = await client.request(request.method, movie_url + request.url.path, content=await request.body(),
                                         headers={"content-type": "application/json"})
        if failing["on"]:
            return JSONResponse({"error": {"code": "unavailable", "message": "injected"}}, status_code=503)
        return Response(reply.content, status_code=reply.status_code, headers={"content-type": "application/json"})

    return Starlette(routes=[Route("/{path:path}", forward, methods=["GET", "POST", "DELETE"])])


def test_movie_service_503_after_holding_seats_leaves_nothing_held(stack: Stack, redis_url: str) -> None:
    failing = {"on": True}
    with LiveServer(work_then_503(stack.movies, failing)) as sidecar:
        servers, urls = start_stack(redis_url, user_url=stack.users, movie_url=sidecar.url, reconcile_interval=0.2)
        try:
            user, movie = stack.user()["id"], stack.movie(capacity=6)["id"]
            body = {"userId": user, "movieId": movie, "seats": 4}
            r = stack.http.post(urls["bookings"] + "/bookings", json=body, headers={"Idempotency-Key": "k1"})
            assert r.status_code == 503 and "movie-service" in r.json()["error"]["message"]
            # The reservation landed, the answer was lost: the seats come back.
            assert poll(lambda: stack.available(movie) == 6)
            assert stack.all_bookings() == []
            failing["on"] = False
            again = stack.http.post(urls["bookings"] + "/bookings", json=body, headers={"Idempotency-Key": "k1"})
            assert again.status_code == 201 and again.json()["status"] == "confirmed"
            assert stack.available(movie) == 2
            assert [b["id"] for b in stack.all_bookings()] == [again.json()["id"]]
        finally:
            for s in servers:
                s.stop()


def test_replay_after_cancel_answers_the_booking_as_cancelled(stack: Stack) -> None:
    user, movie = stack.user()["id"], stack.movie(capacity=5)["id"]
    first = stack.book(user, movie, 2, headers={"Idempotency-Key": "then-cancel"})
    assert first.status_code == 201
    assert stack.http.delete(f"{stack.bookings}/bookings/{first.json()['id']}").status_code == 204
    replay = stack.book(user, movie, 2, headers={"Idempotency-Key": "then-cancel"})
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == {**first.json(), "status": "cancelled"}
    assert stack.available(movie) == 5  # and it booked nothing again
    assert len(stack.all_bookings()) == 1


def _ledger(redis_url: str) -> tuple[redis_mod.Redis, Ledger]:
    client = redis_mod.connect(Settings(service="booking-service", redis_url=redis_url))
    return client, Ledger(client, Store(client, "bookings", "b"), grace=0.1)


def _record(booking_id: str, movie_id: str, seats: int = 2) -> dict:
    return {"id": booking_id, "userId": "u_x", "movieId": movie_id, "seats": seats, "status": "pending", "createdAt": "t"}


def test_a_late_confirm_cannot_revive_a_failed_booking(redis_url: str) -> None:
    async def scenario() -> list:
        client, ledger = _ledger(redis_url)
        now = time.time()
        await ledger.begin(_record("b_aaaaaaaaaa", "m_1"), now, None, "fp")
        out = [await ledger.fail("b_aaaaaaaaaa", now, nothing_held=False)]
        out.append(await ledger.confirm("b_aaaaaaaaaa", "u_x", "m_1", now))  # the late one
        out.append(await ledger.cancel("b_aaaaaaaaaa", now))
        out.append(await client.zrange("bookings:index", 0, -1))
        out.append(await client.zrange(ledger.settle, 0, -1))
        await client.aclose()
        return out

    failed, confirm, cancel, index, settle = asyncio.run(scenario())
    assert failed[0] == "failed_now"
    assert confirm[0] == "failed"
    assert cancel[0] == "missing"  # a failed attempt is no booking
    assert index == []
    assert settle == ["b_aaaaaaaaaa:m_1"]


def test_reconciler_fails_an_abandoned_booking_and_frees_its_seats(stack: Stack, redis_url: str) -> None:
    """A request died after movie-service held its seats: its pending record
    outlives its deadline, the reconciler fails it and releases them."""
    movie = stack.movie(capacity=5)["id"]

    async def begin() -> None:
        client, ledger = _ledger(redis_url)
        await ledger.begin(_record("b_bbbbbbbbbb", movie, 3), time.time(), None, "fp")
        await client.aclose()

    asyncio.run(begin())
    r = stack.http.post(f"{stack.movies}/internal/movies/{movie}/reservations", json={"bookingId": "b_bbbbbbbbbb", "seats": 3})
    assert r.status_code == 201 and stack.available(movie) == 2
    assert poll(lambda: stack.available(movie) == 5)
    assert stack.http.get(f"{stack.bookings}/bookings/b_bbbbbbbbbb").status_code == 404
    # A late duplicate of the reservation cannot hold the seats again.
    r = stack.http.post(f"{stack.movies}/internal/movies/{movie}/reservations", json={"bookingId": "b_bbbbbbbbbb", "seats": 3})
    assert r.status_code == 409 and stack.available(movie) == 5


def test_a_sold_out_refusal_is_final_for_that_booking_id(stack: Stack) -> None:
    movie = stack.movie(capacity=2)["id"]
    url = f"{stack.movies}/internal/movies/{movie}/reservations"
    assert stack.http.post(url, json={"bookingId": "b_big", "seats": 3}).status_code == 409
    # Seats freed later do not let a late duplicate of that request hold them.
    assert stack.http.post(url, json={"bookingId": "b_big", "seats": 1}).status_code == 409
    assert stack.available(movie) == 2
