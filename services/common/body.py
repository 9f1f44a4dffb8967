"""Reading request bodies: JSON objects validated by a pydantic model.

400 for malformed JSON or a body that is not an object, 422 (listing every
bad field) for invalid or unknown fields. The 64 KiB limit is enforced by
the app (`BodyLimitMiddleware` in app.py), which answers a JSON 413.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from starlette.requests import Request

from services.common.errors import ApiError

M = TypeVar("M", bound=pydantic.BaseModel)


class StrictModel(pydantic.BaseModel):
    """Base for request bodies: unknown fields are errors, no silent coercion
    of strings into numbers."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)


def field_errors(exc: pydantic.ValidationError) -> list[dict[str, str]]:
    out = []
    for err in exc.errors(include_url=False):
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        message = "unknown field" if err["type"] == "extra_forbidden" else err["msg"]
        out.append({"field": loc, "message": message})
    return out


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = field_errors(exc)
        names = ", ".join(f["field"] for f in fields)
        raise ApiError(422, f"invalid fields: {names}", fields=fields) from None


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"body is not valid JSON: {exc}", "malformed_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "body must be a JSON object", "not_an_object")
    return data


async def read_body(request: Request, model: type[M]) -> M:
    return validate(model, await read_json_object(request))
