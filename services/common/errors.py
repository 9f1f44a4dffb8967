"""JSON errors: every failure leaves as {"error": {"code", "message"}}.

Handlers here turn HTTP errors, validation errors, Redis outages and
unexpected exceptions into that shape, so no stack trace ever reaches a
client.
"""

from __future__ import annotations

import logging
from typing import Any

import redis.exceptions
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Match

from services.common.responses import JSONResponse

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
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code or _CODES.get(status, "error")
        self.message = message
        self.fields = fields


def error_body(status: int, message: str, code: str | None = None, **extra: Any) -> dict[str, Any]:
    error: dict[str, Any] = {"code": code or _CODES.get(status, "error"), "message": message}
    error.update({k: v for k, v in extra.items() if v is not None})
    return {"error": error}


def error_response(status: int, message: str, code: str | None = None, **extra: Any) -> JSONResponse:
    return JSONResponse(error_body(status, message, code, **extra), status_code=status)


async def _api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message, exc.code, fields=exc.fields)


def allowed_methods(request: Request) -> str:
    """Every method some route of the app accepts on this path (Starlette's
    own 405 names only the first route that matched the path)."""
    methods: set[str] = set()
    for route in request.app.router.routes:
        match, _ = route.matches({**request.scope, "method": "\x00"})  # no method matches: paths only
        if match is not Match.NONE:
            methods |= set(getattr(route, "methods", None) or ())
    return ", ".join(sorted(methods))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "allow": allowed_methods(request)}
    messages = {
        404: f"no route for {request.method} {request.url.path}",
        405: f"method {request.method} is not allowed on {request.url.path}",
        413: "request body is larger than 64 KiB",
    }
    message = messages.get(exc.status_code, str(exc.detail))
    return JSONResponse(error_body(exc.status_code, message), status_code=exc.status_code, headers=headers)


async def _redis_error(request: Request, exc: Exception) -> Response:
    log.warning("redis unavailable: %s", exc)
    return error_response(503, "the data store (Redis) is unreachable; try again shortly", "redis_unavailable")


# Redis error replies that mean "cannot serve now", also when they come back
# wrapped in a script error (redis-py raises a plain ResponseError then).
_UNAVAILABLE_REPLIES = ("OOM ", "READONLY ", "MISCONF ", "LOADING ", "MASTERDOWN ", "BUSY ")


async def _redis_reply_error(request: Request, exc: Exception) -> Response:
    text = str(exc)
    if any(reply in text for reply in _UNAVAILABLE_REPLIES):
        return await _redis_error(request, exc)
    return await _unexpected(request, exc)


async def _unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal error; see the service log")


EXCEPTION_HANDLERS = {
    ApiError: _api_error,
    HTTPException: _http_error,
    redis.exceptions.ConnectionError: _redis_error,
    redis.exceptions.TimeoutError: _redis_error,
    # A Redis that answers but cannot write (replica, out of memory, busy
    # loading) is as unavailable to the service as one that is down.
    redis.exceptions.ResponseError: _redis_reply_error,
    Exception: _unexpected,
}
