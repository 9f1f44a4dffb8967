"""The services' Redis client (services/common/redis.py) against a real
redis-server that stops answering (SIGSTOP, as a stalled node): every
command still fails within the Redis timeout, with redis's TimeoutError
(which the apps answer as 503), whether the stall catches it reading the
answer or still sending a large command, and the client works again once
Redis resumes."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest
import redis.exceptions

from services.common import redis as redis_mod
from services.common.settings import Settings
from services.redis_server import RedisServer

TIMEOUT = 0.5


def client(server: RedisServer):
    return redis_mod.connect(Settings(service="movie-service", redis_url=server.url + "/0", redis_timeout=TIMEOUT))


async def _stalled(server: RedisServer, command) -> tuple[type[BaseException] | None, float]:
    r = client(server)
    try:
        await r.set("warm", "1")  # a pooled connection, already open
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        try:
            await command(r)
            error = None
        except BaseException as exc:  # noqa: BLE001 (the type is the finding)
            error = type(exc)
        elapsed = time.monotonic() - start
        os.kill(server.proc.pid, signal.SIGCONT)
        assert await r.get("warm") == "1"  # usable again once Redis resumes
        return error, elapsed
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        await r.aclose()


def test_uses_the_connection_without_a_task_per_command_and_hiredis(private_redis: RedisServer) -> None:
    from redis.utils import HIREDIS_AVAILABLE

    assert client(private_redis).connection_pool.connection_class is redis_mod.BoundedConnection
    assert HIREDIS_AVAILABLE  # a runtime dependency: redis-py parses replies in C


def test_a_stall_while_reading_the_answer_fails_within_the_timeout(private_redis: RedisServer) -> None:
    error, elapsed = asyncio.run(_stalled(private_redis, lambda r: r.get("warm")))
    assert error is redis.exceptions.TimeoutError
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2.0


@pytest.mark.parametrize("megabytes", [32])
def test_a_stall_while_sending_a_large_command_fails_within_the_timeout(private_redis: RedisServer, megabytes: int) -> None:
    # Far more than the kernel's socket buffers take: the write itself waits.
    value = "x" * (megabytes * 1024 * 1024)
    error, elapsed = asyncio.run(_stalled(private_redis, lambda r: r.set("big", value)))
    assert error is redis.exceptions.TimeoutError
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2.0
