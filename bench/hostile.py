"""Memory and hold time under hostile connections: `python -m bench.hostile`.

Starts the api-gateway as the image does (`python -m services.serve`, with
its default bounds), then opens N connections (default 100) of each kind at
once and keeps them as they are:

* `headers`: an unfinished header of 15 KiB (just under the 16 KiB limit),
  the next byte never sent;
* `big-header`: 10 MiB of one header, sent as fast as the server takes it;
* `body`: complete headers announcing a 60 KiB body, half of it sent;
* `silent`: a connection that sends nothing.

It prints the gateway's memory (PSS of its process tree, as bench/procs.py
measures it) before, while the connections are open, and after, and how
long the server held the longest connection of each kind. Not part of the
test suite (tests/services/test_server_limits.py checks the bounds).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path

from bench.procs import rss_mib
from services.launcher import ServerProcess, free_port, serve_argv

CAP = 40.0  # seconds: a connection still open then is reported as held >= CAP


async def _hold(port: int, data: bytes) -> float:
    """Send `data`, then wait until the server closes (at most CAP s);
    seconds held."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    start = time.monotonic()

    async def exchange() -> None:
        if data:
            writer.write(data)
            await writer.drain()
        while await reader.read(65536):
            pass

    try:
        await asyncio.wait_for(exchange(), CAP)
    except (ConnectionError, OSError, asyncio.TimeoutError):
        pass
    finally:
        writer.close()
    return time.monotonic() - start


KINDS = {
    "headers": b"GET /users/ HTTP/1.1\r\nhost: x\r\nx-pad: " + b"a" * (15 * 1024),
    "big-header": b"GET /users/ HTTP/1.1\r\nhost: x\r\nx-big: " + b"a" * (10 * 1024 * 1024) + b"\r\n\r\n",
    "body": b"POST /users/ HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 61440\r\n\r\n"
    + b"a" * 30720,
    "silent": b"",
}


async def run(port: int, n: int, pid: int) -> None:
    base = rss_mib(pid)
    print(f"api-gateway memory before: {base:.1f} MiB (PSS)")
    for kind, data in KINDS.items():
        tasks = [asyncio.create_task(_hold(port, data)) for _ in range(n)]
        await asyncio.sleep(1.0)
        during = rss_mib(pid)
        held = await asyncio.gather(*tasks)
        after = rss_mib(pid)
        print(
            f"{n} x {kind:<10} memory while open {during:6.1f} MiB, after {after:6.1f} MiB; "
            f"held {min(held):5.1f}-{max(held):5.1f} s"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", type=int, default=100, help="connections of each kind (default 100)")
    args = parser.parse_args()
    port = free_port()
    env = {**os.environ, "PORT": str(port), "HOST": "127.0.0.1", "LOG_LEVEL": "warning"}
    for name in ("HEADER_READ_TIMEOUT_SECONDS", "BODY_READ_TIMEOUT_SECONDS", "PEER_TIMEOUT_SECONDS"):
        env.pop(name, None)  # the defaults, as deployed
    log = tempfile.NamedTemporaryFile("w", suffix=".log", delete=False)
    gateway = ServerProcess("api-gateway", serve_argv("api-gateway"), env, port, log_path=Path(log.name))
    try:
        try:
            gateway.start_ready("/healthz", timeout=120)
        except RuntimeError:
            sys.exit(f"the gateway did not start (log: {log.name})")
        asyncio.run(run(port, args.n, gateway.pid))
    finally:
        gateway.stop()


if __name__ == "__main__":
    main()
