"""`theater local` in a subprocess: the whole app as a newcomer runs it
(Redis, the three services and the api-gateway), on shifted ports and a
fresh data directory so it never collides with a copy already running."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import catalog
from services.launcher import port_is_free, stop_process

ROOT = Path(__file__).resolve().parents[2]


def _free_offset() -> int:
    for _ in range(50):
        offset = random.randrange(20000, 40000, 10)
        ports = [catalog.REDIS.port + offset] + [s.port + offset for s in catalog.SERVICES.values()]
        ports += [v.local_port + offset for v in catalog.VERSIONS.values()]
        if all(port_is_free(p) for p in ports):
            return offset
    raise RuntimeError("no free block of ports for theater local")


def theater_command() -> list[str]:
    script = Path(sys.executable).with_name("theater")
    return [str(script)] if script.exists() else [sys.executable, "-m", "services.cli"]


@pytest.fixture(scope="session")
def local_app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of the api-gateway of a `theater local` run."""
    yield from theater_local(tmp_path_factory)


@pytest.fixture(scope="session")
def local_app_v2(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The same with movie-service v2 beside v1 (`theater local --with-v2`)."""
    yield from theater_local(tmp_path_factory, "--with-v2")


def theater_local(tmp_path_factory: pytest.TempPathFactory, *extra: str) -> Iterator[str]:
    offset = _free_offset()
    data = tmp_path_factory.mktemp("theater-data")
    log_path = data / "theater-local.log"
    log = open(log_path, "w")
    env = {k: v for k, v in os.environ.items() if k not in ("KUBERNETES_SERVICE_HOST", "REMOTE_KUBECONFIG", "LOCAL_KUBECONFIG")}
    proc = subprocess.Popen(
        [*theater_command(), "local", "--port-offset", str(offset), "--data-dir", str(data), *extra],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = catalog.GATEWAY.local_url("127.0.0.1", offset)
    deadline = time.monotonic() + 120  # four services, one after another, on a shared machine
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"theater local exited with {proc.returncode}:\n{log_path.read_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"theater local did not start the gateway at {url}:\n{log_path.read_text()}")
            try:
                # The banner is printed once every service is healthy.
                if "web UI" in log_path.read_text() and httpx.get(url + "/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.2)
        yield url
    finally:
        stop_process(proc, signal.SIGINT, 15)  # SIGINT: what Ctrl-C does
        log.close()
