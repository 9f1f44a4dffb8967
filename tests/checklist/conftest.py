"""Fixtures for the checklist commands (doctor, verify, load)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from services.launcher import LiveServer
from services.redis_server import RedisServer
from tests.checklist.servers import MeshLike, Telemetry
from tests.gateway.conftest import theater_local


@pytest.fixture(scope="session")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway URL of a `theater local` run (subprocess, shifted ports, fresh data), as a newcomer starts it."""
    yield from theater_local(tmp_path_factory)


@pytest.fixture(scope="session")
def mesh_like(redis_server: RedisServer) -> Iterator[MeshLike]:
    mesh = MeshLike(redis_server.url).start()
    yield mesh
    mesh.stop()


@pytest.fixture
def telemetry() -> Iterator[tuple[Telemetry, str]]:
    data = Telemetry()
    with LiveServer(data.app()) as server:
        yield data, server.url
