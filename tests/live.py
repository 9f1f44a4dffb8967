"""Real servers for tests: a Starlette app under uvicorn on a free port, in a
background thread, reachable over real HTTP. (The services themselves run
under Granian, services/serve.py: what depends on the server, its time and
size limits, is tested against `python -m services.serve` processes in
tests/services/test_server_limits.py; uvicorn here only hosts apps built
in the test process.)"""

from __future__ import annotations

import threading
import time

import uvicorn
from starlette.applications import Starlette

from services.redis_server import free_port, wait_for_port


class LiveServer:
    def __init__(self, app: Starlette, port: int | None = None) -> None:
        self.app = app
        self.port = port or free_port()
        self.server: uvicorn.Server | None = None
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> LiveServer:
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on", timeout_graceful_shutdown=1
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start on port {self.port}")
            time.sleep(0.02)
        wait_for_port(self.port)
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(10)
        self.server = None
        self.thread = None

    def __enter__(self) -> LiveServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
