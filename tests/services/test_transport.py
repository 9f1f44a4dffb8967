"""services.common.transport.KeepAliveTransport, the hand-written HTTP/1.1
client under every peer call and the gateway's proxy, against real servers:
uvicorn (tests.live.LiveServer) for well-behaved answers, small raw asyncio
servers for the misbehaving ones."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route

from services.common.transport import KeepAliveTransport
from services.redis_server import free_port
from tests.live import LiveServer

MIB = 1024 * 1024


def _app() -> Starlette:
    async def echo(request: Request) -> Response:
        body = await request.body()
        return JSONResponse(
            {
                "method": request.method,
                "port": request.scope["client"][1],
                "length": len(body),
                "host": request.headers.get("host"),
                "content_length": request.headers.get("content-length"),
            }
        )

    async def chunked(request: Request) -> Response:
        async def parts() -> AsyncIterator[bytes]:
            for i in range(5):
                yield b"part%d;" % i

        return StreamingResponse(parts(), media_type="text/plain")  # no length: chunked

    async def close(request: Request) -> Response:
        return Response(b"bye", headers={"connection": "close"})

    async def status(request: Request) -> Response:
        code = int(request.path_params["code"])
        return Response(status_code=code, headers={"etag": '"v1"', "x-port": str(request.scope["client"][1])})

    async def head_me(request: Request) -> Response:
        return Response(b"x" * 100, media_type="text/plain")

    async def large(request: Request) -> Response:
        return Response(b"L" * MIB, media_type="application/octet-stream")

    async def slow(request: Request) -> Response:
        await asyncio.sleep(float(request.query_params.get("s", "0.2")))
        return JSONResponse({"port": request.scope["client"][1]})

    return Starlette(
        routes=[
            Route("/echo", echo, methods=["GET", "POST", "PUT", "DELETE"]),
            Route("/chunked", chunked),
            Route("/close", close),
            Route("/status/{code}", status),
            Route("/head", head_me, methods=["GET", "HEAD"]),
            Route("/large", large),
            Route("/slow", slow),
        ]
    )


@pytest.fixture(scope="module")
def server() -> Iterator[LiveServer]:
    with LiveServer(_app()) as live:
        yield live


def run(fn: Callable[[httpx.AsyncClient, KeepAliveTransport], Awaitable[Any]], timeout: float = 2.0) -> Any:
    """Run fn(client, transport) in a fresh event loop with a fresh pool."""

    async def main() -> Any:
        transport = KeepAliveTransport(max_connections=50)
        async with httpx.AsyncClient(transport=transport, timeout=timeout) as client:
            return await fn(client, transport)

    return asyncio.run(main())


# ------------------------------------------------------------ well-behaved answers


def test_sequential_requests_reuse_one_connection(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> set[int]:
        return {(await client.get(server.url + "/echo")).json()["port"] for _ in range(10)}

    assert len(run(go)) == 1


def test_concurrent_requests_do_not_share_a_connection(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> list[int]:
        replies = await asyncio.gather(*(client.get(server.url + "/slow?s=0.2") for _ in range(8)))
        assert all(r.status_code == 200 for r in replies)
        return [r.json()["port"] for r in replies]

    assert len(set(run(go))) == 8


def test_chunked_answer(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> list[httpx.Response]:
        return [await client.get(server.url + "/chunked"), await client.get(server.url + "/echo")]

    chunked, after = run(go)
    assert chunked.headers["transfer-encoding"] == "chunked"
    assert chunked.content == b"part0;part1;part2;part3;part4;"
    assert after.status_code == 200  # the connection is still in step


def test_connection_close_answer_is_read_and_not_reused(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, transport: KeepAliveTransport) -> tuple[httpx.Response, int]:
        closing = await client.get(server.url + "/close")
        return closing, sum(len(conns) for conns in transport._idle.values())

    closing, idle = run(go)
    assert closing.content == b"bye" and closing.headers["connection"] == "close"
    assert idle == 0


@pytest.mark.parametrize("code", [204, 304])
def test_answers_without_a_body(server: LiveServer, code: int) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> list[httpx.Response]:
        return [await client.get(server.url + f"/status/{code}") for _ in range(3)]

    replies = run(go)
    assert [r.status_code for r in replies] == [code] * 3 and all(r.content == b"" for r in replies)
    assert len({r.headers["x-port"] for r in replies}) == 1  # no body to wait for: the connection is reused


def test_head_has_no_body_even_with_a_content_length(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> list[httpx.Response]:
        return [await client.head(server.url + "/head"), await client.get(server.url + "/head")]

    head, get = run(go, timeout=1.0)
    assert head.status_code == 200 and head.content == b"" and head.headers["content-length"] == "100"
    assert get.content == b"x" * 100


def test_one_mib_each_way(server: LiveServer) -> None:
    async def go(client: httpx.AsyncClient, _: KeepAliveTransport) -> list[httpx.Response]:
        return [await client.get(server.url + "/large"), await client.post(server.url + "/echo", content=b"u" * MIB)]

    down, up = run(go)
    assert down.content == b"L" * MIB
    assert up.json()["length"] == MIB and up.json()["content_length"] == str(MIB)


def test_forward_sends_raw_parts_and_returns_raw_answer(server: LiveServer) -> None:
    port = int(server.url.rsplit(":", 1)[1])

    async def go(_: httpx.AsyncClient, transport: KeepAliveTransport) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        headers = [(b"content-type", b"text/plain"), (b"host", b"client.example"), (b"content-length", b"999")]
        return await transport.forward("POST", server.url, b"/echo?x=1", headers, b"hello", {"read": 2.0})

    status, headers, body = run(go)
    assert status == 200 and (b"content-type", b"application/json") in headers
    seen = httpx.Response(200, content=body).json()
    # Host and Content-Length are the transport's, never the caller's.
    assert seen["host"] == f"127.0.0.1:{port}" and seen["content_length"] == "5" and seen["length"] == 5


# ------------------------------------------------------------ misbehaving servers

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, int], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


async def _read_request(reader: asyncio.StreamReader) -> bytes:
    head = await reader.readuntil(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            await reader.readexactly(int(line.split(b":")[1]))
    return head


async def _raw_server(handler: Handler) -> tuple[asyncio.base_events.Server, str, list[int]]:
    """A raw TCP server; handler(reader, writer, n) gets the connection's number."""
    accepted: list[int] = []

    async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        accepted.append(len(accepted) + 1)
        try:
            await handler(reader, writer, accepted[-1])
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(on_connect, "127.0.0.1", 0)
    port = srv.sockets[0].getsockname()[1]
    return srv, f"http://127.0.0.1:{port}", accepted


