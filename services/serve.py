"""Run one service under Granian: `python -m services.serve [SERVICE]`.

The container images and `theater local` both start services this way.
SERVICE defaults to $SERVICE_NAME; the port to $PORT, else the catalog's.

Why Granian (a Rust HTTP server, hyper underneath) rather than uvicorn: it
bounds what a hostile or broken client can hold. uvicorn (httptools) has no
header read timeout, no body read timeout and no limit on header size, so a
client sending a 10 MiB header or half a request kept memory and a socket
for as long as it liked. The bounds every service gets (docs/server-limits.md):

* request headers must arrive whole within HEADER_READ_TIMEOUT seconds of
  the connection opening (or of the previous answer), else the connection
  is closed: this covers a client that sends nothing at all;
* an idle keep-alive connection is closed after the same time;
* headers larger than MAX_HEADER_BYTES, or more than 100 of them (hyper's
  fixed limit), are answered 431 and the connection closed;
* the body must arrive within BODY_READ_TIMEOUT seconds of the request's
  start, else 408 (services/common/app.py, BodyLimitMiddleware), and may be
  at most 64 KiB (413);
* the one worker serves MAX_CONNECTIONS (2048) connections at a time; more
  wait in the kernel's listen queue until one ends. With 2,000 slow-header
  clients held, a normal GET still answers in under 100 ms and the service
  stays under ~90 MiB PSS (the pod's limit is 128 MiB); Granian's default
  of 1024 let 1,100 slow clients hold a GET for 3-4.5 s
  (`uv run python -m bench.slow_connections`). In the cluster, the Envoy
  sidecar sits in front and holds the client connections itself.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from granian.constants import HTTPModes, Interfaces, Loops
from granian.http import HTTP1Settings
from granian.log import LogLevels
from granian.server import Server

from services import catalog

HEADER_READ_TIMEOUT = 5.0
MAX_HEADER_BYTES = 16 * 1024  # hyper answers 431 from ~16 KiB of headers (measured), as Node.js does
# Connections served at a time (each slow connection costs ~15 KiB: 2,000 of
# them ~88 MiB PSS in all, 4,000 ~128 MiB, the pod's limit), and the kernel's
# queue of connections not yet accepted (capped by net.core.somaxconn).
# Figures: bench/slow_connections.py.
MAX_CONNECTIONS = 2048
LISTEN_BACKLOG = 4096


def server_options(spec: catalog.ServiceSpec) -> dict[str, Any]:
    """The keyword arguments for granian's Server that every service gets
    (all but the app): host and port (from $HOST, $PORT, else the catalog's
    port), logging from $LOG_LEVEL / $ACCESS_LOG, the HTTP/1 bounds above
    (HEADER_READ_TIMEOUT_SECONDS overrides the timeout), graceful shutdown.
    bench/baseline_app.py serves its baselines with the same options."""
    header_timeout = float(os.environ.get("HEADER_READ_TIMEOUT_SECONDS", HEADER_READ_TIMEOUT))
    return {
        "address": os.environ.get("HOST", "0.0.0.0"),
        "port": int(os.environ.get("PORT", spec.port)),
        "interface": Interfaces.ASGI,
        # HTTP/1.1 only (what Envoy and browsers speak to the services): with
        # the HTTP/2 sniffing of "auto" the header timeout does not start on
        # a connection that sends nothing at all.
        "http": HTTPModes.http1,
        "workers": 1,
        "loop": Loops.auto,  # uvloop when installed
        "log_level": LogLevels(os.environ.get("LOG_LEVEL", "info").lower()),
        "log_access": os.environ.get("ACCESS_LOG", "0") == "1",
        "http1_settings": HTTP1Settings(
            header_read_timeout=int(header_timeout * 1000), keep_alive=True, max_buffer_size=MAX_HEADER_BYTES
        ),
        "workers_kill_timeout": 5,
        # Connections the one worker serves at a time (Granian's
        # backpressure; its default is backlog / workers = 1024). Past it,
        # new connections wait in the listen queue, so 1,100 slow-header
        # clients held a normal GET for seconds (issue 25). See MAX_CONNECTIONS.
        "backpressure": int(os.environ.get("MAX_CONNECTIONS", MAX_CONNECTIONS)),
        "backlog": LISTEN_BACKLOG,
    }


def run(target: str, spec: catalog.ServiceSpec) -> None:
    """Serve `target` ("module:factory") with the options above."""
    Server(target, factory=True, **server_options(spec)).serve()


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args else os.environ.get("SERVICE_NAME", "")
    if name not in catalog.SERVICES:
        sys.exit(f"usage: python -m services.serve SERVICE  (one of: {', '.join(catalog.SERVICES)})")
    spec = catalog.SERVICES[name]
    os.environ["SERVICE_NAME"] = name
    run(f"{spec.module}:create_app", spec)


if __name__ == "__main__":
    main()
