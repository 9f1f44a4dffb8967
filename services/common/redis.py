"""The Redis client each service uses for its own key space."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.settings import Settings


def connect(settings: Settings) -> aioredis.Redis:
    """A pooled client; it connects lazily, so building it never fails.

    Short timeouts make an outage show up as a quick 503 instead of a
    request that hangs.

    No client-side retries (redis-py 6+ retries three times by default): a
    command that timed out may still run once Redis resumes, so resending it
    could run it twice. Every write the services make is safe to *repeat on
    purpose* (fenced Lua scripts, see services/booking_ledger.py), but a
    blind resend is never what the caller asked for. A pooled connection
    that Redis closed (a restart) is detected and replaced when it is
    checked out of the pool, before any command is sent on it.
    """
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), retries=0),
        health_check_interval=30,
        max_connections=200,
    )
