"""Fixtures for the checklist commands (doctor, verify, load)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import catalog
from services.launcher import LiveServer
from services.redis_server import RedisServer
from tests.checklist.servers import MeshLike, Telemetry
from tests.gateway.conftest import _free_offset, theater_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The gateway URL of a `theater local` run (subprocess, shifted ports, fresh data), as a newcomer starts it."""
    offset = _free_offset()
    data = tmp_path_factory.mktemp("checklist-local")
    log_path = data / "theater-local.log"
    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "REMOTE_KUBECONFIG", "LOCAL_KUBECONFIG")}
    with open(log_path, "w") as log:
        proc = subprocess.Popen([*theater_command(), "local", "--port-offset", str(offset), "--data-dir", str(data)],
                                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url = catalog.GATEWAY.local_url("127.0.0.1", offset)
    try:
        deadline = time.monotonic() + 120  # four services start one after another; slow on a busy machine
        while "web UI" not in log_path.read_text():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"theater local did not start ({proc.returncode}):\n{log_path.read_text()}")
            time.sleep(0.2)
        yield url
    finally:
        proc.send_signal(signal.SIGINT)  # what Ctrl-C does
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


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
