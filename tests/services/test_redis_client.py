"""The services' Redis client (services/common/redis.py) against a real
redis-server that stops answering (SIGSTOP, as a stalled node): every
command still fails within the Redis timeout, with RedisTimeout (which the
apps answer as 503), whether the stall catches it reading the answer or
still sending a large command, and the client works again once Redis
resumes. Also against a real redis-server: a restart between two commands
costs no failed command, scripts survive SCRIPT FLUSH, and a page of
pipelined commands from many tasks each get their own reply.
The hostile peers (garbage, split and merged replies...) are in
test_redis_protocol.py."""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from services.common import redis as redis_mod
from services.common.settings import Settings
from services.launcher import free_port
from services.redis_server import RedisServer

TIMEOUT = 0.5


def client(server: RedisServer):
    return redis_mod.connect(Settings(service="movie-service", redis_url=server.url + "/0", redis_timeout=TIMEOUT))


async def _stalled(server: RedisServer, command) -> tuple[type[BaseException] | None, float]:
    r = client(server)
    try:
        await r.set("warm", "1")  # a pooled connection, already open
        assert server.proc is not None
        os.kill(server.proc.pid, signal.SIGSTOP)
        start = time.monotonic()
        try:
            await command(r)
            error = None
        except BaseException as exc:  # noqa: BLE001 (the type is the finding)
            error = type(exc)
        elapsed = time.monotonic() - start
        os.kill(server.proc.pid, signal.SIGCONT)
        assert await r.get("warm") == "1"  # usable again once Redis resumes
        return error, elapsed
    finally:
        if server.proc is not None:
            os.kill(server.proc.pid, signal.SIGCONT)
        await r.aclose()


def test_a_stall_while_reading_the_answer_fails_within_the_timeout(private_redis: RedisServer) -> None:
    error, elapsed = asyncio.run(_stalled(private_redis, lambda r: r.get("warm")))
    assert error is redis_mod.RedisTimeout
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2.0


@pytest.mark.parametrize("megabytes", [32])
def test_a_stall_while_sending_a_large_command_fails_within_the_timeout(private_redis: RedisServer, megabytes: int) -> None:
    # Far more than the kernel's socket buffers take: the write itself waits.
    value = "x" * (megabytes * 1024 * 1024)
    error, elapsed = asyncio.run(_stalled(private_redis, lambda r: r.set("big", value)))
    assert error is redis_mod.RedisTimeout
    assert TIMEOUT * 0.8 <= elapsed < TIMEOUT + 2.0


def test_a_restart_between_two_commands_fails_neither(private_redis: RedisServer) -> None:
    async def scenario() -> list:
        r = client(private_redis)
        try:
            out = [await r.set("k", "before")]
            private_redis.stop()  # SIGTERM: Redis saves and closes every connection
            private_redis.start()
            await asyncio.sleep(0.05)  # the close reaches the client's event loop
            out.append(await r.get("k"))
            return out
        finally:
            await r.aclose()

    assert asyncio.run(scenario()) == [True, "before"]


def test_a_refused_connection_fails_fast_and_the_next_command_connects(private_redis: RedisServer) -> None:
    async def scenario() -> tuple[type[BaseException], float, str | None]:
        r = client(private_redis)
        try:
            private_redis.stop()
            start = time.monotonic()
            with pytest.raises(redis_mod.RedisUnavailable) as refused:
                await r.get("k")
            elapsed = time.monotonic() - start
            private_redis.start()
            return refused.type, elapsed, await r.get("k")
        finally:
            await r.aclose()

    error, elapsed, value = asyncio.run(scenario())
    assert error is redis_mod.RedisUnavailable and elapsed < TIMEOUT
    assert value is None


def test_scripts_run_again_after_redis_forgot_them(private_redis: RedisServer) -> None:
    async def scenario() -> list:
        r = client(private_redis)
        script = r.register_script("return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}")
        try:
            out = [await script(keys=["n"], args=["a"])]  # NOSCRIPT, then EVAL
            out.append(await script(keys=["n"], args=["b"]))  # EVALSHA
            await r.execute("SCRIPT", "FLUSH")
            out.append(await script(keys=["n"], args=["c"]))
            return out
        finally:
            await r.aclose()

    assert asyncio.run(scenario()) == [["n", "a", 1], ["n", "b", 2], ["n", "c", 3]]


def test_many_tasks_on_one_connection_each_get_their_own_reply(private_redis: RedisServer) -> None:
    async def scenario() -> tuple[int, int]:
        r = client(private_redis)
        try:
            await asyncio.gather(*(r.set(f"k{i}", f"v{i}") for i in range(500)))

            async def check(i: int) -> int:
                keys = [f"k{(i + j) % 500}" for j in range(i % 7 + 1)]
                values = await r.mget(keys)
                return sum(v == f"v{k[1:]}" for k, v in zip(keys, values))

            counts = await asyncio.gather(*(check(i) for i in range(2_000)))
            clients = await r.execute("CLIENT", "LIST")
            return sum(counts), clients.count("\n")
        finally:
            await r.aclose()

    matched, connections = asyncio.run(scenario())
    assert matched == sum(i % 7 + 1 for i in range(2_000))
    assert connections == 1  # pipelined on one connection, not a pool


def test_errors_replies_and_types(private_redis: RedisServer) -> None:
    async def scenario() -> list:
        r = client(private_redis)
        try:
            await r.execute("HSET", "h", "a", "1", "b", "2")
            await r.execute("ZADD", "z", 1, "one", 2.5, "two", 3, "three")
            out: list = [await r.hscan("h"), await r.hscan("missing"), await r.exists("h", "missing")]
            out.append(await r.zrangebyscore("z", "(1", "+inf", withscores=True))
            out.append(await r.zrangebyscore("z", "-inf", "+inf", offset=1, count=1))
            with pytest.raises(redis_mod.RedisReplyError, match="WRONGTYPE"):
                await r.get("h")
            out.append(await r.ping())  # the connection survives an error reply
            with pytest.raises(TypeError, match="not NoneType"):
                await r.execute("SET", "k", None)  # type: ignore[arg-type]
            out.append(await r.set("bytes", b"\xff\xfe"))
            out.append(await r.get("bytes"))  # not UTF-8: replaced, not an exception
            return out
        finally:
            await r.aclose()

    hash_, empty, exists, scored, page, pong, stored, undecodable = asyncio.run(scenario())
    assert hash_ == ("0", {"a": "1", "b": "2"}) and empty == ("0", {}) and exists == 1
    assert scored == [("two", 2.5), ("three", 3.0)] and page == ["two"]
    assert pong is True and stored is True and undecodable == "\ufffd\ufffd"


def test_a_unix_socket_url_with_a_database(tmp_path) -> None:
    async def scenario(socket: Path) -> tuple[str | None, str]:
        r = redis_mod.Redis(f"unix://{socket}?db=2", TIMEOUT)
        try:
            await r.set("k", "v")
            return await r.get("k"), await r.execute("CLIENT", "INFO")
        finally:
            await r.aclose()

    socket = tmp_path / "redis.sock"
    with RedisServer(tmp_path / "redis", free_port(), unix_socket=socket):
        value, info = asyncio.run(scenario(socket))
    assert value == "v" and " db=2 " in info
