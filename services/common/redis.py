"""The Redis client each service uses for its own key space."""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from redis.asyncio.connection import Connection
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from services.common.settings import Settings


class BoundedConnection(Connection):
    """redis-py's TCP connection, with the same deadline on sending a
    command (socket_timeout) enforced by `asyncio.timeout` rather than
    `asyncio.wait_for`.

    Why: on Python 3.11, `wait_for` wraps the write in a new Task, for every
    command, even though the write almost never waits (it goes to the
    kernel's buffer). That was the largest single cost redis-py added to a
    read (bench/findings.md). A timeout scope bounds the same thing (the
    write, and the health-check PING that may precede it) without a Task.
    Reading the answer keeps redis-py's own deadline (already a timeout
    scope). A stalled Redis still fails the command with redis's
    TimeoutError within socket_timeout, and the connection is dropped, as
    before (tests/services/test_redis_client.py).
    """

    async def send_packed_command(self, command: Any, check_health: bool = True) -> None:
        timeout = self.socket_timeout
        if not timeout:
            await super().send_packed_command(command, check_health)
            return
        self.socket_timeout = None  # so the base class adds no wait_for of its own
        try:
            async with asyncio.timeout(timeout):
                await super().send_packed_command(command, check_health)
        except TimeoutError:  # the base class has already dropped the connection
            raise redis.exceptions.TimeoutError("Timeout writing to socket") from None
        finally:
            self.socket_timeout = timeout


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

    Replies are parsed by hiredis (C) when it is installed, as it is in the
    image: a page of 50 movies is an MGET of 100 values, which redis-py's
    pure-Python parser read at about a third of the speed.
    """
    extra: dict[str, Any] = {}
    if settings.redis_url.startswith("redis://"):  # TCP (rediss:// and unix:// keep their own classes)
        extra["connection_class"] = BoundedConnection
    return aioredis.Redis.from_url(
        settings.redis_url,
        decode_responses=True,
        socket_timeout=settings.redis_timeout,
        socket_connect_timeout=settings.redis_timeout,
        retry=Retry(NoBackoff(), retries=0),
        health_check_interval=30,
        max_connections=200,
        **extra,
    )
