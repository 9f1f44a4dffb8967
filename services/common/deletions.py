"""A feed of deleted records, so that a service keeping data about another
service's records can react to their deletion without being called.

user-service and movie-service record every deletion in their store's
`<prefix>:deleted` sorted set (services/common/store.py) and serve it:

    GET /internal/<resource>/deleted?after=<seq>&limit=<n>
    -> {"items": [{"id": "u_...", "seq": 7}, ...]}     oldest first

booking-service follows both feeds (services/booking_reconciler.py). The
calls go booking-service -> user-service / movie-service, the direction in
which booking-service already calls them, so no service ever calls back
into booking-service.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services import catalog
from services.common.errors import ApiError
from services.common.peers import Peers
from services.common.responses import JSONResponse
from services.common.store import Store

MAX_LIMIT = 500


def path(resource: str) -> str:
    return f"{catalog.INTERNAL_PREFIX}/{resource}/deleted"


def route(resource: str, store_of: Callable[[Request], Store]) -> Route:
    """The feed endpoint of one collection (internal: booking-service reads it)."""

    async def deleted(request: Request) -> Response:
        after = request.query_params.get("after", "0")
        limit = request.query_params.get("limit", "100")
        if not re.fullmatch(r"[0-9]{1,15}", after) or not re.fullmatch(r"[0-9]{1,3}", limit) or not 1 <= int(limit) <= MAX_LIMIT:
            raise ApiError(
                422,
                f"after must be a sequence number and limit 1-{MAX_LIMIT}",
                fields=[{"field": "after", "message": "an integer"}, {"field": "limit", "message": f"1-{MAX_LIMIT}"}],
            )
        rows = await store_of(request).deleted_since(int(after), int(limit))
        return JSONResponse({"items": [{"id": id, "seq": seq} for id, seq in rows]})

    return Route(path(resource), deleted, methods=["GET"], include_in_schema=False)


async def read(
    peers: Peers, peer: str, resource: str, after: int, limit: int = 100, headers: Mapping[str, str] | None = None
) -> list[tuple[str, int]] | None:
    """(id, seq) deleted after `after` at `peer`, or None when it cannot
    answer now (the caller tries again later)."""
    try:
        reply = await peers.request(peer, "GET", f"{path(resource)}?after={after}&limit={limit}", headers or {})
    except ApiError:
        return None
    if reply.status_code != 200:
        return None
    return [(item["id"], int(item["seq"])) for item in reply.json()["items"]]
