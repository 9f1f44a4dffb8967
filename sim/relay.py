"""TCP relay between a real node's network namespace and the host's loopback.

The control plane and the registry listen on the host's 127.0.0.1 only. A
real node (sim/node.py) lives in a network namespace of its own, where
127.0.0.1 is another loopback. This process listens inside that namespace
and forwards each connection to the host:

    python -m sim.relay /run/netns/NAME 127.0.0.1:6443=127.0.0.1:6443 10.201.3.128:443=127.0.0.1:6443 ...

Each listening socket is made inside the node's namespace (setns there,
socket(), setns back); a socket keeps the namespace it was made in. Outgoing
connections are made in the relay's own (the host's) namespace. So the node's
kubelet, kube-proxy, CoreDNS and containerd use the same URLs as the host, and
its pods reach the API servers at addresses of the node's namespace, while
nothing listens on a host address other than 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import ctypes
import os
import signal
import socket
import sys
from contextlib import contextmanager

CLONE_NEWNET = 0x40000000
_libc = ctypes.CDLL(None, use_errno=True)


def _setns(fd: int) -> None:
    if _libc.setns(fd, CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"setns: {os.strerror(err)}")


@contextmanager
def in_netns(path: str):
    """Run the block's socket() calls in the network namespace at path (this thread only)."""
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
    target = os.open(path, os.O_RDONLY)
    try:
        _setns(target)
        try:
            yield
        finally:
            _setns(own)
    finally:
        os.close(target)
        os.close(own)


def parse_route(text: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """'LISTEN_IP:PORT=TARGET_IP:PORT' -> ((ip, port), (ip, port))."""
    listen, sep, target = text.partition("=")
    if not sep:
        raise ValueError(f"route {text!r}: expected LISTEN_IP:PORT=TARGET_IP:PORT")

    def addr(part: str) -> tuple[str, int]:
        host, colon, port = part.rpartition(":")
        if not colon or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ValueError(f"route {text!r}: {part!r} is not IP:PORT")
        return host, int(port)

    return addr(listen), addr(target)


def listen_in(netns: str, address: tuple[str, int]) -> socket.socket:
    with in_netns(netns):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
        if writer.can_write_eof():
            writer.write_eof()
    except (ConnectionError, OSError):
        writer.close()


def handler(target: tuple[str, int]):
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.wait_for(asyncio.open_connection(*target), timeout=10)
        except (OSError, asyncio.TimeoutError):
            writer.close()
            return
        try:
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            up_writer.close()
            writer.close()

    return handle


async def serve(netns: str, routes: list[tuple[tuple[str, int], tuple[str, int]]]) -> None:
    servers = [await asyncio.start_server(handler(target), sock=listen_in(netns, listen), limit=65536)
               for listen, target in routes]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"relay: {len(servers)} routes into {netns}", flush=True)
    await stop.wait()
    for server in servers:
        server.close()


def main(argv: list[str]) -> int:
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        routes = [parse_route(a) for a in argv[1:]]
    except ValueError as exc:
        print(f"relay: {exc}", file=sys.stderr)
        return 2
    asyncio.run(serve(argv[0], routes))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
