"""Build a service's Starlette app: its domain routes plus the plumbing every
service shares (/healthz, /readyz, /info, /metrics, /openapi.json, the
X-Served-By header, JSON errors, the body size limit, Redis and the HTTP
client for peers).
"""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from typing import Any

import pydantic
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import BaseRoute, Route
from starlette.schemas import SchemaGenerator
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services import catalog
from services.common import peers as peers_mod
from services.common import redis as redis_mod
from services.common.errors import EXCEPTION_HANDLERS, ApiError, error_response
from services.common.metrics import Metrics, MetricsMiddleware
from services.common.responses import JSONResponse
from services.common.settings import Settings

ReadinessCheck = Callable[[Request], Awaitable[dict[str, str]]]


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
            return message

        await self.app(scope, receive_limited, send)

    @property
    def message(self) -> str:
        return f"request body is larger than {self.limit // 1024} KiB"


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


async def _redis_ready(request: Request) -> dict[str, str]:
    try:
        await asyncio.wait_for(request.app.state.redis.ping(), timeout=request.app.state.settings.redis_timeout)
    except Exception as exc:  # any failure means "not ready"
        raise RuntimeError(f"redis: {type(exc).__name__}") from None
    return {"redis": "ok"}


async def _no_dependencies(request: Request) -> dict[str, str]:
    return {}


async def healthz(request: Request) -> Response:
    """Liveness: the process answers."""
    return JSONResponse({"status": "ok", "service": request.app.state.settings.service})


async def readyz(request: Request) -> Response:
    """Readiness: the service's own dependencies (its Redis) answer."""
    settings: Settings = request.app.state.settings
    try:
        checks = await request.app.state.readiness(request)
    except Exception as exc:
        return error_response(503, f"{settings.service} is not ready: {exc}", "not_ready")
    return JSONResponse({"status": "ready", "service": settings.service, "checks": checks})


async def info(request: Request) -> Response:
    """Which service, version, cluster, pod and node answered."""
    return JSONResponse(request.app.state.settings.info())


_PATH_PARAM = re.compile(r"{(\w+)(?::\w+)?}")
CURSOR_SCHEMA = {"type": "string", "pattern": "^[0-9]{1,15}$"}


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


def build_app(
    settings: Settings,
    routes: Sequence[BaseRoute],
    *,
    models: Sequence[type[pydantic.BaseModel]] = (),
    readiness: ReadinessCheck | None = None,
    on_startup: Callable[[Starlette], Awaitable[None]] | None = None,
    background: Callable[[Starlette], Awaitable[None]] | None = None,
) -> Starlette:
    """Wire a service: `routes` are its domain; everything else is shared.

    State available to endpoints: `request.app.state.settings`, `.redis`
    (when the service uses Redis), `.peers` (calls to the services it calls),
    `.http` (the HTTP client under `.peers`, services/common/peers.py) and
    `.metrics`.

    `background(app)` runs as a task for as long as the app serves (e.g.
    booking-service's reconciler) and is cancelled when it stops.
    """
    metrics = Metrics(settings.service)
    http = peers_mod.http_client(settings)
    redis = redis_mod.connect(settings) if settings.spec.uses_redis else None

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if on_startup is not None:
            await on_startup(app)
        task = asyncio.create_task(background(app)) if background is not None else None
        try:
            yield
        finally:
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
            await http.aclose()
            if redis is not None:
                await redis.aclose()

    shared = [
        Route("/healthz", healthz, methods=["GET"], include_in_schema=False),
        Route("/readyz", readyz, methods=["GET"], include_in_schema=False),
        Route("/info", info, methods=["GET"], include_in_schema=False),
        Route(catalog.METRICS_PATH, metrics.endpoint, methods=["GET"], include_in_schema=False),
    ]
    app = Starlette(
        # The service's own routes first: they carry the traffic (none of
        # them shadows a shared path).
        routes=[*routes, *shared],
        middleware=[
            Middleware(ServedByMiddleware, value=settings.served_by),
            Middleware(MetricsMiddleware, metrics=metrics),
            Middleware(PathGuardMiddleware),
            Middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, timeout=settings.body_read_timeout),
        ],
        exception_handlers=EXCEPTION_HANDLERS,
        lifespan=lifespan,
    )
    app.router.redirect_slashes = False
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.redis = redis
    app.state.http = http
    app.state.peers = peers_mod.Peers(settings, http)
    app.state.readiness = readiness or (_redis_ready if redis is not None else _no_dependencies)

    app.state.openapi = _openapi(app, f"Theater MSA {settings.service}", models)

    async def openapi(request: Request) -> Response:
        return JSONResponse(request.app.state.openapi)

    app.router.routes.append(Route("/openapi.json", openapi, methods=["GET"], include_in_schema=False))
    return app
