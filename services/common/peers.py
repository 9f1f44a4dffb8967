"""Calls to other services over HTTP, with trace headers forwarded.

The one HTTP client of the codebase is httpx2 (pydantic's maintained
continuation of httpx, which lightkube uses for the Kubernetes API too) with
its own transport (httpcore2): keep-alive pooling, response framing, stale
connections and protocol errors are the library's job, not ours.

A peer that cannot be reached gives 503 naming it; one that does not answer
in time gives 504. Nothing waits longer than the peer timeout.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from typing import Any

import httpx2

from services.common.errors import ApiError
from services.common.settings import Settings
from services.common.tracing import trace_headers

# The pool of each app: enough connections for the benchmark's 64 clients
# through the gateway to booking-service and on to two peers. Idle
# connections are dropped after 4 s, before the servers' own keep-alive
# bound (5 s, services/serve.py) can close them under the client.
MAX_CONNECTIONS = 200
KEEPALIVE_EXPIRY = 4.0


class _NoCookieJar(http.cookiejar.CookieJar):
    """The client calls peers on behalf of every user: a cookie one answer
    sets must never ride along on someone else's request. (httpx2's default
    jar would keep it and send it with every later request that has no
    Cookie header of its own.) Set-Cookie headers still reach the caller."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        pass

    def extract_cookies(self, response: object, request: object) -> None:  # type: ignore[override]
        pass


def peer_timeouts(settings: Settings) -> httpx2.Timeout:
    return httpx2.Timeout(settings.peer_timeout, connect=min(settings.peer_timeout, 2.0))


def transport() -> httpx2.AsyncHTTPTransport:
    """The connection pool under every outgoing call of one app (peer calls
    and the gateway's proxy)."""
    limits = httpx2.Limits(
        max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS, keepalive_expiry=KEEPALIVE_EXPIRY
    )
    return httpx2.AsyncHTTPTransport(limits=limits)


def http_client(settings: Settings, pool: httpx2.AsyncHTTPTransport | None = None) -> httpx2.AsyncClient:
    """One pooled client per app, shared by all requests. The gateway's
    proxy sends on the same pool (`pool`) without the client's layer."""
    return httpx2.AsyncClient(
        timeout=peer_timeouts(settings),
        transport=pool or transport(),
        cookies=_NoCookieJar(),
        follow_redirects=False,
    )


class Peers:
    def __init__(self, settings: Settings, client: httpx2.AsyncClient) -> None:
        self.urls = dict(settings.peers)
        self.client = client
        self.caller = settings.service

    async def request(
        self,
        peer: str,
        method: str,
        path: str,
        inbound_headers: Mapping[str, str],
        json: Any = None,
    ) -> httpx2.Response:
        """Send one request to `peer`; transport failures become ApiError."""
        url = self.urls[peer] + path
        headers = trace_headers(inbound_headers)
        try:
            return await self.client.request(method, url, headers=headers, json=json)
        except httpx2.TimeoutException:
            raise ApiError(504, f"{peer} did not answer within the timeout", "peer_timeout") from None
        except httpx2.TransportError as exc:
            raise ApiError(503, f"{peer} is unreachable ({type(exc).__name__})", "peer_unavailable") from None
