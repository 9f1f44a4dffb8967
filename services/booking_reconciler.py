"""booking-service's reconciler: a background loop in every replica that
settles what interrupted requests left behind. No leader and no lock: each
step is a fenced Lua script or an idempotent call, so replicas running it at
the same time only repeat work (claimed entries are skipped by the others
for a while, to keep that rare).

Each pass (every `reconcile_interval` seconds, default 1):

1. pending bookings past their deadline (the request that began them died,
   or timed out) are failed: they join the settle queue;
2. the settle queue (failed and cancelled bookings) is worked off: the seats
   are released at movie-service (idempotent; 204 or 404 "no such movie"
   both mean nothing is held any more), then the entry is dropped; an entry
   that could not be released is tried again after `peer_timeout + 1` s;
3. the deletion feeds of user-service and movie-service are followed: the
   bookings of a deleted user or movie are cancelled (and so join the queue).

Bound (defaults: peer timeout 5 s, Redis timeout 2 s, interval 1 s): a
booking left pending is failed at most deadline (peer + Redis timeout + 1 s
= 8 s) + one interval after it began, and its seats go back within one more
interval plus one release call; once the faulty peer or Redis answers again,
a release that failed is retried within peer timeout + 1 s. So every
invariant holds again at most ~25 s after a single fault ends (README).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from dataclasses import dataclass, field

from services import catalog
from services.booking_ledger import Ledger
from services.common import deletions
from services.common.errors import ApiError
from services.common.peers import Peers

log = logging.getLogger("theater")

USERS = "user-service"
MOVIES = "movie-service"


def reservation_path(movie_id: str, booking_id: str) -> str:
    """movie-service's path for one booking's seats (see movie_service.py)."""
    return f"{catalog.INTERNAL_PREFIX}/movies/{movie_id}/reservations/{booking_id}"


async def release(peers: Peers, ledger: Ledger, booking_id: str, movie_id: str, headers=None) -> bool:  # type: ignore[no-untyped-def]
    """Give a failed or cancelled booking's seats back and drop it from the
    settle queue; False when movie-service could not say it is done."""
    try:
        reply = await peers.request(MOVIES, "DELETE", reservation_path(movie_id, booking_id), headers or {})
    except ApiError as exc:
        log.info("seats of booking %s not released yet: %s", booking_id, exc.message)
        return False
    if reply.status_code not in (204, 404):  # 404: the movie is gone, and its seats with it
        log.info("seats of booking %s not released yet: movie-service answered %s", booking_id, reply.status_code)
        return False
    await ledger.settled(booking_id, movie_id)
    return True


@dataclass
class Counts:
    failed: int = 0
    released: int = 0
    cancelled_by_deletion: int = 0
    errors: list[str] = field(default_factory=list)


class Reconciler:
    def __init__(self, ledger: Ledger, peers: Peers, *, interval: float, retry_after: float) -> None:
        self.ledger = ledger
        self.peers = peers
        self.interval = interval
        self.retry_after = retry_after

    async def run_forever(self) -> None:
        while True:
            # Jitter, so replicas started together do not pass in lockstep.
            await asyncio.sleep(self.interval * random.uniform(0.5, 1.5))
            try:
                await self.once()
            except Exception as exc:  # Redis down, etc.: try again next pass
                log.info("reconcile pass stopped early: %s: %s", type(exc).__name__, exc)

    async def once(self) -> Counts:
        counts = Counts()
        now = time.time()
        for booking_id in await self.ledger.overdue(now):
            status, _ = await self.ledger.fail(booking_id, now, nothing_held=False)
            counts.failed += status == "failed_now"
        for booking_id, movie_id in await self.ledger.claim_settle(now, now + self.retry_after):
            counts.released += await release(self.peers, self.ledger, booking_id, movie_id)
        for kind, peer in (("users", USERS), ("movies", MOVIES)):
            counts.cancelled_by_deletion += await self.follow(kind, peer, now)
        # Cancelled just now: give their seats back in this pass.
        if counts.cancelled_by_deletion:
            for booking_id, movie_id in await self.ledger.claim_settle(now, now + self.retry_after):
                counts.released += await release(self.peers, self.ledger, booking_id, movie_id)
        return counts

    async def follow(self, kind: str, peer: str, now: float) -> int:
        cursor = await self.ledger.feed_cursor(kind)
        rows = await deletions.read(self.peers, peer, kind, cursor)
        cancelled = 0
        for deleted_id, seq in rows or []:
            cancelled += await self.ledger.forget(kind, deleted_id, now)
            await self.ledger.advance(kind, seq)
        return cancelled
