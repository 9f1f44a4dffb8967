"""user-service: who can book. Users live in this service's Redis under the
`users:` prefix (see services/common/store.py for the layout).

Emails are unique, compared case-insensitively (`Ann@Example.com` and
`ann@example.com` are the same address) after normalising (NFKC, invisible
format characters such as a zero-width space removed: `ａｎｎ@example.com`
and `ann\u200b@example.com` are `ann@example.com`); the address is stored
as given. Names and emails holding a control character are refused (422,
the patterns in services/common/body.py).
Deleting a user frees the address for a new user and records the id in the
deletion feed (GET /internal/users/deleted, services/common/deletions.py):
booking-service follows it and cancels the user's bookings, giving their
seats back (services/booking_reconciler.py). No call back into
booking-service is needed.
"""

from __future__ import annotations

import unicodedata
from typing import Annotated

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common import deletions
from services.common import redis as redis_mod
from services.common.app import ServiceApp, build_app, collection
from services.common.body import EMAIL_PATTERN, TEXT_PATTERN, StrictModel, read_body
from services.common.errors import ApiError
from services.common.responses import JSONResponse
from services.common.settings import Settings
from services.common.query import order_param, page_params
from services.common.store import Conflict, Store, now_iso

SERVICE = "user-service"


class UserIn(StrictModel):
    """Body of POST /users/."""

    name: Annotated[
        str,
        pydantic.Field(min_length=1, max_length=100, pattern=TEXT_PATTERN, description="1-100 characters, any script, no control characters"),
    ]
    email: Annotated[str, pydantic.Field(min_length=3, max_length=254, pattern=EMAIL_PATTERN)]

    @pydantic.field_validator("name")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class User(pydantic.BaseModel):
    id: str
    name: str
    email: str
    createdAt: str


def normalise_email(email: str) -> str:
    """The address as uniqueness sees it: NFKC (a full-width `ｋｉｍ` is
    `kim`), without invisible format characters (zero-width space, joiners,
    BOM, soft hyphen: Unicode category Cf), case-folded. So two addresses
    that look the same are the same."""
    folded = unicodedata.normalize("NFKC", email)
    return "".join(ch for ch in folded if unicodedata.category(ch) != "Cf").casefold()


def _email_key(email: str) -> str:
    return normalise_email(email)


class Users:
    """user-service's endpoints, over its one store."""

    def __init__(self, store: Store) -> None:
        self.store = store

    async def create_user(self, request: Request) -> Response:
        """Create a user.
        ---
        summary: Create a user
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/UserIn"}
        responses:
          201: {description: "The new user", content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
          400: {description: Malformed JSON or not an object}
          409: {description: The email belongs to another user}
          422: {description: Invalid or unknown fields}
          503: {description: Redis is unreachable}
        """
        body = await read_body(request, UserIn)
        user = {"id": self.store.new_id(), "name": body.name, "email": body.email, "createdAt": now_iso()}
        try:
            await self.store.create(user["id"], user, unique=("email", _email_key(body.email)))
        except Conflict:
            raise ApiError(409, f"a user with email {body.email} already exists", "email_taken") from None
        return JSONResponse(user, status_code=201)

    async def list_users(self, request: Request) -> Response:
        """List users, oldest first (or newest first).
        ---
        summary: List users
        parameters:
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
          - {name: cursor, in: query, schema: {type: string}, description: "`next` of the previous page"}
          - {name: order, in: query, schema: {type: string, enum: [oldest, newest], default: oldest}, description: "newest: the latest users first (the web page's order); `next` then walks backwards"}
        responses:
          200: {description: "{items: [User], next: cursor or null}"}
          422: {description: Bad limit, cursor or order}
        """
        limit, cursor = page_params(request)
        page = await self.store.page(None, limit, cursor, newest=order_param(request))
        return JSONResponse(page.body())

    async def get_user(self, request: Request) -> Response:
        """Read one user.
        ---
        summary: Read a user
        responses:
          200: {description: The user, content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
          404: {description: No such user}
        """
        user_id = request.path_params["id"]
        user = await self.store.get(user_id)
        if user is None:
            raise ApiError(404, f"user {user_id} not found", "user_not_found")
        return JSONResponse(user)

    async def delete_user(self, request: Request) -> Response:
        """Delete a user; booking-service cancels their bookings and frees the
        seats (the bookings stay readable, as cancelled).
        ---
        summary: Delete a user
        responses:
          204: {description: Deleted; their bookings become cancelled within the reconcile time}
          404: {description: No such user}
        """
        user_id = request.path_params["id"]
        user = await self.store.get(user_id)
        if user is None or not await self.store.delete(user_id, unique=("email", _email_key(user["email"]))):
            raise ApiError(404, f"user {user_id} not found", "user_not_found")
        return Response(status_code=204)


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env(SERVICE)
    redis = redis_mod.connect(settings)
    users = Users(Store(redis, "users", "u"))
    routes = [
        *collection("/users", users.list_users, ["GET"]),
        *collection("/users", users.create_user, ["POST"]),
        Route("/users/{id}", users.get_user, methods=["GET"]),
        Route("/users/{id}", users.delete_user, methods=["DELETE"]),
        deletions.route("users", users.store),
    ]
    return build_app(settings, routes, models=[UserIn, User], redis=redis)
