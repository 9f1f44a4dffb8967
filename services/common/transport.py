"""A lean HTTP/1.1 keep-alive transport for the httpx client that calls peer
services (services/common/peers.py).

Why: httpx's default transport (httpcore + anyio) spends CPU per request that
grows with the number of pooled connections: every request and every
response close scans the whole pool and polls each idle socket
(`AsyncConnectionPool._assign_requests_to_connections` -> `has_expired` ->
`is_socket_readable`). Measured by the benchmark (docs/benchmarks.md): the
gateway's client cost went from ~0.6 ms to ~2.3 ms CPU per request between
1 and 64 concurrent connections, so the gateway path got *slower* under load.
This transport does O(1) work per request: a LIFO stack of idle connections
per origin, asyncio streams, and httptools (already a dependency) to parse.

Scope: plain `http://` to services inside the cluster or on 127.0.0.1. Any
other scheme goes to httpx's own transport. Responses are read whole (peer
answers are small JSON) and handed back as an in-memory stream, so
`send(stream=True)` / `aiter_raw()` still work. httpx's timeouts are
honoured (connect, read, write, pool) and failures raise the usual httpx
exceptions (ConnectError, ConnectTimeout, ReadTimeout, ReadError,
RemoteProtocolError, PoolTimeout), so callers need no change.

Connections idle for longer than `max_idle` seconds are dropped before
reuse (uvicorn closes idle keep-alive connections after 5 s). If a reused
connection turns out to be closed before any byte of the answer arrived, an
idempotent request is retried once on a new connection; a POST or PATCH is
not (it fails as RemoteProtocolError, as with httpx's own transport).
"""

from __future__ import annotations

import asyncio
import functools
import time
from collections.abc import Mapping

import httptools
import httpx

IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE", "TRACE"})
# Set by this transport (content-length) or meaningless for a body sent whole.
_SKIP_REQUEST_HEADERS = frozenset({b"content-length", b"transfer-encoding", b"expect"})


class _Answer:
    """httptools callbacks: collects one final (non-1xx) response."""

    __slots__ = ("parser", "status", "headers", "body", "headers_done", "done", "keep_alive")

    def __init__(self) -> None:
        self.parser: httptools.HttpResponseParser | None = None
        self.status = 0
        self.headers: list[tuple[bytes, bytes]] = []
        self.body: list[bytes] = []
        self.headers_done = False
        self.done = False
        self.keep_alive = False

    def on_header(self, name: bytes, value: bytes) -> None:
        self.headers.append((name, value))

    def on_headers_complete(self) -> None:
        assert self.parser is not None
        self.status = self.parser.get_status_code()
        # Read it now: once the message is complete the parser has reset.
        self.keep_alive = self.parser.should_keep_alive()
        self.headers_done = True

    def on_body(self, body: bytes) -> None:
        self.body.append(body)

    def on_message_complete(self) -> None:
        if 100 <= self.status < 200:  # informational: the real answer follows
            self.headers.clear()
            self.body.clear()
            self.headers_done = False
            return
        self.done = True


def _delimited(headers: list[tuple[bytes, bytes]]) -> bool:
    """Whether the answer says where its body ends (else: at connection close)."""
    return any(name.lower() in (b"content-length", b"transfer-encoding") for name, _ in headers)


@functools.lru_cache(maxsize=64)
def _origin(base: str) -> tuple[str, int] | None:
    """(host, port) of a plain "http://host[:port]" base URL, else None."""
    url = httpx.URL(base)
    if url.scheme != "http" or url.raw_path not in (b"", b"/"):
        return None
    return url.host, url.port or 80


class _Connection:
    __slots__ = ("reader", "writer", "idle_since")

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer
        self.idle_since = 0.0

    def reusable(self, now: float, max_idle: float) -> bool:
        return not self.reader.at_eof() and not self.writer.is_closing() and now - self.idle_since < max_idle

    def close(self) -> None:
        self.writer.close()


