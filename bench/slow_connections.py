"""`uv run python -m bench.slow_connections [--counts 500,1000,2000,4000] [--max-connections N]`

Many slow clients at once (issue 25, item 6): user-service is started as
the image runs it (`python -m services.serve`, Granian, one worker) with a
fresh redis-server; then, for each count N, N connections send the start
of a request's headers and nothing more (slowloris: each is cut by the
server after HEADER_READ_TIMEOUT, 5 s), and while they are held a normal
client makes 20 GET /users/?limit=1 requests, each on a new connection.

Printed per N: how many slow connections were open, the normal client's
p50 / max latency and failures, and the service's memory (PSS of Granian's
supervisor and worker, as a pod pays for both). MAX_CONNECTIONS (what
services/serve.py gives Granian as backpressure) can be set with
--max-connections, to compare with Granian's default (1024).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from bench import procs
from services import catalog
from services.launcher import HOST, free_port
from services.redis_server import RedisServer, find_redis_server

SLOW_HEAD = b"GET /users/ HTTP/1.1\r\nhost: x\r\nx-slow: "


@dataclass
class Point:
    slow: int
    held: int
    p50_ms: float | None
    max_ms: float | None
    failed: int
    pss_mib: float | None

    def line(self) -> str:
        p50 = "-" if self.p50_ms is None else f"{self.p50_ms:.1f}"
        top = "-" if self.max_ms is None else f"{self.max_ms:.1f}"
        return (f"{self.slow:6d} slow connections ({self.held} held): normal GET p50 {p50} ms, max {top} ms, "
                f"{self.failed} failed of 20; service PSS {self.pss_mib or 0:.1f} MiB")


async def _normal_get(port: int, timeout: float = 5.0) -> float | None:
    start = time.perf_counter()
    try:
        reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), timeout)
        writer.write(b"GET /users/?limit=1 HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        await writer.drain()
        got = await asyncio.wait_for(reader.read(65536), timeout)
        writer.close()
    except (OSError, asyncio.TimeoutError):
        return None
    return (time.perf_counter() - start) if got.startswith(b"HTTP/1.1 200") else None


async def point(port: int, n: int, pid: int) -> Point:
    writers: list[asyncio.StreamWriter] = []

    async def open_slow() -> None:
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(HOST, port), 3.0)
            writer.write(SLOW_HEAD)
            await writer.drain()
            writers.append(writer)
        except (OSError, asyncio.TimeoutError):
            pass

    await asyncio.gather(*(open_slow() for _ in range(n)))
    await asyncio.sleep(0.5)
    held = len(writers)
    times = []
    for _ in range(20):
        times.append(await _normal_get(port))
        await asyncio.sleep(0.05)
    pss = sum(v for v in (procs._own_pss_mib(p) for p in procs.process_tree(pid)) if v is not None)
    for w in writers:
        w.close()
    await asyncio.sleep(6)  # the server lets go of them (header timeout)
    ok = sorted(t * 1000 for t in times if t is not None)
    return Point(n, held, ok[len(ok) // 2] if ok else None, ok[-1] if ok else None, times.count(None), pss)


def run(work_dir: Path, counts: list[int], max_connections: int | None = None, progress=print) -> list[Point]:  # type: ignore[no-untyped-def]
    redis = RedisServer(work_dir / "redis", free_port(HOST), HOST, binary=find_redis_server(prefer_system=True))
    redis.start()
    port = free_port(HOST)
    extra = {"MAX_CONNECTIONS": str(max_connections)} if max_connections else {}
    env = procs.bench_env(catalog.USER, port, redis_url=redis.url + "/0", peers={}, extra=extra)
    server = procs.server("user-service", procs.serve_argv("user-service"), env, port, work_dir).start_ready("/readyz")
    out = []
    try:
        for n in counts:
            out.append(asyncio.run(point(port, n, server.pid)))
            progress(out[-1].line())
    finally:
        server.stop()
        redis.stop()
    return out


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m bench.slow_connections", description=__doc__.split("\n\n")[1])
    p.add_argument("--counts", default="500,1000,1100,2000,3000,4000")
    p.add_argument("--max-connections", type=int, help="MAX_CONNECTIONS for the service (default: services/serve.py's)")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-slow-") as tmp:
        points = run(Path(tmp), [int(c) for c in args.counts.split(",")], args.max_connections)
    print([asdict(pt) for pt in points])


if __name__ == "__main__":
    main()
