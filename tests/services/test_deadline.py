"""A 504 that booked (issue 25, item 3), against real processes started by
the launcher (bench/procs.py: redis-server and the four services as the
images run them), with booking-service paused by SIGSTOP (its whole process
tree: Granian's supervisor and worker).

Before: the api-gateway answered 504 after its 5 s, booking-service
carried on when it resumed and confirmed the booking, though the OpenAPI
said a 504 holds nothing; a page making a new Idempotency-Key per click then
booked twice.

Now both hold (services/common/deadline.py, docs/scale.md):
1. the gateway's deadline outlives booking-service's own: the gateway sends
   its deadline, booking-service works to 0.5 s before it, and its confirm
   is fenced on Redis' clock, so nothing is confirmed after the gateway
   gave up;
2. a 504 (or 503, or a lost connection) means "unknown": the same
   Idempotency-Key, sent again, gives the one definite answer, and never a
   second booking.
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator

import httpx
import pytest

from bench import procs


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.Stack]:
    stack = procs.Stack(tmp_path_factory.mktemp("deadline"))
    stack.start(progress=lambda _msg: None)
    yield stack
    stack.stop()


def _signal_tree(stack: procs.Stack, name: str, sig: int) -> None:
    for pid in procs.process_tree(stack.services[name].pid):
        os.kill(pid, sig)


def _setup(http: httpx.Client, gw: str, capacity: int = 5) -> tuple[str, str]:
    tag = uuid.uuid4().hex[:8]
    user = http.post(f"{gw}/users/", json={"name": "Kim", "email": f"kim-{tag}@example.com"}).json()["id"]
    movie = http.post(f"{gw}/movies/", json={"title": "T", "genre": "g", "year": 2000, "capacity": capacity}).json()["id"]
    return user, movie


def _bookings(http: httpx.Client, gw: str, user: str) -> list[dict]:
    r = http.get(f"{gw}/bookings/", params={"userId": user, "limit": "500"})
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.mark.timeout(180)
def test_nothing_is_confirmed_after_the_gateways_504(live: procs.Stack) -> None:
    gw = live.url("api-gateway")
    with httpx.Client(timeout=30) as http:
        user, movie = _setup(http, gw)
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        body = {"userId": user, "movieId": movie, "seats": 2}
        _signal_tree(live, "booking-service", signal.SIGSTOP)
        try:
            started = time.monotonic()
            r = http.post(f"{gw}/bookings/", json=body, headers=key)
            waited = time.monotonic() - started
        finally:
            _signal_tree(live, "booking-service", signal.SIGCONT)
        assert r.status_code == 504, r.text
        assert 4.5 < waited < 8, waited
        # booking-service now reads the request, past the deadline the
        # gateway sent with it: it must not book.
        time.sleep(3)
        assert _bookings(http, gw, user) == []
        assert http.get(f"{gw}/movies/{movie}").json()["availableSeats"] == 5
        # The same key again: one definite answer, one booking.
        again = http.post(f"{gw}/bookings/", json=body, headers=key)
        assert again.status_code == 201, again.text
        once_more = http.post(f"{gw}/bookings/", json=body, headers=key)
        assert once_more.status_code == 201 and once_more.json()["id"] == again.json()["id"]
        assert [b["id"] for b in _bookings(http, gw, user)] == [again.json()["id"]]
        assert http.get(f"{gw}/movies/{movie}").json()["availableSeats"] == 3


@pytest.mark.timeout(300)
@pytest.mark.parametrize("pause_after_ms", [0, 10, 30, 80])
def test_a_504_then_the_same_key_gives_exactly_one_answer(live: procs.Stack, pause_after_ms: int) -> None:
    """booking-service paused at some point of the request (before it read
    it, or half-way, or after the confirm): whatever the first answer was,
    retrying with the same key until a definite answer leaves exactly one
    booking, and the seats match it."""
    import threading

    gw = live.url("api-gateway")
    with httpx.Client(timeout=30) as http:
        user, movie = _setup(http, gw)
        key = {"Idempotency-Key": f"k-{uuid.uuid4().hex}"}
        body = {"userId": user, "movieId": movie, "seats": 1}
        first: list[httpx.Response] = []
        sender = threading.Thread(target=lambda: first.append(http.post(f"{gw}/bookings/", json=body, headers=key)))
        sender.start()
        time.sleep(pause_after_ms / 1000)
        _signal_tree(live, "booking-service", signal.SIGSTOP)
        try:
            sender.join(timeout=20)
        finally:
            _signal_tree(live, "booking-service", signal.SIGCONT)
        assert first and first[0].status_code in (201, 504), first[0].text if first else "no answer"
        answers = [first[0].status_code]
        while answers[-1] in (503, 504):  # the page's contract: same key until a definite answer
            answers.append(http.post(f"{gw}/bookings/", json=body, headers=key).status_code)
            assert len(answers) < 5, answers
        assert answers[-1] == 201, answers
        time.sleep(2)  # anything still in flight lands
        held = 5 - http.get(f"{gw}/movies/{movie}").json()["availableSeats"]
        listed = _bookings(http, gw, user)
        assert [b["status"] for b in listed] == ["confirmed"], (answers, listed)
        assert held == 1, (answers, listed)


def test_the_deadline_a_service_works_to() -> None:
    """services/common/deadline.py: the service's own budget, or sooner when
    the gateway (absolute) or an Envoy route timeout (relative) says so."""
    from services.common import deadline

    now = 1000.0
    assert deadline.of({}, 4.5, now) == 1004.5
    assert deadline.of({"x-request-deadline": "1003.000"}, 4.5, now) == 1002.5  # gateway's, less 0.5 s
    assert deadline.of({"x-request-deadline": "1010"}, 4.5, now) == 1004.5  # its own is sooner
    assert deadline.of({"x-envoy-expected-rq-timeout-ms": "3000"}, 4.5, now) == 1002.5  # Envoy's 3 s, less 0.5
    assert deadline.of({"x-envoy-expected-rq-timeout-ms": "1000"}, 4.5, now) == 1000.8  # less a fifth
    both = {"x-request-deadline": "1002.0", "x-envoy-expected-rq-timeout-ms": "3000"}
    assert deadline.of(both, 4.5, now) == 1001.5
    for junk in ("", "soon", "nan", "inf", "-inf", "1e999", "9" * 40):
        assert deadline.of({"x-request-deadline": junk, "x-envoy-expected-rq-timeout-ms": junk}, 4.5, now) == 1004.5
    assert deadline.of({"x-envoy-expected-rq-timeout-ms": "0"}, 4.5, now) == 1004.5  # 0: no timeout
