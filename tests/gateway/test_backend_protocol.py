"""The HTTP client under the proxy and the peer calls (aiohttp,
services/common/peers.py) against backends that misbehave at the
byte level: each case is one that the hand-written client it replaced got
wrong (issue 11). Backends are raw asyncio servers (tests/gateway/rawserver.py);
the gateway is the real app under a real server."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Iterator

import httpx
import pytest

from services import catalog
from services.api_gateway import create_app
from services.common.errors import ApiError
from services.common.peers import Peers, http_client
from services.common.settings import Settings
from services.launcher import LiveServer
from tests.gateway.rawserver import Exchange, RawServer, answer


def _settings(backend_url: str) -> Settings:
    peers = {s.name: backend_url for s in catalog.ROUTED.values()}
    return Settings(service="api-gateway", cluster="ctx1", pod="gw-1", peers=peers, peer_timeout=3.0)


class Setup:
    def __init__(self, raw: RawServer, gateway: LiveServer) -> None:
        self.raw = raw
        self.gateway = gateway
        self.http = httpx.Client(base_url=gateway.url, timeout=10)


@pytest.fixture
def setup(request: pytest.FixtureRequest) -> Iterator[Setup]:
    """The gateway in front of a raw backend running the test's `handler`
    (passed with @pytest.mark.parametrize(..., indirect=True) or set below)."""
    handler, host = request.param if isinstance(request.param, tuple) else (request.param, "127.0.0.1")
    with RawServer(handler, host=host) as raw, LiveServer(create_app(_settings(raw.url))) as gateway:
        s = Setup(raw, gateway)
        yield s
        s.http.close()


async def serve_paths(ex: Exchange, after_first: bytes = b"", close_after_first: bool = False) -> None:
    """Answer every request with its own path as the body; after the
    server's very first answer also send `after_first`."""
    first = ex.number == 1
    while (req := await ex.request()) is not None:
        await ex.send(answer(200, req.target.encode()) + (after_first if first else b""))
        if first and close_after_first:
            await asyncio.sleep(0.05)
            ex.close()
            return
        first = False


# -- unsolicited 408 on a pooled connection -------------------------------


async def _unsolicited_408(ex: Exchange) -> None:
    req = await ex.request()
    assert req is not None
    await ex.send(answer(200, req.target.encode()))
    await asyncio.sleep(0.05)  # the connection is idle in the client's pool now
    await ex.send(answer(408, b"", "connection: close", reason="Request Timeout"))
    ex.close()


@pytest.mark.parametrize("setup", [_unsolicited_408], indirect=True)
def test_unsolicited_408_does_not_shift_later_answers(setup: Setup) -> None:
    for i in range(5):
        r = setup.http.get(f"/movies/m{i}")
        assert (r.status_code, r.text) == (200, f"/movies/m{i}")
        time.sleep(0.15)  # let the 408 arrive on the pooled connection


@pytest.mark.parametrize("setup", [_unsolicited_408], indirect=True)
def test_unsolicited_408_through_peer_calls(setup: Setup) -> None:
    async def run() -> list[tuple[int, str]]:
        settings = _settings(setup.raw.url)
        async with http_client(settings) as client:
            peers = Peers(settings, client)
            out = []
            for i in range(4):
                reply = await peers.request("movie-service", "GET", f"/movies/p{i}", {})
                out.append((reply.status_code, reply.text))
                await asyncio.sleep(0.15)
            return out

    assert asyncio.run(run()) == [(200, f"/movies/p{i}") for i in range(4)]


# -- framing: extra bytes after an answer ----------------------------------


async def _two_answers_in_one_segment(ex: Exchange) -> None:
    await serve_paths(ex, after_first=answer(200, b"stale"))


async def _body_longer_than_length(ex: Exchange) -> None:
    await serve_paths(ex, after_first=b"EXTRA-BYTES-NOBODY-ASKED-FOR")


@pytest.mark.parametrize("setup", [_two_answers_in_one_segment, _body_longer_than_length], indirect=True)
def test_bytes_after_an_answer_never_reach_the_next_request(setup: Setup) -> None:
    r = setup.http.get("/movies/first")
    if r.status_code == 502:
        # Bytes that are not HTTP right behind the answer: the client may
        # call the whole exchange broken, which the gateway reports as such.
        assert r.json()["error"]["code"] == "bad_gateway"
    else:
        assert (r.status_code, r.text) == (200, "/movies/first")
        assert r.headers.get_list("content-length") == [str(len("/movies/first"))]
    for i in range(3):
        r = setup.http.get(f"/movies/next{i}")
        assert (r.status_code, r.text) == (200, f"/movies/next{i}")


# -- chunked trailers, 101, folded headers ----------------------------------


