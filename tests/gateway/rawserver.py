"""A raw-socket HTTP backend for tests: an asyncio server in a thread whose
answers are written byte for byte by the test, so it can misbehave the way a
hand-written client got wrong (unsolicited 408, two answers in one segment,
a body longer than its Content-Length, trailers, 101, folded headers)."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

Handler = Callable[["Exchange"], Awaitable[None]]


@dataclass
class Request:
    method: str
    target: str
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name), None)


@dataclass
class Exchange:
    """One connection: read requests off it and write whatever bytes."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    server: RawServer
    number: int  # 1 for the server's first connection, 2 for the next...

    async def request(self) -> Request | None:
        try:
            head = await self.reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        lines = head.decode("latin-1").split("\r\n")
        method, target, _ = lines[0].split(" ", 2)
        headers = [tuple(line.split(": ", 1)) for line in lines[1:] if line]
        req = Request(method, target, headers, b"")  # type: ignore[arg-type]
        length = int(req.header("content-length") or 0)
        if length:
            req.body = await self.reader.readexactly(length)
        self.server.requests.append(req)
        return req

    async def send(self, data: bytes) -> None:
        self.writer.write(data)
        await self.writer.drain()

    def close(self) -> None:
        self.writer.close()


def answer(status: int, body: bytes = b"", *headers: str, reason: str = "X") -> bytes:
    """A well-formed answer with a Content-Length."""
    lines = [f"HTTP/1.1 {status} {reason}", f"content-length: {len(body)}", *headers]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@dataclass
class RawServer:
    handler: Handler
    host: str = "127.0.0.1"
    requests: list[Request] = field(default_factory=list)
    connections: int = 0

    def start(self) -> RawServer:
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        self._sock = socket.socket(family, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]
        self._loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            self._server = await asyncio.start_server(self._connected, sock=self._sock)
            ready.set()
            try:
                await self._server.serve_forever()
            finally:
                # stop() cancels the connections too: let each one finish
                # (its writer closed) while the loop still runs, or the
                # garbage collector closes them later on a closed loop.
                others = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
                for task in others:
                    task.cancel()
                await asyncio.gather(*others, return_exceptions=True)

        def run() -> None:
            try:
                self._loop.run_until_complete(serve())
            except (asyncio.CancelledError, RuntimeError):
                pass

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()
        ready.wait(5)
        return self

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    async def _connected(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            await self.handler(Exchange(reader, writer, self, self.connections))
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            writer.close()

    def stop(self) -> None:
        self._loop.call_soon_threadsafe(self._server.close)
        for task in asyncio.all_tasks(self._loop):
            self._loop.call_soon_threadsafe(task.cancel)
        self._thread.join(5)

    def __enter__(self) -> RawServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
