"""`kubectl exec` and `kubectl logs` for the e2e tests, through the API
server's pods/exec (WebSocket, v4.channel.k8s.io) and pods/log subresources,
so the tests need no kubectl. The API server proxies both to the kubelet of
the pod's node, as it does for kubectl."""

from __future__ import annotations

import json
import socket
import ssl
import time
from dataclasses import dataclass
from urllib.parse import urlencode, urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import (AcceptConnection, BytesMessage, CloseConnection, RejectConnection, RejectData,
                            Request, TextMessage)

from sim.controlplane import ControlPlane

STDOUT, STDERR, ERROR = 1, 2, 3


@dataclass
class ExecResult:
    code: int
    stdout: str
    stderr: str

    def check(self) -> str:
        assert self.code == 0, f"exit {self.code}: {self.stderr[-2000:]} {self.stdout[-500:]}"
        return self.stdout


def _tls(plane: ControlPlane) -> ssl.SSLContext:
    pki = plane.pki
    tls = ssl.create_default_context(cafile=str(pki.ca_crt))
    tls.load_cert_chain(str(pki.admin_crt), str(pki.admin_key))
    return tls


def pod_exec(plane: ControlPlane, namespace: str, pod: str, command: list[str], container: str | None = None,
             timeout: float = 60) -> ExecResult:
    query = [("command", c) for c in command] + [("stdout", "true"), ("stderr", "true")]
    if container:
        query.append(("container", container))
    target = f"/api/v1/namespaces/{namespace}/pods/{pod}/exec?{urlencode(query)}"
    host = urlsplit(plane.server)
    raw = socket.create_connection((host.hostname, host.port), timeout=timeout)
    conn = _tls(plane).wrap_socket(raw, server_hostname=host.hostname)
    ws = WSConnection(ConnectionType.CLIENT)
    conn.sendall(ws.send(Request(host=f"{host.hostname}:{host.port}", target=target,
                                 subprotocols=["v4.channel.k8s.io"])))
    out = {STDOUT: bytearray(), STDERR: bytearray(), ERROR: bytearray()}
    deadline = time.monotonic() + timeout
    rejected = bytearray()
    message = bytearray()  # wsproto hands a frame over in pieces as they arrive; the channel byte leads the message
    try:
        while time.monotonic() < deadline:
            data = conn.recv(65536)
            ws.receive_data(data or None)
            for event in ws.events():
                if isinstance(event, RejectConnection | RejectData):
                    rejected += getattr(event, "data", b"") or b""
                    if getattr(event, "body_finished", True):
                        raise AssertionError(f"exec {command} in {pod} refused: "
                                             f"{getattr(event, 'status_code', '')} {bytes(rejected)[:500]!r}")
                elif isinstance(event, BytesMessage | TextMessage):
                    message += event.data if isinstance(event.data, bytes) else event.data.encode()
                    if event.message_finished:
                        if message:
                            out.setdefault(message[0], bytearray()).extend(message[1:])
                        message = bytearray()
                elif isinstance(event, CloseConnection):
                    return _result(out)
                elif isinstance(event, AcceptConnection):
                    pass
            if not data:
                return _result(out)
    finally:
        conn.close()
    raise AssertionError(f"exec {command} in {pod}: no end after {timeout:.0f}s")


def _result(out: dict[int, bytearray]) -> ExecResult:
    status = json.loads(bytes(out[ERROR]) or b"{}")
    code = 0
    if status.get("status") == "Failure":
        causes = (status.get("details") or {}).get("causes") or []
        codes = [int(c["message"]) for c in causes if c.get("reason") == "ExitCode"]
        code = codes[0] if codes else 255
    return ExecResult(code, bytes(out[STDOUT]).decode(errors="replace"), bytes(out[STDERR]).decode(errors="replace"))


def pod_logs(plane: ControlPlane, namespace: str, pod: str, container: str | None = None) -> str:
    params = {"container": container} if container else {}
    with plane.client(timeout=30) as client:
        r = client.get(f"/api/v1/namespaces/{namespace}/pods/{pod}/log", params=params)
        r.raise_for_status()
        return r.text


def python_in(plane: ControlPlane, namespace: str, pod: str, code: str, container: str | None = None,
              timeout: float = 60) -> ExecResult:
    """Run a Python snippet with the pod's own interpreter."""
    return pod_exec(plane, namespace, pod, ["python", "-c", code], container, timeout)
