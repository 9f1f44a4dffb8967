"""The Redis client each service uses for its own key space."""

from __future__ import annotations

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff

from services.common.settings import Settings


def connect(settings: Settings) -> aioredis.Redis:
    """A pooled client; it connects lazily, so building it never fails.

    Short timeouts and a single retry make an outage show up as a quick 503
    instead of a request that hangs.
    """
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), retries=1),
        health_check_interval=30,
        max_connections=200,
    )
