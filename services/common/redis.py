"""The Redis client each service uses for its own key space.

One TCP connection per process carries every command (RESP2, pipelined):
commands are written as they come, and replies, which Redis sends in the
order it received the commands, are handed to the waiting callers in that
order. hiredis (C, maintained by the Redis project) parses the replies; this
module only frames commands and matches replies to callers.

Why not redis-py: it costs about 100 us of CPU per command (a pool checkout,
a lock, command-name dispatch and response callbacks, per command), about
one whole constant-JSON request, and it held movie-service's single read
under half of a bare Starlette app (issue 16, bench/findings.md). This client
costs about a fifth of that, close to a bare protocol with hiredis
(`uv run python -m bench.redis_cpu`).

What a caller can rely on (tests/services/test_redis_protocol.py runs each
against a hostile server, test_redis_client.py against a stalled Redis):
- Every command ends within `timeout` seconds: with its reply, with
  `RedisReplyError` (an error reply; the connection stays), or with
  `RedisUnavailable` (refused, lost, timed out, or a peer that broke the
  protocol). Then the connection is closed, every command still waiting on
  it fails the same way, and the next command opens a new connection.
- A reply is never handed to the wrong caller. A reply that nobody asked
  for, or bytes that are not RESP, close the connection.
- Nothing is resent on its own: a command that timed out may still run once
  Redis resumes, so resending it could run it twice (the services' writes
  are fenced Lua scripts that are safe to repeat on purpose, see
  services/booking_ledger.py; a blind resend is never what the caller
  asked for). The one exception is EVALSHA answered NOSCRIPT, which ran
  nothing, and is sent again as EVAL.
- A caller that is cancelled does not disturb the others: its reply is read
  and dropped.
- A connection that Redis closed (a restart) is noticed when the close
  arrives, and the next command reconnects instead of failing.
"""

from __future__ import annotations

import asyncio
import collections
import hashlib
from collections.abc import Iterable, Sequence
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import hiredis

from services.common.settings import Settings


class RedisError(Exception):
    """Anything the Redis client raises."""


class RedisUnavailable(RedisError):
    """Redis could not be reached or did not answer in time (the apps
    answer 503)."""


class RedisTimeout(RedisUnavailable):
    """No reply within the timeout."""


class RedisReplyError(RedisError):
    """Redis answered with an error reply (`-ERR ...`); the text is the reply."""


Arg = str | bytes | int | float


def encode_command(args: Sequence[Arg]) -> bytes:
    """A command as RESP: an array of bulk strings."""
    parts = [b"*%d\r\n" % len(args)]
    for arg in args:
        if isinstance(arg, str):
            raw = arg.encode()
        elif isinstance(arg, bytes):
            raw = arg
        elif isinstance(arg, (int, float)) and not isinstance(arg, bool):
            raw = repr(arg).encode()
        else:
            raise TypeError(f"a Redis argument must be str, bytes, int or float, not {type(arg).__name__}")
        parts.append(b"$%d\r\n%s\r\n" % (len(raw), raw))
    return b"".join(parts)


