"""Deleting a user with 100k bookings (issue 25, items 1 and 2).

Before: booking-service's reconciler cancelled all of a deleted user's
bookings in one Lua script. At 30k bookings it took 710 ms; at 150k it never
finished within the client's 2 s Redis timeout, so the feed cursor never
moved, every pass ran it again, Redis answered BUSY to everyone and every
public call answered 503. Seats then came back at ~100 per second.

Now the cancels run in bounded batches (services/booking_ledger.py _FORGET,
500 per call, hard cap 2000, the progress kept in Redis) and the seats go
back through movie-service's batch release (500 per call). The scenario
itself is bench/deletion.py; `uv run python -m bench.deletion` prints the
same figures."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis as redis_py

from bench import deletion
from services import booking_reconciler, movie_service
from services.booking_ledger import CLAIM_CAP, FORGET_CAP, Ledger
from services.common import query, store
from services.common import redis as redis_mod
from services.common.settings import Settings
from services.common.store import Store


@pytest.mark.timeout(600)
def test_deleting_a_user_with_100k_bookings_keeps_the_app_answering(tmp_path) -> None:
    result = deletion.run(tmp_path, 100_000, movies_n=10)
    # Every booking cancelled and every seat back, well within the 60 s docs/consistency.md states.
    assert result.all_cancelled and result.settle_left == 0, result.line()
    assert result.cancel_s is not None and result.release_s is not None, result.line()
    assert result.release_s < 60, result.line()
    # Other users kept being served all along: no 503 (Redis BUSY), no
    # timeout, no error at all; their slowest requests stayed well under a
    # second on a busy 2-core machine (about 150 ms p99 when measured).
    assert set(result.others_statuses) <= {200, 201}, result.line()
    assert result.others_requests > 50, result.line()
    assert result.others_p99_ms is not None and result.others_p99_ms < 1000, result.line()
    # No single Redis command (a script call) held Redis for long: ~15 ms
    # on a quiet machine, up to ~90 ms on a loaded one (Redis descheduled
    # mid-script); the one script before took 3.5 s.
    assert result.slowest_redis_ms < 500, result.line()


def _seed_index(url: str, user_id: str, n: int) -> None:
    r = redis_py.Redis.from_url(url, decode_responses=True)
    pipe = r.pipeline(transaction=False)
    for i in range(n):
        bid = f"b_{i:010d}"
        pipe.set(f"bookings:{bid}", f'{{"id":"{bid}","userId":"{user_id}","movieId":"m_1","seats":1,"status":"confirmed"}}')
        pipe.zadd(f"bookings:by-user:{user_id}", {bid: i + 1})
    pipe.execute()
    r.close()


def test_one_forget_call_walks_one_bounded_batch_and_keeps_its_place(redis_url: str) -> None:
    """The script itself: one call walks at most `batch` bookings (and never
    more than FORGET_CAP, whatever the caller asks), and the next call
    starts after the last one it walked, so progress survives a restart."""
    _seed_index(redis_url, "u_many", 5000)

    async def scenario() -> list:
        client = redis_mod.connect(Settings(service="booking-service", redis_url=redis_url))
        ledger = Ledger(client, Store(client, "bookings", "b"), grace=30)
        keys = [ledger.gone("users"), ledger.store.index_by("user", "u_many"), ledger.settle,
                ledger.store.key("forget", "users", "u_many")]
        out = []
        for batch in (500, 10**6, 10**6, 10**6):
            out.append(await ledger._forget(keys=keys, args=["u_many", time.time(), "bookings", batch, 60]))
            out.append(await client.get(keys[3]))
            out.append(await client.execute("ZCARD", ledger.settle))
        await client.aclose()
        return out

    calls = asyncio.run(scenario())
    assert calls[0:3] == [[500, 0], "500", 500]
    assert calls[3:6] == [[FORGET_CAP, 0], "2500", 2500]  # asked for a million, walked FORGET_CAP
    assert calls[6:9] == [[FORGET_CAP, 0], "4500", 4500]
    assert calls[9:12] == [[500, 1], "done", 5000]


def test_forget_finishes_a_deletion_in_many_calls(redis_url: str) -> None:
    _seed_index(redis_url, "u_many", 1234)

    async def scenario() -> tuple[int, int]:
        client = redis_mod.connect(Settings(service="booking-service", redis_url=redis_url))
        ledger = Ledger(client, Store(client, "bookings", "b"), grace=30)
        cancelled = await ledger.forget("users", "u_many", time.time(), batch=100)
        again = await ledger.forget("users", "u_many", time.time(), batch=100)  # a second replica, or a restart
        await client.aclose()
        return cancelled, again

    assert asyncio.run(scenario()) == (1234, 0)


def test_batch_sizes_fit_the_scripts_caps() -> None:
    assert booking_reconciler.RELEASE_BATCH <= movie_service.RELEASE_CAP
    assert booking_reconciler.CLAIM <= CLAIM_CAP
    assert store.PAGE_CAP == query.MAX_LIMIT
