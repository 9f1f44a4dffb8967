"""JSON errors: every failure leaves as {"error": {"code", "message"}}.

Handlers here turn HTTP errors, validation errors, Redis outages and
unexpected exceptions into that shape, so no stack trace ever reaches a
client.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from services.common.redis import RedisReplyError, RedisUnavailable
from services.common.responses import JSONResponse
from services.common.store import IdCollision

log = logging.getLogger("theater")

_CODES = {
    400: "bad_request",
    404: "not_found",
    405: "method_not_allowed",
    408: "request_timeout",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    431: "headers_too_large",
    422: "validation_error",
    500: "internal_error",
    502: "bad_gateway",
    503: "unavailable",
    504: "timeout",
}


class ApiError(Exception):
    """An error the API reports on purpose, with a stable machine-readable code."""

    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        fields: list[dict[str, str]] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.fields = fields
        self.extra = extra


def error_body(status: int, message: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def error_response(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, **extra), status_code=status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.code, fields=exc.fields, **exc.extra)


def too_large_message(limit: int) -> str:
    """The 413 message, for the body limit setting (Settings.max_body_bytes)."""
    return f"request body is larger than {limit // 1024} KiB"


def peer_unavailable(peer: str, why: str) -> ApiError:
    """503: another service could not be reached or cannot serve now (the
    gateway's proxy and every peer call say it the same way)."""
    return ApiError(503, f"{peer} {why}", "peer_unavailable", peer=peer)


def peer_timeout(peer: str, seconds: float) -> ApiError:
    """504: another service did not answer in time."""
    return ApiError(504, f"{peer} did not answer within {seconds:g} s", "peer_timeout", peer=peer)


def allowed_methods(request: Request) -> str:
    """Every method some route of the app accepts on this path (Starlette's
    own 405 names only the first route that matched the path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})  # no method matches: paths only
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


def _http_error(body_limit: int) -> Callable[[Request, Exception], Any]:
    async def handler(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        headers = exc.headers
        if exc.status_code == 405:
            # Replace Starlette's Allow (it names only the first route's
            # methods): one Allow header, never two.
            kept = {k: v for k, v in (headers or {}).items() if k.lower() != "allow"}
            headers = {**kept, "allow": allowed_methods(request)}
        messages = {
            404: f"no route for {request.method} {request.url.path}",
            405: f"method {request.method} is not allowed on {request.url.path}",
            413: too_large_message(body_limit),
        }
        message = messages.get(exc.status_code, str(exc.detail))
        return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=headers)

    return handler


async def _id_collision(request: Request, exc: Exception) -> Response:
    return error_response(503, "id collision; retry the request", "retry")


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable: %s", exc)
    return error_response(503, "the data store (Redis) is unreachable; try again shortly", "redis_unavailable")


# Redis error replies that mean "cannot serve now", also when they come back
# wrapped in a script error (the reply then starts with ERR).
_UNAVAILABLE_REPLIES = ("OOM ", "READONLY ", "MISCONF ", "LOADING ", "MASTERDOWN ", "BUSY ")


async def _redis_reply_error(request: Request, exc: Exception) -> Response:
    text = str(exc)
    if "OOM " in text:  # maxmemory reached; the policy is noeviction (catalog.REDIS)
        log.warning("redis is full: %s", exc)
        return error_response(
            503, "the data store (Redis) is full and refuses new data; nothing was written. "
            "Delete data, or raise Redis' maxmemory", "store_full",
        )
    if any(reply in text for reply in _UNAVAILABLE_REPLIES):
        return await _redis_error(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; see the service log")


def exception_handlers(body_limit: int) -> dict[Any, Callable[[Request, Exception], Any]]:
    """The handlers of an app whose request bodies may be `body_limit` bytes."""
    return {
        ApiError: _api_error,
        HTTPException: _http_error(body_limit),
        IdCollision: _id_collision,
        **_OTHER_HANDLERS,
    }


_OTHER_HANDLERS = {
    RedisUnavailable: _redis_error,
    # A Redis that answers but cannot write (replica, out of memory, busy
    # loading) is as unavailable to the service as one that is down.
    RedisReplyError: _redis_reply_error,
    Exception: _unexpected,
}
