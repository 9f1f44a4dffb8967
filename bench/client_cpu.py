"""Client CPU per request of the HTTP client candidates:
`python -m bench.client_cpu URL` (e.g. a constant-JSON baseline started with
`PORT=8099 python -m bench.baseline_app`).

For each client and 1, 16 and 64 concurrent requests it runs GETs for a few
seconds in one process and prints requests/s and the process's CPU time per
request (user + system): the cost the gateway and booking-service pay on
every outgoing call. This is how aiohttp was chosen over httpx2 (with and
without its client layer) for services/common/peers.py; see
bench/findings.md.
"""

from __future__ import annotations

import asyncio
import resource
import sys
import time
from collections.abc import Awaitable, Callable

DURATION = 3.0


async def _httpx2(url: str, client_layer: bool) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    import httpx2

    limits = httpx2.Limits(max_connections=200, max_keepalive_connections=200, keepalive_expiry=4)
    transport = httpx2.AsyncHTTPTransport(limits=limits)
    if client_layer:
        client = httpx2.AsyncClient(transport=transport)

        async def one() -> None:
            response = await client.get(url)
            await response.aread()

        return one, client.aclose
    target = httpx2.URL(url)

    async def raw() -> None:
        response = await transport.handle_async_request(httpx2.Request("GET", target))
        await response.aread()
        await response.aclose()

    return raw, transport.aclose


async def _aiohttp(url: str) -> tuple[Callable[[], Awaitable[None]], Callable[[], Awaitable[None]]]:
    import aiohttp

    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=200, keepalive_timeout=4), cookie_jar=aiohttp.DummyCookieJar()
    )

    async def one() -> None:
        async with session.get(url) as response:
            await response.read()

    return one, session.close


CLIENTS = {
    "httpx2 AsyncClient": lambda url: _httpx2(url, True),
    "httpx2 transport only": lambda url: _httpx2(url, False),
    "aiohttp ClientSession": _aiohttp,
}


async def measure(name: str, url: str, concurrency: int) -> None:
    one, close = await CLIENTS[name](url)
    count = 0
    stop = time.monotonic() + DURATION

    async def worker() -> None:
        nonlocal count
        while time.monotonic() < stop:
            await one()
            count += 1

    before = resource.getrusage(resource.RUSAGE_SELF)
    start = time.monotonic()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.monotonic() - start
    after = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    await close()
    print(f"{name:<22} c={concurrency:<3} {count / elapsed:7.0f} req/s  {1e6 * cpu / max(count, 1):6.0f} µs CPU/request")


def main() -> None:
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    for name in CLIENTS:
        for concurrency in (1, 16, 64):
            asyncio.run(measure(name, sys.argv[1], concurrency))


if __name__ == "__main__":
    main()
