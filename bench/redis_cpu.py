"""`uv run python -m bench.redis_cpu [N] [CONCURRENCY]`: CPU time per Redis
command in one process, for the services' client (services/common/redis.py)
and, for comparison, redis-py (the client the services used before issue 16,
configured as they had it: hiredis, socket timeouts, no retries) and a bare
asyncio protocol that writes the command and lets hiredis parse the reply
(no deadlines, no reconnects: the floor of what any Python client pays). Both run MGET of two
keys, the command of GET /movies/{id}, from CONCURRENCY tasks (default 16)
against a fresh redis-server. Prints one line per client and round.

Why: with redis-py, this cost held movie-service's single read below half
of the constant-JSON baseline (bench/findings.md, issue 16)."""

from __future__ import annotations

import asyncio
import collections
import resource
import sys
import tempfile
from collections.abc import Awaitable, Callable
from pathlib import Path

import hiredis
import redis.asyncio

from services.common import redis as redis_mod
from services.common.settings import Settings
from services.launcher import free_port
from services.redis_server import RedisServer

RECORD = '{"id":"m_k3x9m2p7qa","title":"Movie 1","genre":"drama","year":2000,"capacity":100}'


def _cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class BareProtocol(asyncio.Protocol):
    """Measurement only: one connection, replies matched to waiters in order."""

    def __init__(self) -> None:
        self.reader = hiredis.Reader(encoding="utf-8")
        self.waiters: collections.deque[asyncio.Future] = collections.deque()
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        while (reply := self.reader.gets()) is not False:
            self.waiters.popleft().set_result(reply)

    def command(self, *args: str) -> asyncio.Future:
        assert self.transport is not None
        self.transport.write(redis_mod.encode_command(args))  # the same framing as the services' client
        future = asyncio.get_running_loop().create_future()
        self.waiters.append(future)
        return future


async def _measure(op: Callable[[], Awaitable[object]], n: int, concurrency: int) -> float:
    async def worker(count: int) -> None:
        for _ in range(count):
            await op()

    await asyncio.gather(*(worker(100) for _ in range(concurrency)))  # warm-up
    start = _cpu()
    await asyncio.gather(*(worker(n // concurrency) for _ in range(concurrency)))
    return 1e6 * (_cpu() - start) / n


async def _run(url: str, port: int, n: int, concurrency: int) -> None:
    client = redis_mod.connect(Settings(service="movie-service", redis_url=url))
    old = redis.asyncio.Redis.from_url(
        url, decode_responses=True, socket_timeout=2.0, socket_connect_timeout=2.0, retry=None, max_connections=200
    )
    keys = ["movies:a", "movies:a:seats"]
    await client.set(keys[0], RECORD)
    await client.set(keys[1], "100")
    loop = asyncio.get_running_loop()
    _, bare = await loop.create_connection(BareProtocol, "127.0.0.1", port)
    try:
        for round_ in (1, 2):
            services = await _measure(lambda: client.mget(keys), n, concurrency)
            before = await _measure(lambda: old.mget(keys), n, concurrency)
            floor = await _measure(lambda: bare.command("MGET", *keys), n, concurrency)
            print(
                f"round {round_}: services' client {services:6.1f} us CPU per MGET;"
                f" redis-py {before:6.1f} us; bare protocol {floor:6.1f} us"
            )
    finally:
        bare.transport.close()  # type: ignore[union-attr]
        await client.aclose()
        await old.aclose()


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    n = int(args[0]) if args else 20_000
    concurrency = int(args[1]) if len(args) > 1 else 16
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    with tempfile.TemporaryDirectory(prefix="theater-redis-cpu-") as tmp:
        server = RedisServer(Path(tmp) / "redis", free_port())
        server.start()
        try:
            asyncio.run(_run(server.url + "/0", server.port, n, concurrency))
        finally:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
