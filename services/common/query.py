"""Reading query strings: `?limit=`, `?cursor=` and `?order=` of a list, and ids of
other services' records used as filters. Anything malformed is a 422 that
names each bad parameter (the same shape as a bad body, body.py)."""

from __future__ import annotations

import re
from collections.abc import Sequence

from starlette.requests import Request

from services.common.body import PATTERN_MEANINGS, REF_PATTERN, summary
from services.common.errors import ApiError

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
CURSOR_PATTERN = r"^[0-9]{0,15}$"  # empty (`cursor=`): from the start, as when absent


def page_params(request: Request) -> tuple[int, int | None]:
    """`?limit=` (1-500, default 50) and `?cursor=` (None when absent or
    empty: from the first record of the order); anything else is a 422."""
    fields = []
    raw_limit = request.query_params.get("limit")
    limit = DEFAULT_LIMIT
    if raw_limit is not None:
        if not re.fullmatch(r"[0-9]{1,4}", raw_limit) or not 1 <= int(raw_limit) <= MAX_LIMIT:
            fields.append(
                {
                    "field": "limit",
                    "reason": "invalid",
                    "message": f"must be a whole number from 1 to {MAX_LIMIT}",
                }
            )
        else:
            limit = int(raw_limit)
    raw_cursor = request.query_params.get("cursor")
    cursor = None
    if raw_cursor is not None and raw_cursor != "":
        if not re.fullmatch(CURSOR_PATTERN, raw_cursor):
            fields.append({"field": "cursor", "reason": "bad_format", "message": "must be the `next` value of a previous page"})
        else:
            cursor = int(raw_cursor)
    if fields:
        raise ApiError(422, summary(fields), fields=fields)
    return limit, cursor


def ref_params(request: Request, names: Sequence[str]) -> dict[str, str | None]:
    """The query parameters `names`, each absent (None) or a well-formed
    record id (REF_PATTERN); a malformed one is a 422."""
    values = {name: request.query_params.get(name) for name in names}
    bad = [
        {"field": name, "reason": "bad_format", "message": PATTERN_MEANINGS[REF_PATTERN]}
        for name, value in values.items()
        if value is not None and re.fullmatch(REF_PATTERN, value) is None
    ]
    if bad:
        raise ApiError(422, summary(bad), fields=bad)
    return values


def order_param(request: Request) -> bool:
    """`?order=`: True for newest first; oldest (the default) otherwise; anything else is a 422."""
    order = request.query_params.get("order", "oldest")
    if order not in ("oldest", "newest"):
        fields = [{"field": "order", "reason": "invalid", "message": "must be oldest or newest"}]
        raise ApiError(422, summary(fields), fields=fields)
    return order == "newest"