class _Closed(Exception):
    """The connection closed before any byte of the answer arrived."""


class KeepAliveTransport(httpx.AsyncBaseTransport):
    """HTTP/1.1 with keep-alive for `http://` origins; see the module docstring."""

    def __init__(self, max_connections: int = 200, max_idle: float = 4.0) -> None:
        self._idle: dict[tuple[str, int], list[_Connection]] = {}
        self._slots = asyncio.Semaphore(max_connections)
        self._max_connections = max_connections
        self._max_idle = max_idle
        self._fallback = httpx.AsyncHTTPTransport(limits=httpx.Limits(max_connections=max_connections))

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        if request.url.scheme != "http":
            return await self._fallback.handle_async_request(request)
        timeouts = request.extensions.get("timeout") or {}
        origin = (request.url.host, request.url.port or 80)
        data = await self._serialize(request)
        answer = await self._send(origin, data, request.method, timeouts, request)
        return httpx.Response(
            answer.status,
            headers=answer.headers,
            stream=httpx.ByteStream(b"".join(answer.body)),
            extensions={"http_version": b"HTTP/1.1"},
        )

    async def forward(
        self,
        method: str,
        base: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        """Send a request given as raw parts, for a proxy that has raw bytes
        in and wants raw bytes out (services/api_gateway.py): `base` is
        "http://host[:port]", `target` the path and query as sent, `headers`
        the ones to send as they are (Host, Content-Length and
        Transfer-Encoding are set here). Returns status, raw headers and
        body. Same pool, timeouts, retry and httpx exceptions as
        handle_async_request, without building httpx's request and response
        models."""
        origin = _origin(base)
        if origin is None:  # not plain http: httpx's own transport
            return await self._forward_fallback(method, base, target, headers, body, timeouts)
        host, port = origin
        parts = [method.encode("ascii"), b" ", target, b" HTTP/1.1\r\nhost: ", host.encode("idna")]
        if port != 80:
            parts.append(b":%d" % port)
        parts.append(b"\r\n")
        for name, value in headers:
            if name.lower() not in _SKIP_REQUEST_HEADERS and name.lower() != b"host":
                parts += [name, b": ", value, b"\r\n"]
        if body or method in ("POST", "PUT", "PATCH"):
            parts.append(b"content-length: %d\r\n" % len(body))
        parts += [b"\r\n", body]
        answer = await self._send(origin, b"".join(parts), method, timeouts, None)
        return answer.status, answer.headers, b"".join(answer.body)

    async def _forward_fallback(
        self,
        method: str,
        base: str,
        target: bytes,
        headers: list[tuple[bytes, bytes]],
        body: bytes,
        timeouts: Mapping[str, float | None],
    ) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        request = httpx.Request(method, base + target.decode("latin-1"), headers=headers, content=body)
        request.extensions["timeout"] = dict(timeouts)
        response = await self._fallback.handle_async_request(request)
        try:
            content = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        return response.status_code, list(response.headers.raw), content

    async def _send(
        self,
        origin: tuple[str, int],
        data: bytes,
        method: str,
        timeouts: Mapping[str, float | None],
        request: httpx.Request | None,
    ) -> _Answer:
        """One exchange on a pooled connection; `request` only labels errors."""
        try:
            async with asyncio.timeout(timeouts.get("pool")):
                await self._slots.acquire()
        except TimeoutError:
            raise httpx.PoolTimeout("no free connection to the peer within the pool timeout", request=request) from None
        try:
            conn = self._checkout(origin)
            reused = conn is not None
            if conn is None:
                conn = await self._connect(request, origin, timeouts.get("connect"))
            try:
                answer, keep_alive = await self._exchange(conn, data, method, request, timeouts)
            except _Closed:
                conn.close()
                if not reused or method not in IDEMPOTENT:
                    raise httpx.RemoteProtocolError("server disconnected without sending a response", request=request) from None
                conn = await self._connect(request, origin, timeouts.get("connect"))
                try:
                    answer, keep_alive = await self._exchange(conn, data, method, request, timeouts)
                except _Closed:
                    conn.close()
                    raise httpx.RemoteProtocolError("server disconnected without sending a response", request=request) from None
                except BaseException:
                    conn.close()
                    raise
            except BaseException:  # errors, timeouts and cancellation: never reuse
                conn.close()
                raise
            if keep_alive and method != "HEAD":
                conn.idle_since = time.monotonic()
                idle = self._idle.setdefault(origin, [])
                if len(idle) < self._max_connections:
                    idle.append(conn)
                else:
                    conn.close()
            else:
                conn.close()
        finally:
            self._slots.release()
        return answer

    @staticmethod
    async def _serialize(request: httpx.Request) -> bytes:
        body = await request.aread()
        parts = [request.method.encode("ascii"), b" ", request.url.raw_path, b" HTTP/1.1\r\n"]
        for name, value in request.headers.raw:
            if name.lower() not in _SKIP_REQUEST_HEADERS:
                parts += [name, b": ", value, b"\r\n"]
        if body or request.method in ("POST", "PUT", "PATCH"):
            parts.append(b"content-length: %d\r\n" % len(body))
        parts.append(b"\r\n")
        parts.append(body)
        return b"".join(parts)

    def _checkout(self, origin: tuple[str, int]) -> _Connection | None:
        idle = self._idle.get(origin)
        now = time.monotonic()
        while idle:
            conn = idle.pop()  # most recently used first: warmest, least likely closed
            if conn.reusable(now, self._max_idle):
                return conn
            conn.close()
        return None

    @staticmethod
    async def _connect(request: httpx.Request | None, origin: tuple[str, int], timeout: float | None) -> _Connection:
        host, port = origin
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port)
        except TimeoutError:
            raise httpx.ConnectTimeout(f"connecting to {host}:{port} timed out", request=request) from None
        except OSError as exc:
            raise httpx.ConnectError(f"cannot connect to {host}:{port}: {exc}", request=request) from None
        return _Connection(reader, writer)

    @staticmethod
    async def _exchange(
        conn: _Connection,
        data: bytes,
        method: str,
        request: httpx.Request | None,
        timeouts: Mapping[str, float | None],
    ) -> tuple[_Answer, bool]:
        answer = _Answer()
        parser = httptools.HttpResponseParser(answer)
        answer.parser = parser
        received = False
        try:
            conn.writer.write(data)
            async with asyncio.timeout(timeouts.get("write")):
                await conn.writer.drain()
        except TimeoutError:
            raise httpx.WriteTimeout("timed out sending the request", request=request) from None
        except OSError:
            raise _Closed from None
        try:
            while not answer.done:
                async with asyncio.timeout(timeouts.get("read")):
                    chunk = await conn.reader.read(65536)
                if not chunk:
                    if not received:
                        raise _Closed
                    if answer.headers_done and not _delimited(answer.headers):
                        answer.done = True  # a body that ends when the connection closes
                        return answer, False
                    raise httpx.ReadError("server closed the connection in the middle of the answer", request=request)
                received = True
                parser.feed_data(chunk)
                if method == "HEAD" and answer.headers_done:
                    answer.done = True  # no body follows, whatever content-length says
        except TimeoutError:
            raise httpx.ReadTimeout("timed out waiting for the answer", request=request) from None
        except httptools.HttpParserError as exc:
            raise httpx.RemoteProtocolError(f"malformed answer: {exc}", request=request) from None
        except OSError as exc:
            if not received:
                raise _Closed from None
            raise httpx.ReadError(f"connection failed in the middle of the answer: {exc}", request=request) from None
        return answer, answer.keep_alive

    async def aclose(self) -> None:
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
        await self._fallback.aclose()
