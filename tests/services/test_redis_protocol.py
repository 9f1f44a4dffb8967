"""The services' Redis client (services/common/redis.py) against hostile
peers: a raw asyncio server that answers each command as a test scripts it
(merged, split, extra, garbage, truncated or no replies). What must hold:
every reply reaches the command that asked for it, or the command fails
with RedisUnavailable within the timeout; the connection that misbehaved is
closed and the next command works on a new one; nothing is sent twice."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

import hiredis
import pytest

from services.common import redis as redis_mod

TIMEOUT = 0.4

Behaviour = Callable[["Peer", int, list[str], asyncio.StreamWriter], Awaitable[None]]


class Peer:
    """A TCP server speaking (or breaking) RESP: `behave(peer, connection
    number, command, writer)` runs for each command it reads."""

    def __init__(self, behave: Behaviour) -> None:
        self.behave = behave
        self.commands: list[tuple[int, list[str]]] = []
        self.connections = 0
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Peer:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    @property
    def port(self) -> int:
        assert self.server is not None
        return self.server.sockets[0].getsockname()[1]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self, url: str | None = None) -> redis_mod.Redis:
        return redis_mod.Redis(url or self.url, TIMEOUT)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        number = self.connections
        parser = hiredis.Reader(encoding="utf-8")
        try:
            while data := await reader.read(65536):
                parser.feed(data)
                while (command := parser.gets()) is not False:
                    self.commands.append((number, command))
                    await self.behave(self, number, command, writer)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()


async def _echo(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
    """A well-behaved server: GET k answers "k@<connection>"."""
    writer.write(_bulk(f"{command[1]}@{number}") if command[0] == "GET" else b"+OK\r\n")


def _bulk(text: str) -> bytes:
    raw = text.encode()
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


def run(behave: Behaviour, scenario: Callable[[Peer], Awaitable[object]]) -> object:
    async def main() -> object:
        async with Peer(behave) as peer:
            return await scenario(peer)

    return asyncio.run(main())


def test_two_replies_in_one_segment_go_to_their_own_commands() -> None:
    held: list[bytes] = []

    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        held.append(_bulk(command[1] + "!"))
        if len(held) == 2:
            writer.write(b"".join(held))  # both replies in one write

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        out = await asyncio.gather(r.get("a"), r.get("b"))
        await r.aclose()
        return out

    assert run(behave, scenario) == ["a!", "b!"]


def test_replies_split_byte_by_byte_are_put_back_together() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        reply = b"*3\r\n" + _bulk(command[1]) + b"$-1\r\n" + b":42\r\n"
        for byte in reply:
            writer.write(bytes([byte]))
            await writer.drain()
            await asyncio.sleep(0.001)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        out = await asyncio.gather(r.mget(["x"]), r.mget(["y"]))
        await r.aclose()
        return out

    assert run(behave, scenario) == [["x", None, 42], ["y", None, 42]]


def test_a_reply_nobody_asked_for_closes_the_connection() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if number == 1 and command[1] == "first":
            writer.write(_bulk("first@1") + _bulk("stale"))  # one reply too many
        else:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        first = await r.get("first")
        await asyncio.sleep(0.05)
        second = await r.get("second")  # not "stale": a new connection answers
        await r.aclose()
        return first, second, peer.connections

    assert run(behave, scenario) == ("first@1", "second@2", 2)


@pytest.mark.parametrize(
    "garbage",
    [
        b"HTTP/1.1 400 Bad Request\r\n\r\n",  # REDIS_URL pointing at a web server
        b"$abc\r\n",  # a length that is not a number
        b"*1\r\n" * 100_000 + b":1\r\n",  # nested deeper than hiredis reads
        b"$-2\r\n",  # a length out of range
        b"\x00\x01\r\n",  # binary noise
    ],
    ids=["http", "bad-length", "deep-nesting", "negative-length", "noise"],
)
def test_bytes_that_are_not_resp_fail_the_command_and_the_next_one_reconnects(garbage: bytes) -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if number == 1:
            writer.write(garbage)
        else:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        with pytest.raises(redis_mod.RedisUnavailable, match="not RESP"):
            await r.get("a")
        after = await r.get("b")
        await r.aclose()
        return after

    assert run(behave, scenario) == "b@2"


def test_a_close_in_the_middle_of_a_reply_fails_every_waiting_command() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if number == 1 and command[1] == "c":
            writer.write(b"$10\r\nabc")  # 3 of 10 bytes, then gone
            await writer.drain()
            writer.close()
        elif number > 1:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        results = await asyncio.gather(r.get("a"), r.get("b"), r.get("c"), return_exceptions=True)
        after = await r.get("d")
        await r.aclose()
        return [type(x).__name__ for x in results], after

    errors, after = run(behave, scenario)  # type: ignore[misc]
    assert errors == ["RedisUnavailable"] * 3  # a and b were never answered either
    assert after == "d@2"


def test_a_silent_server_times_out_every_command_and_none_is_resent() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if number > 1:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        start = time.monotonic()
        results = await asyncio.gather(r.get("a"), r.get("b"), return_exceptions=True)
        elapsed = time.monotonic() - start
        after = await r.get("c")
        await r.aclose()
        return [type(x).__name__ for x in results], elapsed, after, peer.commands

    errors, elapsed, after, commands = run(behave, scenario)  # type: ignore[misc]
    assert errors == ["RedisTimeout", "RedisTimeout"]
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2.0
    assert after == "c@2"
    assert commands == [(1, ["GET", "a"]), (1, ["GET", "b"]), (2, ["GET", "c"])]  # each sent once


def test_a_cancelled_command_does_not_shift_the_replies() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if command[1] == "slow":
            await asyncio.sleep(0.1)
        await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        slow = asyncio.create_task(r.get("slow"))
        await asyncio.sleep(0.02)
        slow.cancel()
        after = await r.get("next")  # its reply comes after the dropped one
        await r.aclose()
        return slow.cancelled(), after, peer.connections

    assert run(behave, scenario) == (True, "next@1", 1)


def test_an_error_reply_fails_only_its_command() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if command[1] == "bad":
            writer.write(b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n")
        else:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        r = peer.client()
        results = await asyncio.gather(r.get("a"), r.get("bad"), r.get("c"), return_exceptions=True)
        await r.aclose()
        return results, peer.connections

    (a, bad, c), connections = run(behave, scenario)  # type: ignore[misc]
    assert (a, c, connections) == ("a@1", "c@1", 1)
    assert isinstance(bad, redis_mod.RedisReplyError) and str(bad).startswith("WRONGTYPE")


def test_commands_waiting_for_a_connection_share_one() -> None:
    async def scenario(peer: Peer) -> object:
        r = peer.client()
        out = await asyncio.gather(*(r.get(f"k{i}") for i in range(50)))
        await r.aclose()
        return out, peer.connections

    out, connections = run(_echo, scenario)  # type: ignore[misc]
    assert out == [f"k{i}@1" for i in range(50)] and connections == 1


def test_password_and_database_come_from_the_url() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        if command[0] == "AUTH" and command[-1] != "p@ss":
            writer.write(b"-WRONGPASS invalid username-password pair or user is disabled.\r\n")
        else:
            await _echo(peer, number, command, writer)

    async def scenario(peer: Peer) -> object:
        good = peer.client(f"redis://app:p%40ss@127.0.0.1:{peer.port}/3")
        value = await good.get("k")
        bad = peer.client(f"redis://app:nope@127.0.0.1:{peer.port}/0")
        with pytest.raises(redis_mod.RedisUnavailable, match="WRONGPASS"):
            await bad.get("k")
        await good.aclose()
        await bad.aclose()
        return value, peer.commands

    value, commands = run(behave, scenario)  # type: ignore[misc]
    assert value == "k@1"
    assert commands == [(1, ["AUTH", "app", "p@ss"]), (1, ["SELECT", "3"]), (1, ["GET", "k"]), (2, ["AUTH", "app", "nope"])]


def test_a_server_that_accepts_but_never_answers_the_setup_times_out() -> None:
    async def behave(peer: Peer, number: int, command: list[str], writer: asyncio.StreamWriter) -> None:
        pass  # AUTH is never answered

    async def scenario(peer: Peer) -> object:
        r = peer.client(f"redis://:secret@127.0.0.1:{peer.port}/0")
        start = time.monotonic()
        with pytest.raises(redis_mod.RedisTimeout):
            await r.get("k")
        elapsed = time.monotonic() - start
        await r.aclose()
        return elapsed

    elapsed = run(behave, scenario)
    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + 2.0  # type: ignore[operator]


@pytest.mark.parametrize("url", ["http://127.0.0.1:6379", "rediss://127.0.0.1:6379/0", "redis://127.0.0.1:6379/zero"])
def test_a_bad_url_is_named(url: str) -> None:
    with pytest.raises(ValueError, match="Redis"):
        redis_mod.Redis(url, TIMEOUT)