async def _answers_once_then_drops(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
    """Answers one request, then closes on the next one without a byte: what a
    server that closed an idle keep-alive connection looks like to a client
    that had just sent on it."""
    await _read_request(reader)
    writer.write(OK)
    await writer.drain()
    await _read_request(reader)


def _against(handler: Handler, fn: Callable[[httpx.AsyncClient, str], Awaitable[Any]], timeout: float = 2.0) -> tuple[Any, list[int]]:
    async def main() -> tuple[Any, list[int]]:
        srv, url, accepted = await _raw_server(handler)
        try:
            async with httpx.AsyncClient(transport=KeepAliveTransport(), timeout=timeout) as client:
                return await fn(client, url), accepted
        finally:
            srv.close()

    return asyncio.run(main())


def test_stale_connection_is_retried_for_get() -> None:
    async def go(client: httpx.AsyncClient, url: str) -> list[int]:
        return [(await client.get(url + "/")).status_code for _ in range(2)]

    statuses, accepted = _against(_answers_once_then_drops, go)
    assert statuses == [200, 200] and len(accepted) == 2  # the second GET went again on a new connection


def test_stale_connection_is_not_retried_for_post() -> None:
    async def go(client: httpx.AsyncClient, url: str) -> None:
        assert (await client.post(url + "/", content=b"a")).status_code == 200
        await client.post(url + "/", content=b"b")

    with pytest.raises(httpx.RemoteProtocolError):
        _against(_answers_once_then_drops, go)


def test_silent_server_is_a_read_timeout() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        await asyncio.sleep(5)

    start = time.perf_counter()
    with pytest.raises(httpx.ReadTimeout):
        _against(silent, lambda client, url: client.get(url + "/"), timeout=0.3)
    assert time.perf_counter() - start < 2


def test_close_in_the_middle_of_the_body_is_an_error_not_a_hang() -> None:
    async def truncated(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, n: int) -> None:
        await _read_request(reader)
        writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly ten b")
        await writer.drain()

    start = time.perf_counter()
    with pytest.raises(httpx.ReadError):
        _against(truncated, lambda client, url: client.get(url + "/"), timeout=5)
    assert time.perf_counter() - start < 2


def test_refused_connection_is_a_connect_error() -> None:
    with pytest.raises(httpx.ConnectError):
        run(lambda client, _: client.get(f"http://127.0.0.1:{free_port()}/"))


def test_connect_that_never_completes_is_a_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    async def never(*args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(30)

    monkeypatch.setattr(asyncio, "open_connection", never)
    start = time.perf_counter()
    with pytest.raises(httpx.ConnectTimeout):
        run(lambda client, _: client.get("http://127.0.0.1:9/", timeout=httpx.Timeout(5, connect=0.2)))
    assert time.perf_counter() - start < 2