class _Connection(asyncio.Protocol):
    """One connection: commands out in order, replies back in the same order."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.reader = hiredis.Reader(encoding="utf-8", errors="replace", replyError=RedisReplyError)
        self.waiters: collections.deque[asyncio.Future[Any]] = collections.deque()
        self.deadlines: collections.deque[float] = collections.deque()
        self.timer: asyncio.TimerHandle | None = None
        self.unsent: list[bytes] = []
        self.closed = False
        self.lost = self.loop.create_future()

    # -- the asyncio side

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        reader = self.reader
        waiters = self.waiters
        reader.feed(data)
        while True:
            try:
                reply = reader.gets()
            except hiredis.ProtocolError as exc:
                self.fail(RedisUnavailable(f"Redis sent bytes that are not RESP: {exc}"))
                return
            if reply is False:
                return
            if not waiters:
                self.fail(RedisUnavailable("Redis sent a reply no command asked for"))
                return
            waiter = waiters.popleft()
            self.deadlines.popleft()
            if waiter.done():  # its caller was cancelled: the reply is read and dropped
                continue
            if isinstance(reply, RedisReplyError):
                waiter.set_exception(reply)
            else:
                waiter.set_result(reply)

    def eof_received(self) -> bool:
        self.fail(RedisUnavailable("Redis closed the connection"))
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(RedisUnavailable(f"connection to Redis lost: {exc}" if exc else "connection to Redis lost"))
        if not self.lost.done():
            self.lost.set_result(None)

    # -- the caller side

    def send(self, args: Sequence[Arg]) -> asyncio.Future[Any]:
        if self.closed:
            raise RedisUnavailable("connection to Redis closed")
        payload = encode_command(args)
        waiter = self.loop.create_future()
        deadline = self.loop.time() + self.timeout
        self.waiters.append(waiter)
        self.deadlines.append(deadline)
        if self.timer is None:
            self.timer = self.loop.call_at(deadline, self._check_deadline)
        if not self.unsent:
            self.loop.call_soon(self._flush)
        self.unsent.append(payload)
        return waiter

    def _flush(self) -> None:
        """Write the commands of one event-loop turn together: under load the
        requests a server handles in one turn cost Redis and the kernel one
        write and one read instead of one each."""
        if self.closed:
            return
        assert self.transport is not None
        unsent, self.unsent = self.unsent, []
        self.transport.write(b"".join(unsent) if len(unsent) > 1 else unsent[0])

    def _check_deadline(self) -> None:
        """The oldest command has the earliest deadline (one timeout for all,
        replies in order), so one timer, re-armed to the oldest command still
        waiting, enforces every command's deadline."""
        self.timer = None
        if not self.deadlines:
            return
        if self.deadlines[0] <= self.loop.time():
            self.fail(RedisTimeout(f"no reply from Redis within {self.timeout:g} s"))
        else:
            self.timer = self.loop.call_at(self.deadlines[0], self._check_deadline)

    def fail(self, error: RedisUnavailable) -> None:
        """Close the connection; every command still waiting gets `error`."""
        self.closed = True
        self.unsent.clear()
        if self.timer is not None:
            self.timer.cancel()
            self.timer = None
        if self.transport is not None:
            self.transport.abort()  # drops unsent commands too
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)
        self.deadlines.clear()


class Script:
    """A Lua script, run by its SHA1 (EVALSHA) and sent in full (EVAL) only
    when Redis does not have it yet."""

    def __init__(self, client: Redis, source: str) -> None:
        self.client = client
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()

    async def __call__(self, keys: Sequence[Arg] = (), args: Sequence[Arg] = ()) -> Any:
        try:
            return await self.client.execute("EVALSHA", self.sha, len(keys), *keys, *args)
        except RedisReplyError as exc:
            if not str(exc).startswith("NOSCRIPT"):
                raise
        return await self.client.execute("EVAL", self.source, len(keys), *keys, *args)


