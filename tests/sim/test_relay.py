"""sim/relay.py: connections made inside a network namespace reach a server on
the host's 127.0.0.1, and nothing else is reachable."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim.relay import parse_route

ROOT = Path(__file__).resolve().parents[2]


def test_routes_are_parsed_and_bad_ones_named() -> None:
    assert parse_route("10.201.3.128:443=127.0.0.1:6443") == (("10.201.3.128", 443), ("127.0.0.1", 6443))
    for bad in ("127.0.0.1:80", "127.0.0.1=127.0.0.1:80", "127.0.0.1:0=127.0.0.1:1", ":80=127.0.0.1:80",
                "127.0.0.1:99999=127.0.0.1:80", "a:b=c:d"):
        with pytest.raises(ValueError, match="route"):
            parse_route(bad)


needs_root = pytest.mark.skipif(os.geteuid() != 0 and os.environ.get("CI") != "true",
                                reason="network namespaces need root")


@pytest.fixture
def netns() -> Iterator[str]:
    name = f"theater-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    subprocess.run(["ip", "-n", name, "link", "set", "lo", "up"], check=True)
    yield name
    subprocess.run(["ip", "netns", "delete", name], check=True)


def _echo_server() -> tuple[socket.socket, int]:
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            with conn:
                while data := conn.recv(65536):
                    conn.sendall(data.upper())

    threading.Thread(target=serve, daemon=True).start()
    return server, server.getsockname()[1]


def _inside(netns: str, code: str) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", "netns", "exec", netns, sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=30)


@needs_root
def test_a_connection_inside_the_namespace_reaches_the_hosts_loopback(netns: str) -> None:
    server, port = _echo_server()
    listen_port = port  # the same port inside, as the node's kubelet uses the host's URL
    relay = subprocess.Popen([sys.executable, "-m", "sim.relay", f"/run/netns/{netns}",
                              f"127.0.0.1:{listen_port}=127.0.0.1:{port}"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert "relay: 1 routes" in relay.stdout.readline()
        size = 300_000  # more than one read: the pipe loops
        code = (f"import socket; s = socket.create_connection(('127.0.0.1', {listen_port}), timeout=10); "
                f"s.sendall(b'x' * {size}); s.shutdown(socket.SHUT_WR); data = b''\n"
                f"while chunk := s.recv(65536): data += chunk\nprint(len(data), data[:3].decode())")
        result = _inside(netns, code)
        assert result.stdout.split() == [str(size), "XXX"], result.stderr
        # Without the relay nothing of the host is reachable from inside: another host port is closed there.
        other, other_port = _echo_server()
        result = _inside(netns, f"import socket; socket.create_connection(('127.0.0.1', {other_port}), timeout=5)")
        assert "ConnectionRefusedError" in result.stderr
        other.close()
    finally:
        relay.terminate()
        relay.wait(10)
        server.close()
    assert relay.returncode == 0


@needs_root
def test_the_relay_closes_a_connection_whose_target_is_down(netns: str) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        dead_port = s.getsockname()[1]  # nothing listens there once closed
    relay = subprocess.Popen([sys.executable, "-m", "sim.relay", f"/run/netns/{netns}",
                              f"127.0.0.1:{dead_port}=127.0.0.1:{dead_port}"], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        relay.stdout.readline()
        started = time.monotonic()
        code = (f"import socket; s = socket.create_connection(('127.0.0.1', {dead_port}), timeout=10); "
                "print(repr(s.recv(10)))")
        result = _inside(netns, code)
        assert result.stdout.strip() == "b''", result.stderr
        assert time.monotonic() - started < 10
        assert relay.poll() is None, "one failed connection must not stop the relay"
    finally:
        relay.terminate()
        relay.wait(10)
