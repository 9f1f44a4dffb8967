"""Build a service's Starlette app: its domain routes plus the plumbing every
service shares (/healthz, /readyz, /info, /metrics, /openapi.json, the
X-Served-By header, JSON errors, the body size limit, and closing the
service's clients when it stops).

There is no service locator: a service builds its own dependencies in its
create_app (a Redis client, a Store, Peers if it calls other services) and
hands them to the objects whose methods are its endpoints.
"""

from __future__ import annotations

import asyncio
import logging
import contextlib
import gc
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any, Protocol

import pydantic
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import catalog
from services.common.access import DemoPasswordMiddleware
from services.common.errors import ApiError, error_response, exception_handlers, too_large_message
from services.common.query import CURSOR_PATTERN
from services.common.metrics import Metrics, MetricsMiddleware
from services.common.redis import Redis
from services.common.responses import JSONResponse
from services.common.settings import Settings

log = logging.getLogger("theater")


class ServedByMiddleware:
    """Adds `X-Served-By: <service>@<cluster>/<pod> (<version>)` to every response."""

    def __init__(self, app: ASGIApp, value: str) -> None:
        self.app = app
        self.header = (b"x-served-by", value.encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", []), self.header]
            await send(message)

        await self.app(scope, receive, send_wrapper)


class BodyLimitMiddleware:
    """Bounds the request body: at most `limit` bytes (413), arriving within
    `timeout` seconds of the request's start (408). Both answers are JSON.

    A declared Content-Length over the limit is refused before the body is
    read; a chunked body is counted as it arrives and refused (ApiError 413,
    so the usual JSON error handler answers) once it passes the limit.
    Starlette's own `max_body_size` is not used because it replaces any 413
    with a plain-text one. The server (services/serve.py) bounds the headers.
    """

    def __init__(self, app: ASGIApp, limit: int, timeout: float) -> None:
        self.app = app
        self.limit = limit
        self.timeout = timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            response = error_response(413, self.message)
            await response(scope, receive, send)
            return
        total = 0
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.timeout
        body_done = False

        async def receive_limited() -> Message:
            nonlocal total, body_done
            if body_done:  # after the body only a disconnect can come: no deadline
                return await receive()
            try:
                async with asyncio.timeout_at(deadline):
                    message = await receive()
            except TimeoutError:
                raise ApiError(
                    408, f"the request body did not arrive within {self.timeout:g} s", "request_timeout"
                ) from None
            if message["type"] == "http.request":
                total += len(message.get("body", b""))
                if total > self.limit:
                    raise ApiError(413, self.message)
                body_done = not message.get("more_body", False)
            elif message["type"] == "http.disconnect":
                # The client hung up before the body was whole, or sent a
                # chunked body the server could not parse (hyper then ends
                # the body with a disconnect): a 400 (if anyone still reads
                # it), counted as such, and one log line, not a 500 with
                # two stack traces.
                log.info("%s %s: the request body was cut off after %d bytes (client hung up, or malformed chunked encoding)",
                         scope.get("method"), scope.get("path"), total)
                raise ApiError(400, "the request body was cut off or malformed (incomplete or bad chunked encoding)", "body_incomplete")
            return message

        await self.app(scope, receive_limited, send)

    @property
    def message(self) -> str:
        return too_large_message(self.limit)


class PathGuardMiddleware:
    """404 for a path holding a control character (a decoded %0A, %00...).
    No route means to match one, and Starlette's route patterns end in `$`,
    which also matches before a trailing newline: without this,
    `GET /bookings/%0A` was served as `/bookings/`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and _CONTROL.search(scope["path"]):
            shown = scope.get("raw_path", b"").decode("latin-1") or repr(scope["path"])
            await error_response(404, f"no route for {scope['method']} {shown}", "not_found")(scope, receive, send)
            return
        await self.app(scope, receive, send)


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def collection(path: str, endpoint: Callable[..., Any], methods: list[str]) -> list[Route]:
    """Routes for `path` and `path/`, so both work without a redirect."""
    base = path.rstrip("/")
    return [Route(base, endpoint, methods=methods), Route(base + "/", endpoint, methods=methods)]


_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
CURSOR_SCHEMA = {"type": "string", "pattern": CURSOR_PATTERN}


def complete_openapi(schema: dict[str, Any]) -> dict[str, Any]:
    """What Starlette's docstring-based generator leaves out, filled in the
    same way for every service: each `{name}` path parameter is declared
    (required, a non-empty string), every request body is required, and
    `cursor` is documented as what it is (the digits of a previous page's
    `next`)."""
    for path, operations in schema.get("paths", {}).items():
        names = _PATH_PARAM.findall(path)
        for operation in operations.values():
            params = operation.setdefault("parameters", [])
            declared = {(p.get("name"), p.get("in")) for p in params}
            for name in names:
                if (name, "path") not in declared:
                    params.append({"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}})
            for param in params:
                if param.get("name") == "cursor" and param.get("in") == "query":
                    param["schema"] = dict(CURSOR_SCHEMA)
                    param["description"] = "`next` of the previous page (digits); omit for the first page"
            if not params:
                del operation["parameters"]
            if "requestBody" in operation:
                operation["requestBody"]["required"] = True
    return schema


def _openapi(app: Starlette, title: str, models: Sequence[type[pydantic.BaseModel]]) -> dict[str, Any]:
    generator = SchemaGenerator({"openapi": "3.1.0", "info": {"title": title, "version": "1.0.0"}})
    schema = generator.get_schema(routes=app.routes)
    if models:
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        for model in models:
            components[model.__name__] = model.model_json_schema(ref_template="#/components/schemas/{model}")
    return complete_openapi(schema)


class Closable(Protocol):
    async def aclose(self) -> None: ...


class ServiceApp(Starlette):
    """A service's Starlette app and its OpenAPI document."""

    openapi: dict[str, Any]


def settle_garbage_collector() -> None:
    """Once the app is built and about to serve: collect what start-up left
    behind, freeze everything still alive (modules, models, routes, clients:
    they live as long as the process) so that the cycle collector never
    scans it again, and run the youngest generation every 10,000 net
    allocations instead of 700.

    Why: a request allocates a few hundred container objects (the ASGI
    scope, dicts, coroutines, futures), so with the defaults the collector
    ran every couple of requests and its older generations walked the whole
    heap of imported modules. With this, movie-service's single read costs
    106-140 us of CPU instead of ~165 at 64 connections
    (`python -m bench.cpu_per_request 8 64`), and p99 latency drops. Memory:
    at most 10,000 young objects wait for a collection (~1-2 MiB); the
    after-load PSS stays in bench's step 5.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)


def build_app(
    settings: Settings,
    routes: Sequence[BaseRoute],
    *,
    models: Sequence[type[pydantic.BaseModel]] = (),
    redis: Redis | None = None,
    closing: Sequence[Closable] = (),
    background: Callable[[], Awaitable[None]] | None = None,
    openapi: Callable[[dict[str, Any]], dict[str, Any]] | None = None,
    password: str | None = None,
) -> ServiceApp:
    """Wire a service: `routes` are its domain; everything else is shared.

    What the service's endpoints need, they get when the service builds
    them (its create_app); this function only takes what it runs or closes
    itself: `redis`, the service's own Redis client (GET /readyz pings it;
    None for a service without one), `closing`, other clients to close when
    the app stops (a peer HTTP client), and `background`, a coroutine run
    for as long as the app serves (booking-service's reconciler) and
    cancelled when it stops. `openapi` may rewrite the generated document
    (the gateway adds the paths it proxies). `password`: a shared password
    every request but the probes must carry (the gateway's DEMO_PASSWORD).
    """
    metrics = Metrics(settings.service)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        settle_garbage_collector()
        task = asyncio.create_task(background()) if background is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            for resource in closing:
                await resource.aclose()
            if redis is not None:
                await redis.aclose()

    async def healthz(request: Request) -> Response:
        """Liveness: the process answers."""
        return JSONResponse({"status": "ok", "service": settings.service})

    async def readyz(request: Request) -> Response:
        """Readiness: the service's own dependency (its Redis) answers."""
        checks: dict[str, str] = {}
        if redis is not None:
            try:
                await asyncio.wait_for(redis.ping(), timeout=settings.redis_timeout)
            except Exception as exc:  # any failure means "not ready"
                return error_response(503, f"{settings.service} is not ready: redis: {type(exc).__name__}", "not_ready")
            checks["redis"] = "ok"
        return JSONResponse({"status": "ready", "service": settings.service, "checks": checks})

    async def info(request: Request) -> Response:
        """Which service, version, cluster, pod and node answered."""
        return JSONResponse(settings.info())

    shared = [
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
        Route("/info", info, methods=["GET"], include_in_schema=False),
        Route(catalog.METRICS_PATH, metrics.endpoint, methods=["GET"], include_in_schema=False),
    ]
    app = ServiceApp(
        # The service's own routes first: they carry the traffic (none of
        # them shadows a shared path).
        routes=[*routes, *shared],
        middleware=[
            Middleware(ServedByMiddleware, value=settings.served_by),
            Middleware(MetricsMiddleware, metrics=metrics),
            *([Middleware(DemoPasswordMiddleware, password=password)] if password else []),
            Middleware(PathGuardMiddleware),
            Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, timeout=settings.body_read_timeout),
        ],
        exception_handlers=exception_handlers(settings.max_body_bytes),
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    document = _openapi(app, f"Theater MSA {settings.service}", models)
    app.openapi = openapi(document) if openapi is not None else document

    async def openapi_json(request: Request) -> Response:
        return JSONResponse(app.openapi)

    app.router.routes.append(Route("/openapi.json", openapi_json, methods=["GET"], include_in_schema=False))
    return app
