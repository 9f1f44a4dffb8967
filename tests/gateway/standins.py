"""Small stand-in backends for the gateway tests: real Starlette apps that
echo what reached them, answer slowly, or fail on purpose."""

from __future__ import annotations

import asyncio
import json

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route


def echo_backend(service: str, cluster: str = "ctx9", pod: str | None = None, info_delay: float = 0.0,
                 version: str = "v1") -> Starlette:
    pod = pod or f"{service}-standin"
    served_by = f"{service}@{cluster}/{pod} ({version})"

    async def echo(request: Request) -> Response:
        body = await request.body()
        if request.query_params.get("status"):
            # An error the way the real services answer, with a header of its own.
            status = int(request.query_params["status"])
            return JSONResponse(
                {"error": {"code": "conflict", "message": f"{service} says no ({status})"}},
                status_code=status,
                headers={"x-served-by": served_by, "x-backend-extra": "kept"},
            )
        if request.method == "GET" and "limit" in request.query_params:
            # A list the way the real services answer one (an empty page).
            return JSONResponse({"items": [], "next": None}, headers={"x-served-by": served_by})
        if request.query_params.get("sleep"):
            await asyncio.sleep(float(request.query_params["sleep"]))
        payload = {
            "service": service,
            "method": request.method,
            "path": request.url.path,
            "raw_path": request.scope["raw_path"].decode("latin-1"),
            "query": request.scope["query_string"].decode("latin-1"),
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.scope["headers"]],
            "body": body.decode("utf-8", "replace"),
        }
        status = 201 if request.method == "POST" else 200
        if request.method == "DELETE":
            return Response(status_code=204, headers={"x-served-by": served_by})
        return Response(
            json.dumps(payload, ensure_ascii=False).encode(),
            status_code=status,
            media_type="application/json",
            headers={"x-served-by": served_by, "x-backend-extra": "kept", "set-cookie": "a=1"},
        )

    async def trickle(request: Request) -> Response:
        # Headers at once, then a body that never finishes in time.
        async def body():
            for _ in range(100):
                yield b"x"
                await asyncio.sleep(0.2)

        from starlette.responses import StreamingResponse

        return StreamingResponse(body(), media_type="text/plain")

    async def info(request: Request) -> Response:
        if info_delay:
            await asyncio.sleep(info_delay)
        return JSONResponse(
            {"service": service, "version": version, "cluster": cluster, "pod": pod, "node": f"{cluster}-worker"},
            headers={"x-served-by": served_by},
        )

    methods = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
    prefix = "/" + service.removesuffix("-service") + "s"
    return Starlette(
        routes=[
            Route("/info", info),
            Route("/healthz", lambda r: JSONResponse({"status": "ok"})),
            Route("/readyz", lambda r: JSONResponse({"status": "ready"})),
            Route(prefix + "/trickle", trickle),
            Route(prefix, echo, methods=methods),
            Route(prefix + "/{rest:path}", echo, methods=methods),
        ]
    )