class Redis:
    """A client for one Redis database, from a `redis://[[user]:password@]
    host[:port][/db]` URL or a `unix:///path/to/socket?db=N` one. No TLS
    (`rediss://`): in the clusters Istio's mTLS already encrypts the hop to
    Redis. It connects on the first command, so building it never fails."""

    def __init__(self, url: str, timeout: float) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "unix"):
            raise ValueError(f"a Redis URL starts with redis:// or unix://, not {url!r}")
        self.timeout = timeout
        self.scheme = parts.scheme
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 6379
        self.path = unquote(parts.path)
        db = parse_qs(parts.query).get("db", [""])[0] or (parts.path.strip("/") if parts.scheme != "unix" else "") or "0"
        if not db.isdigit():
            raise ValueError(f"the Redis database in {url!r} must be a number, not {db!r}")
        self.db = int(db)
        self.username = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self._conn: _Connection | None = None
        self._connecting: asyncio.Lock | None = None

    # -- commands the services use

    async def execute(self, *args: Arg) -> Any:
        conn = self._conn
        if conn is None or conn.closed:
            conn = await self._connect()
        return await conn.send(args)

    def register_script(self, source: str) -> Script:
        return Script(self, source)

    async def ping(self) -> bool:
        return await self.execute("PING") == "PONG"

    async def get(self, key: str) -> str | None:
        return await self.execute("GET", key)

    async def mget(self, keys: Iterable[str]) -> list[str | None]:
        return await self.execute("MGET", *keys)

    async def set(self, key: str, value: Arg) -> bool:
        return await self.execute("SET", key, value) == "OK"

    async def exists(self, *keys: str) -> int:
        return await self.execute("EXISTS", *keys)

    async def hget(self, key: str, field: str) -> str | None:
        return await self.execute("HGET", key, field)

    async def hscan(self, key: str, cursor: str = "0", count: int = 1000) -> tuple[str, dict[str, str]]:
        """One HSCAN step: (next cursor, "0" at the end; some of the fields).
        Never HGETALL: one command over a hash of any size holds Redis for
        as long as the hash is big (docs/scale.md)."""
        next_cursor, flat = await self.execute("HSCAN", key, cursor, "COUNT", count)
        return next_cursor, dict(zip(flat[::2], flat[1::2]))

    async def zrem(self, key: str, *members: str) -> int:
        return await self.execute("ZREM", key, *members)

    async def zrange(self, key: str, start: Arg, stop: Arg) -> list[str]:
        return await self.execute("ZRANGE", key, start, stop)

    async def zrangebyscore(
        self, key: str, low: Arg, high: Arg, *, offset: int = 0, count: int = -1, withscores: bool = False
    ) -> list[Any]:
        """Members with low <= score <= high (`(` before a bound excludes
        it), at most `count` from `offset`; with `withscores`, (member,
        score) pairs."""
        args: list[Arg] = ["ZRANGEBYSCORE", key, low, high]
        if withscores:
            args.append("WITHSCORES")
        args += ["LIMIT", offset, count]
        rows = await self.execute(*args)
        if not withscores:
            return rows
        return [(rows[i], float(rows[i + 1])) for i in range(0, len(rows), 2)]

    async def aclose(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None and not conn.closed:
            conn.fail(RedisUnavailable("the client was closed"))
            await conn.lost

    # -- connecting

    async def _connect(self) -> _Connection:
        if self._connecting is None:
            self._connecting = asyncio.Lock()
        async with self._connecting:  # callers that arrive meanwhile share one new connection
            conn = self._conn
            if conn is not None and not conn.closed:
                return conn
            conn = await self._open()
            self._conn = conn
            return conn

    async def _open(self) -> _Connection:
        loop = asyncio.get_running_loop()
        conn: _Connection | None = None

        def protocol() -> _Connection:
            nonlocal conn
            conn = _Connection(self.timeout)
            return conn

        try:
            async with asyncio.timeout(self.timeout):
                if self.scheme == "unix":
                    await loop.create_unix_connection(protocol, self.path)
                else:
                    await loop.create_connection(protocol, self.host, self.port)
                assert conn is not None
                if self.password is not None:
                    auth = [self.username, self.password] if self.username else [self.password]
                    await conn.send(["AUTH", *auth])
                if self.db:
                    await conn.send(["SELECT", self.db])
        except TimeoutError:
            if conn is not None:
                conn.fail(RedisTimeout("timed out"))
            raise RedisTimeout(f"could not connect to Redis at {self._where()} within {self.timeout:g} s") from None
        except OSError as exc:
            raise RedisUnavailable(f"could not connect to Redis at {self._where()}: {exc.strerror or exc}") from None
        except RedisReplyError as exc:  # a wrong password or database: Redis is unusable with this URL
            assert conn is not None
            conn.fail(RedisUnavailable("refused"))
            raise RedisUnavailable(f"Redis at {self._where()} refused the connection's setup: {exc}") from None
        return conn

    def _where(self) -> str:
        return self.path if self.scheme == "unix" else f"{self.host}:{self.port}"


def connect(settings: Settings) -> Redis:
    """The service's client. A short timeout makes an outage show up as a
    quick 503 instead of a request that hangs."""
    return Redis(settings.redis_url, settings.redis_timeout)
