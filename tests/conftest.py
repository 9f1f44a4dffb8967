"""Fixtures shared by the whole suite: one real redis-server per session."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from services.launcher import free_port
from services.redis_server import RedisServer


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


def pytest_report_header(config: pytest.Config) -> list[str]:
    """The real engines the e2e suite runs (tests/e2e), with their versions."""
    from sim import tools

    found = tools.locate()
    if not found.get("pulumi"):
        return ["e2e tools: not built (uv run theater tools build)"]
    return [f"e2e tools: pulumi {tools.version_of('pulumi', found['pulumi'])} ({found['pulumi']}), "
            f"kube-apiserver {tools.version_of('kube-apiserver', found['kube-apiserver'] or '')}"]


_SESSION_STARTED: list[float] = []
_TIMINGS = Path(__file__).resolve().parents[1] / "test-artifacts" / "e2e" / "timings.json"


def pytest_sessionstart(session: pytest.Session) -> None:
    _SESSION_STARTED.append(time.monotonic())
    _TIMINGS.unlink(missing_ok=True)  # this run's figures only


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:  # noqa: ANN001
    """Wall times the e2e suite recorded in this run (test-artifacts/e2e/timings.json)."""
    if not _TIMINGS.exists():
        return
    terminalreporter.section("e2e wall times")
    for name, entry in json.loads(_TIMINGS.read_text()).items():
        terminalreporter.write_line(f"{name:45} {entry['seconds']:8.1f}s  {entry['note']}")
    if _SESSION_STARTED:
        terminalreporter.write_line(f"{'whole pytest session':45} {time.monotonic() - _SESSION_STARTED[0]:8.1f}s")
