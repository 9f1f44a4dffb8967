"""user-service: who can book. Users live in this service's Redis under the
`users:` prefix (see services/common/store.py for the layout).

Emails are unique, compared case-insensitively (`Ann@Example.com` and
`ann@example.com` are the same address); the address is stored as given.
Deleting a user frees the address for a new user and records the id in the
deletion feed (GET /internal/users/deleted, services/common/deletions.py):
booking-service follows it and cancels the user's bookings, giving their
seats back (services/booking_reconciler.py). No call back into
booking-service is needed.
"""

from __future__ import annotations

from typing import Annotated

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services.common import deletions
from services.common.app import build_app, collection
from services.common.body import StrictModel, read_body
from services.common.errors import ApiError
from services.common.responses import JSONResponse
from services.common.settings import Settings
from services.common.store import Conflict, Store, now_iso, page_params

SERVICE = "user-service"
EMAIL_PATTERN = r"^[^@\s]+@[^@\s]+\.[^@\s]+$"


class UserIn(StrictModel):
    """Body of POST /users/."""

    name: Annotated[str, pydantic.Field(min_length=1, max_length=100, description="1-100 characters, any script")]
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


def _store(request: Request) -> Store:
    return request.app.state.users


def _email_key(email: str) -> str:
    return email.lower()


async def create_user(request: Request) -> Response:
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
    store = _store(request)
    user = {"id": store.new_id(), "name": body.name, "email": body.email, "createdAt": now_iso()}
    try:
        await store.create(user["id"], user, unique=("email", _email_key(body.email)))
    except Conflict:
        raise ApiError(409, f"a user with email {body.email} already exists", "email_taken") from None
    return JSONResponse(user, status_code=201)


async def list_users(request: Request) -> Response:
    """List users, oldest first.
    ---
    summary: List users
    parameters:
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
      - {name: cursor, in: query, schema: {type: string}, description: "`next` of the previous page"}
    responses:
      200: {description: "{items: [User], next: cursor or null}"}
      422: {description: Bad limit or cursor}
    """
    limit, cursor = page_params(request)
    page = await _store(request).page(None, limit, cursor)
    return JSONResponse(page.body())


async def get_user(request: Request) -> Response:
    """Read one user.
    ---
    summary: Read a user
    responses:
      200: {description: The user, content: {application/json: {schema: {$ref: "#/components/schemas/User"}}}}
      404: {description: No such user}
    """
    user_id = request.path_params["id"]
    user = await _store(request).get(user_id)
    if user is None:
        raise ApiError(404, f"user {user_id} not found", "user_not_found")
    return JSONResponse(user)


async def delete_user(request: Request) -> Response:
    """Delete a user; booking-service cancels their bookings and frees the
    seats (the bookings stay readable, as cancelled).
    ---
    summary: Delete a user
    responses:
      204: {description: Deleted; their bookings become cancelled within the reconcile time}
      404: {description: No such user}
    """
    user_id = request.path_params["id"]
    store = _store(request)
    user = await store.get(user_id)
    if user is None or not await store.delete(user_id, unique=("email", _email_key(user["email"]))):
        raise ApiError(404, f"user {user_id} not found", "user_not_found")
    return Response(status_code=204)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env(SERVICE)
    routes = [
        *collection("/users", list_users, ["GET"]),
        *collection("/users", create_user, ["POST"]),
        Route("/users/{id}", get_user, methods=["GET"]),
        Route("/users/{id}", delete_user, methods=["DELETE"]),
        deletions.route("users", _store),
    ]
    app = build_app(settings, routes, models=[UserIn, User])
    app.state.users = Store(app.state.redis, "users", "u")
    return app
