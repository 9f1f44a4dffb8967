"""Outgoing HTTP: calls to other services, with trace headers forwarded.

The one HTTP client of the services is aiohttp (ClientSession over a
TCPConnector pool). It was chosen by measurement (bench/findings.md): its
client CPU per request stays flat as concurrency grows (~250-400 µs at 1,
16 and 64 concurrent requests), where httpx2's transport went from ~1,100
to ~3,000 µs and made the gateway path several times slower under load.
Keep-alive pooling, response framing, stale connections and protocol errors
are the library's job (tests/gateway/test_backend_protocol.py holds it to
the cases a hand-written client got wrong).

A peer that cannot be reached gives 503 naming it; one that does not answer
in time gives 504. Nothing waits longer than the peer timeout.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDictProxy
from yarl import URL

from services.common.errors import peer_timeout, peer_unavailable
from services.common.settings import Settings
from services.common.tracing import trace_headers

# The pool of each app: enough connections for the benchmark's 64 clients
# through the gateway to booking-service and on to two peers. Idle
# connections are dropped after 4 s, before the servers' own keep-alive
# bound (5 s, services/serve.py) can close them under the client.
MAX_CONNECTIONS = 200
KEEPALIVE_SECONDS = 4.0
# Headers aiohttp would add on its own: a proxied request carries the
# client's, and a peer call needs none of them.
NO_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")


@dataclass
class Reply:
    """A whole answer, read: status, headers and body."""

    status_code: int
    headers: CIMultiDictProxy[str]
    raw_headers: tuple[tuple[bytes, bytes], ...]
    content: bytes

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        return orjson.loads(self.content)


class HttpClient:
    """The app's pool of outgoing connections. The aiohttp session is made
    on first use, inside the running event loop, and closed with the app."""

    def __init__(self, timeout: float, connect_timeout: float) -> None:
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=MAX_CONNECTIONS, keepalive_timeout=KEEPALIVE_SECONDS, use_dns_cache=True
                ),
                # Calls are made on behalf of every user: a cookie one answer
                # sets must never ride along on someone else's request.
                cookie_jar=aiohttp.DummyCookieJar(),
                skip_auto_headers=NO_AUTO_HEADERS,
                auto_decompress=False,
                # The whole exchange runs under one asyncio.timeout in request();
                # a per-read timer on top of it only reschedules itself on every chunk.
                timeout=aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout, sock_read=None),
            )
        return self._session

    async def request(
        self,
        method: str,
        url: str,
        *,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        data: bytes | None = None,
        timeout: float | None = None,
        encoded: bool = False,
    ) -> Reply:
        """Send one request and read the whole answer within `timeout`
        seconds (the client's default when None). Raises TimeoutError or
        aiohttp.ClientError. `encoded=True` sends the URL's path and query
        exactly as given (the proxy's raw bytes)."""
        target = URL(url, encoded=True) if encoded else url
        async with asyncio.timeout(self.timeout if timeout is None else timeout):
            async with self.session.request(
                method, target, headers=headers, data=data, allow_redirects=False
            ) as response:
                if response.status < 200:
                    # 101 Switching Protocols: none of our calls asks for it.
                    raise aiohttp.ClientResponseError(
                        response.request_info, (), status=response.status, message="unexpected 1xx answer"
                    )
                content = await response.read()
                return Reply(response.status, response.headers, response.raw_headers, content)

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> HttpClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()


def http_client(settings: Settings) -> HttpClient:
    """One pooled client per app, shared by all requests."""
    return HttpClient(settings.peer_timeout, min(settings.peer_timeout, 2.0))


class Peers:
    def __init__(self, settings: Settings, client: HttpClient) -> None:
        self.urls = {name: settings.peer_urls(name) for name in settings.peers}
        self._turns = {name: itertools.cycle(urls) for name, urls in self.urls.items() if urls}
        self.client = client
        self.caller = settings.service

    def base(self, peer: str) -> str:
        """The peer's base URL for the next call: its URLs in turn when it has several."""
        return next(self._turns[peer])

    async def request(
        self,
        peer: str,
        method: str,
        path: str,
        inbound_headers: Mapping[str, str],
        json: Any = None,
        timeout: float | None = None,
    ) -> Reply:
        """Send one request to `peer`; transport failures become ApiError.
        `timeout`: seconds for this call (default: the peer timeout)."""
        url = self.base(peer) + path
        headers = trace_headers(inbound_headers)
        data = None
        if json is not None:
            data = orjson.dumps(json)
            headers = {**headers, "content-type": "application/json"}
        try:
            return await self.client.request(method, url, headers=headers, data=data, timeout=timeout)
        except TimeoutError:
            raise peer_timeout(peer, self.client.timeout if timeout is None else timeout) from None
        except aiohttp.ClientError as exc:
            raise peer_unavailable(peer, f"is unreachable ({type(exc).__name__})") from None
