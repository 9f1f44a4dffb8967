"""The mesh in front of movie-service's replicas, for the fault runs
(bench/faults.py): round-robin over the replicas plus the faults the Istio
lessons inject (README 5.1), switched at run time.

    python -m bench.fault_proxy      (PORT, FAULT_PROXY_UPSTREAMS=url,url)

    PUT /_fault {"mode": "none"}                   pass everything through
    PUT /_fault {"mode": "delay", "seconds": 2.5}  hold each request, then
        forward it: the caller may have timed out, the request still lands
    PUT /_fault {"mode": "503"}                    answer 503; half of the
        requests are forwarded first (the work is done, the answer is lost)

A replica that refuses the connection is skipped for the next one, as
Envoy retries a connect failure.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

_HOP = {"host", "content-length", "connection", "transfer-encoding", "keep-alive"}


def create_app() -> Starlette:
    upstreams = [u.rstrip("/") for u in os.environ["FAULT_PROXY_UPSTREAMS"].split(",") if u]
    turn = itertools.cycle(range(len(upstreams)))
    state = {"mode": "none", "seconds": 0.0}
    client = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=1.0), limits=httpx.Limits(max_connections=100))

    async def fault(request: Request) -> Response:
        body = await request.json()
        state["mode"] = body.get("mode", "none")
        state["seconds"] = float(body.get("seconds", 0))
        return JSONResponse(state)

    async def forward(request: Request) -> Response:
        mode = state["mode"]
        if mode == "503" and random.random() < 0.5:
            return JSONResponse({"error": {"code": "fault", "message": "fault injected"}}, status_code=503)
        if mode == "delay":
            await asyncio.sleep(state["seconds"])
        body = await request.body()
        headers = [(k, v) for k, v in request.headers.items() if k.lower() not in _HOP]
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        first = next(turn)
        for i in range(len(upstreams)):
            base = upstreams[(first + i) % len(upstreams)]
            try:
                reply = await client.request(request.method, base + target, headers=headers, content=body)
            except httpx.ConnectError:
                continue
            except httpx.TransportError as exc:
                return JSONResponse({"error": {"code": "upstream", "message": type(exc).__name__}}, status_code=503)
            if mode == "503":
                return JSONResponse({"error": {"code": "fault", "message": "fault injected"}}, status_code=503)
            out = {k: v for k, v in reply.headers.items() if k.lower() not in _HOP}
            return Response(reply.content, status_code=reply.status_code, headers=out)
        return JSONResponse({"error": {"code": "no_upstream", "message": "no replica answers"}}, status_code=503)

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    return Starlette(
        routes=[
            Route("/_fault", fault, methods=["PUT"]),
            Route("/_proxy/healthz", healthz, methods=["GET"]),
            Route("/{path:path}", forward, methods=["GET", "POST", "PUT", "DELETE", "PATCH"]),
        ]
    )


def main() -> None:
    import uvicorn

    uvicorn.run(
        "bench.fault_proxy:create_app", factory=True, host="127.0.0.1", port=int(os.environ["PORT"]),
        log_level="warning", access_log=False,
    )


if __name__ == "__main__":
    main()
