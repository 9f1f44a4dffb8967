"""Calls to other services over HTTP, with trace headers forwarded.

A peer that cannot be reached gives 503 naming it; one that does not answer
in time gives 504. Nothing waits longer than the peer timeout.
"""

from __future__ import annotations

import http.cookiejar
from collections.abc import Mapping
from typing import Any

import httpx

from services.common.errors import ApiError
from services.common.settings import Settings
from services.common.tracing import trace_headers
from services.common.transport import KeepAliveTransport


class _NoCookieJar(http.cookiejar.CookieJar):
    """The client calls peers on behalf of every user: a cookie one answer
    sets must never ride along on someone else's request. (httpx's default
    jar would keep it and send it with every later request that has no
    Cookie header of its own.) Set-Cookie headers still reach the caller."""

    def set_cookie(self, cookie: http.cookiejar.Cookie) -> None:
        pass

    def extract_cookies(self, response: object, request: object) -> None:  # type: ignore[override]
        pass


def peer_timeouts(settings: Settings) -> httpx.Timeout:
    return httpx.Timeout(settings.peer_timeout, connect=min(settings.peer_timeout, 2.0))


def http_client(settings: Settings, transport: KeepAliveTransport | None = None) -> httpx.AsyncClient:
    """One pooled client per app, shared by all requests.

    Its transport is services.common.transport.KeepAliveTransport: httpx's
    default one costs CPU per request that grows with the pool size, which
    made the gateway path slower under load (docs/benchmarks.md). The
    gateway's proxy uses the same transport directly (`forward`)."""
    return httpx.AsyncClient(
        timeout=peer_timeouts(settings),
        transport=transport or KeepAliveTransport(max_connections=200),
        cookies=_NoCookieJar(),
        follow_redirects=False,
    )


class Peers:
    def __init__(self, settings: Settings, client: httpx.AsyncClient) -> None:
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
    ) -> httpx.Response:
        """Send one request to `peer`; transport failures become ApiError."""
        url = self.urls[peer] + path
        headers = trace_headers(inbound_headers)
        try:
            return await self.client.request(method, url, headers=headers, json=json)
        except httpx.TimeoutException:
            raise ApiError(504, f"{peer} did not answer within the timeout", "peer_timeout") from None
        except httpx.TransportError as exc:
            raise ApiError(503, f"{peer} is unreachable ({type(exc).__name__})", "peer_unavailable") from None
