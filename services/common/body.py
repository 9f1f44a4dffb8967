"""Reading request bodies: JSON objects validated by a pydantic model.

400 for malformed JSON, JSON nested too deeply, numbers too long to read, or
a body that is not an object; 422 (listing every bad field, each with a
sentence a person can read and a `reason` code the web UI translates) for
invalid or unknown fields. The 64 KiB limit and the body read timeout are
enforced by the app (`BodyLimitMiddleware` in app.py), which answers a JSON
413 or 408.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

import pydantic
from starlette.requests import Request

from services.common.errors import ApiError

M = TypeVar("M", bound=pydantic.BaseModel)

# What each pattern used by a request model means, in words: an error names
# the rule, never the regular expression.
# An id of another service's record (a booking's userId, movieId; a
# reservation's bookingId): checked for shape only, the owner says if it exists.
REF_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
# No control characters (Unicode Cc: C0, DEL, C1) in names and emails.
_NO_CONTROL = "\\x00-\\x1f\\x7f-\\x9f"
EMAIL_PATTERN = rf"^[^@\s{_NO_CONTROL}]+@[^@\s{_NO_CONTROL}]+\.[^@\s{_NO_CONTROL}]+$"
TEXT_PATTERN = rf"^[^{_NO_CONTROL}]*$"
PATTERN_MEANINGS = {
    REF_PATTERN: "must be 1 to 64 letters, digits, '_' or '-'",
    EMAIL_PATTERN: "must be an email address such as kim@example.com",
    TEXT_PATTERN: "must not contain control characters",
}


class StrictModel(pydantic.BaseModel):
    """Base for request bodies: unknown fields are errors, no silent coercion
    of strings into numbers. JSON has one number type, so a whole number
    written 7.0 is the integer 7 for an int field (JSON Schema's "integer"
    accepts it too); 7.5, "7" and true are still refused."""

    model_config = pydantic.ConfigDict(extra="forbid", strict=True, str_strip_whitespace=False)

    @pydantic.model_validator(mode="before")
    @classmethod
    def _whole_floats_are_ints(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        ints = {name for name, field in cls.model_fields.items() if field.annotation is int}
        return {
            k: int(v) if k in ints and isinstance(v, float) and v.is_integer() else v for k, v in data.items()
        }


def _sentence(err: Any) -> tuple[str, str]:
    """(reason code, English sentence) for one pydantic error."""
    kind = err["type"]
    ctx = err.get("ctx") or {}
    value = err.get("input")
    if kind in ("string_too_short", "value_error") and isinstance(value, str) and not value.strip():
        return "empty", "must not be empty"  # "" or only spaces, whatever the minimum length
    if kind == "value_error" and str(ctx.get("error", "")).startswith("must "):
        return "bad_format", str(ctx["error"])  # a model's own rule, in words (e.g. no control characters)
    if kind == "extra_forbidden":
        return "unknown_field", "is not a field of this request"
    if kind == "missing":
        return "required", "is required"
    if kind in ("string_type", "string_sub_type"):
        return "not_text", "must be text"
    if kind in ("int_type", "int_parsing", "int_from_float", "bool_type"):
        return "not_integer", "must be a whole number"
    if kind == "string_too_short":
        n = ctx.get("min_length", 1)
        return ("empty", "must not be empty") if n <= 1 else ("too_short", f"must be at least {n} characters long")
    if kind == "string_too_long":
        return "too_long", f"must be at most {ctx.get('max_length')} characters long"
    if kind in ("greater_than_equal", "greater_than"):
        return "too_small", f"must be at least {ctx.get('ge', ctx.get('gt'))}"
    if kind in ("less_than_equal", "less_than"):
        return "too_large", f"must be at most {ctx.get('le', ctx.get('lt'))}"
    if kind == "string_pattern_mismatch":
        return "bad_format", PATTERN_MEANINGS.get(str(ctx.get("pattern")), "is not in the accepted format")
    return "invalid", "is not a valid value"


def field_errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    out = []
    for err in exc.errors(include_url=False):  # the input only to tell a blank value; never echoed
        loc = ".".join(str(p) for p in err["loc"]) or "(body)"
        reason, message = _sentence(err)
        entry: dict[str, Any] = {"field": loc, "message": message, "reason": reason}
        limit = None if reason == "empty" else next((v for k, v in (err.get("ctx") or {}).items() if k in ("min_length", "max_length", "ge", "le", "gt", "lt")), None)
        if limit is not None:
            entry["limit"] = limit
        out.append(entry)
    return out


def summary(fields: list[dict[str, Any]]) -> str:
    """One sentence for the whole error: "year must be at most 2100; title is required." """
    return "; ".join(f"{f['field']} {f['message']}" for f in fields) + "."


def validate(model: type[M], data: Any) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        fields = field_errors(exc)
        raise ApiError(422, summary(fields), fields=fields) from None


async def read_json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        data = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "malformed_json") from None
    except RecursionError:
        raise ApiError(400, "the body's JSON is nested too deeply", "malformed_json") from None
    except ValueError:  # an integer with more digits than Python converts (4300)
        raise ApiError(400, "the body holds a number with too many digits", "malformed_json") from None
    if not isinstance(data, dict):
        raise ApiError(400, "the body must be a JSON object", "not_an_object")
    return data


async def read_body(request: Request, model: type[M]) -> M:
    return validate(model, await read_json_object(request))
