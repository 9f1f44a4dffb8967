"""Fixtures shared by the whole suite: one real redis-server per session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis

from services.redis_server import RedisServer, free_port


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = RedisServer(tmp_path_factory.mktemp("redis"), free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server: RedisServer) -> Iterator[str]:
    """A clean Redis database for one test (flushed before use)."""
    url = redis_server.url + "/0"
    client = redis.Redis.from_url(url)
    client.flushdb()
    client.close()
    yield url