async def _chunked_with_trailer(ex: Exchange) -> None:
    while await ex.request() is not None:
        await ex.send(
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ntrailer: x-checksum\r\n\r\n"
            b"5\r\nhello\r\n6\r\n world\r\n0\r\nx-checksum: abc123\r\n\r\n"
        )


@pytest.mark.parametrize("setup", [_chunked_with_trailer], indirect=True)
def test_chunked_trailers_are_not_turned_into_headers(setup: Setup) -> None:
    for _ in range(2):  # and the connection stays usable
        r = setup.http.get("/movies/t")
        assert (r.status_code, r.text) == (200, "hello world")
        assert "x-checksum" not in r.headers and "trailer" not in r.headers


async def _switching_protocols(ex: Exchange) -> None:
    if await ex.request() is not None:
        await ex.send(b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\nconnection: upgrade\r\n\r\n")
        await asyncio.sleep(5)


@pytest.mark.parametrize("setup", [_switching_protocols], indirect=True)
def test_101_from_a_backend_is_a_502_not_a_500(setup: Setup) -> None:
    start = time.monotonic()
    r = setup.http.get("/movies/ws")
    assert r.status_code == 502, r.text
    assert r.json()["error"]["code"] == "bad_gateway" and "101" in r.json()["error"]["message"]
    assert time.monotonic() - start < 2  # answered at once, not at the deadline


async def _folded_header(ex: Exchange) -> None:
    while await ex.request() is not None:
        await ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\nx-folded: first\r\n  second\r\n\r\nok")


@pytest.mark.parametrize("setup", [_folded_header], indirect=True)
def test_folded_header_is_read_not_an_error(setup: Setup) -> None:
    r = setup.http.get("/movies/f")
    assert (r.status_code, r.text) == (200, "ok")
    assert " ".join(r.headers["x-folded"].split()) == "first second"  # obs-fold becomes spaces (RFC 9112 5.2)


# -- HEAD, IPv6, a backend that closes after a 500 --------------------------


async def _head_aware(ex: Exchange) -> None:
    while (req := await ex.request()) is not None:
        if req.method == "HEAD":  # the length of the body a GET would get, and no body
            await ex.send(b"HTTP/1.1 200 OK\r\ncontent-length: 1234\r\ncontent-type: text/plain\r\n\r\n")
        else:
            await ex.send(answer(200, b"x" * 1234))


@pytest.mark.parametrize("setup", [_head_aware], indirect=True)
def test_head_through_the_gateway_keeps_the_length(setup: Setup) -> None:
    for _ in range(2):
        r = setup.http.head("/movies/h")
        assert r.status_code == 200 and r.content == b""
        assert r.headers["content-length"] == "1234"
    assert setup.http.get("/movies/h").content == b"x" * 1234  # the connection was not spoiled


def _ipv6_available() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _ipv6_available(), reason="no IPv6 loopback on this machine")
@pytest.mark.parametrize("setup", [(serve_paths, "::1")], indirect=True)
def test_host_header_brackets_an_ipv6_address(setup: Setup) -> None:
    r = setup.http.get("/movies/six")
    assert (r.status_code, r.text) == (200, "/movies/six")
    assert setup.raw.requests[-1].header("host") == f"[::1]:{setup.raw.port}"


async def _500_then_close(ex: Exchange) -> None:
    """A 500 without `connection: close`, then the server drops the
    connection a moment later (what a crashing worker does)."""
    while (req := await ex.request()) is not None:
        if "fail" in req.target:
            await ex.send(answer(500, b'{"error":{"code":"internal_error","message":"boom"}}'))
            await asyncio.sleep(0.02)
            ex.close()
            return
        await ex.send(answer(201 if req.method == "POST" else 200, req.target.encode()))


@pytest.mark.parametrize("setup", [_500_then_close], indirect=True)
def test_post_after_a_backend_500_does_not_reuse_the_closed_connection(setup: Setup) -> None:
    statuses = []
    for i in range(20):
        assert setup.http.get("/movies/fail").status_code == 500
        time.sleep(0.06)
        statuses.append(setup.http.post(f"/movies/after{i}", content=b"{}").status_code)
    assert statuses == [201] * 20


def test_peer_errors_still_name_the_peer() -> None:
    """Transport failures through Peers stay the API's 503/504 (unchanged
    contract, new client)."""

    async def never_answers(ex: Exchange) -> None:
        await ex.request()
        await asyncio.sleep(10)

    async def run(url: str) -> tuple[int, str]:
        settings = Settings(service="booking-service", peers={"movie-service": url}, peer_timeout=0.3)
        async with http_client(settings) as client:
            try:
                await Peers(settings, client).request("movie-service", "GET", "/movies/x", {})
            except ApiError as exc:
                return exc.status, exc.message
        raise AssertionError("no error")

    with RawServer(never_answers) as raw:
        status, message = asyncio.run(run(raw.url))
    assert status == 504 and "movie-service" in message
