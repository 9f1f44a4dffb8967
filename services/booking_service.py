"""booking-service: bookings of seats by users. Keys live under `bookings:`
in this service's Redis (layout in services/common/store.py) with three
secondary indexes for the list filters: `bookings:by-user:<userId>`,
`bookings:by-movie:<movieId>` and `bookings:by-pair:<userId>:<movieId>`.

Booking a seat (POST /bookings/):

1. check the user: GET user-service /users/{userId} (404 -> "user ... not found");
2. hold the seats: POST movie-service /internal/movies/{movieId}/reservations with
   the new booking's id; movie-service checks the movie (404) and the seats
   (409) atomically, so concurrent bookings never oversell;
3. write the booking record. If that fails, the reservation is released
   (compensation), so a failed booking leaves nothing behind. If the
   reservation call itself fails in a way that may have reached
   movie-service (timeout), it is released too; a release that arrives
   first leaves a tombstone that makes the late reservation fail.

Cancelling (DELETE /bookings/{id}) releases the seats through movie-service
(at most once per booking, enforced there), then marks the booking
"cancelled". The booking stays readable; a repeated cancel answers 204 and
frees nothing. No service calls back into booking-service.
"""

from __future__ import annotations

import logging
import re
from typing import Annotated, Any

import pydantic
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from services.common import idempotency
from services import catalog
from services.common.app import build_app, collection
from services.common.body import StrictModel, read_body
from services.common.errors import ApiError
from services.common.settings import Settings
from services.common.store import Store, now_iso, page_params

SERVICE = "booking-service"
USERS = "user-service"
MOVIES = "movie-service"
REF_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
FIELDS = ("id", "userId", "movieId", "seats", "status", "createdAt")

log = logging.getLogger("theater")


class BookingIn(StrictModel):
    """Body of POST /bookings/."""

    userId: Annotated[str, pydantic.Field(pattern=REF_PATTERN)]
    movieId: Annotated[str, pydantic.Field(pattern=REF_PATTERN)]
    seats: Annotated[int, pydantic.Field(ge=1, le=10)]


class Booking(pydantic.BaseModel):
    id: str
    userId: str
    movieId: str
    seats: int
    status: str = pydantic.Field(description='"confirmed" or "cancelled"')
    createdAt: str


def view(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in FIELDS}


def _store(request: Request) -> Store:
    return request.app.state.bookings


def _unavailable(peer: str, status: int) -> ApiError:
    return ApiError(503, f"{peer} cannot serve the request right now (it answered {status})", "peer_unavailable")


async def _check_user(request: Request, user_id: str) -> None:
    reply = await request.app.state.peers.request(USERS, "GET", f"/users/{user_id}", request.headers)
    if reply.status_code == 404:
        raise ApiError(404, f"user {user_id} not found", "user_not_found")
    if reply.status_code != 200:
        raise _unavailable(USERS, reply.status_code)


async def _reserve(request: Request, body: BookingIn, booking_id: str) -> None:
    path = f"{catalog.INTERNAL_PREFIX}/movies/{body.movieId}/reservations"
    payload = {"bookingId": booking_id, "seats": body.seats}
    try:
        reply = await request.app.state.peers.request(MOVIES, "POST", path, request.headers, json=payload)
    except ApiError:
        await _release(request, body.movieId, booking_id)  # it may have arrived
        raise
    if reply.status_code in (200, 201):
        return
    if reply.status_code == 404:
        raise ApiError(404, f"movie {body.movieId} not found", "movie_not_found")
    if reply.status_code == 409:
        message = _peer_message(reply) or f"not enough seats for movie {body.movieId}"
        raise ApiError(409, message, "sold_out")
    raise _unavailable(MOVIES, reply.status_code)


def _reservation(movie_id: str, booking_id: str) -> str:
    """movie-service's path for one booking's seats (see movie_service.py)."""
    return f"{catalog.INTERNAL_PREFIX}/movies/{movie_id}/reservations/{booking_id}"


async def _release(request: Request, movie_id: str, booking_id: str) -> int:
    """Give the booking's seats back; returns movie-service's status, or 0
    when it could not be reached (the error is logged, not raised)."""
    try:
        reply = await request.app.state.peers.request(MOVIES, "DELETE", _reservation(movie_id, booking_id), request.headers)
    except ApiError as exc:
        log.warning("could not release seats of booking %s on movie %s: %s", booking_id, movie_id, exc.message)
        return 0
    return reply.status_code


def _peer_message(reply: Any) -> str | None:
    try:
        return reply.json()["error"]["message"]
    except Exception:
        return None


async def create_booking(request: Request) -> Response:
    """Book seats for a user. Honours an `Idempotency-Key` header.
    ---
    summary: Book seats
    parameters:
      - name: Idempotency-Key
        in: header
        schema: {type: string}
        description: a retry with the same key and body returns the first result
    requestBody:
      content:
        application/json:
          schema: {$ref: "#/components/schemas/BookingIn"}
    responses:
      201: {description: Booked, content: {application/json: {schema: {$ref: "#/components/schemas/Booking"}}}}
      400: {description: Malformed JSON or not an object}
      404: {description: "The user or the movie does not exist (the message says which)"}
      409: {description: Not enough seats, or the same Idempotency-Key is still in progress}
      422: {description: Invalid or unknown fields, or an Idempotency-Key reused with another body}
      503: {description: Redis, user-service or movie-service is unreachable}
      504: {description: A service did not answer in time}
    """
    body = await read_body(request, BookingIn)
    store = _store(request)
    keys: idempotency.IdempotencyKeys = request.app.state.idempotency
    key = idempotency.header_key(request)
    booking_id = store.new_id()
    claim = None
    if key is not None:

        async def recover(held: Any) -> idempotency.Outcome | None:
            record = await store.get(held.get("bookingId", ""))
            return idempotency.Outcome(201, view(record)) if record else None

        claimed = await keys.claim(key, idempotency.fingerprint(body.model_dump()), {"bookingId": booking_id}, recover)
        if isinstance(claimed, idempotency.Outcome):
            return JSONResponse(claimed.body, status_code=claimed.status, headers={"Idempotent-Replayed": "true"})
        claim = claimed
    try:
        booking = await _book(request, body, booking_id)
    except BaseException:
        if claim is not None:
            await keys.abandon(claim)
        raise
    if claim is not None:
        await keys.finish(claim, idempotency.Outcome(201, booking))
    return JSONResponse(booking, status_code=201)


async def _book(request: Request, body: BookingIn, booking_id: str) -> dict[str, Any]:
    await _check_user(request, body.userId)
    await _reserve(request, body, booking_id)
    store = _store(request)
    booking = {
        "id": booking_id,
        "userId": body.userId,
        "movieId": body.movieId,
        "seats": body.seats,
        "status": "confirmed",
        "createdAt": now_iso(),
    }
    indexes = [
        store.index_by("user", body.userId),
        store.index_by("movie", body.movieId),
        store.index_by("pair", f"{body.userId}:{body.movieId}"),
    ]
    try:
        await store.create(booking_id, booking, indexes=indexes)
    except BaseException:
        await _release(request, body.movieId, booking_id)  # compensate: leave nothing behind
        raise
    return booking


async def list_bookings(request: Request) -> Response:
    """List bookings, oldest first, optionally of one user and/or one movie.
    ---
    summary: List bookings
    parameters:
      - {name: userId, in: query, schema: {type: string}}
      - {name: movieId, in: query, schema: {type: string}}
      - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
      - {name: cursor, in: query, schema: {type: string}, description: "`next` of the previous page"}
    responses:
      200: {description: "{items: [Booking], next: cursor or null}"}
      422: {description: Bad limit, cursor, userId or movieId}
    """
    limit, cursor = page_params(request)
    store = _store(request)
    user_id = request.query_params.get("userId")
    movie_id = request.query_params.get("movieId")
    bad = [
        {"field": name, "message": "must be 1-64 letters, digits, '_' or '-'"}
        for name, value in (("userId", user_id), ("movieId", movie_id))
        if value is not None and not _is_ref(value)
    ]
    if bad:
        raise ApiError(422, "invalid query parameters: " + ", ".join(b["field"] for b in bad), fields=bad)
    if user_id and movie_id:
        index = store.index_by("pair", f"{user_id}:{movie_id}")
    elif user_id:
        index = store.index_by("user", user_id)
    elif movie_id:
        index = store.index_by("movie", movie_id)
    else:
        index = store.index
    page = await store.page(index, limit, cursor)
    return JSONResponse({"items": [view(r) for r in page.items], "next": page.next})


def _is_ref(value: str) -> bool:
    return re.fullmatch(REF_PATTERN, value) is not None


async def get_booking(request: Request) -> Response:
    """Read one booking (cancelled ones too).
    ---
    summary: Read a booking
    responses:
      200: {description: The booking, content: {application/json: {schema: {$ref: "#/components/schemas/Booking"}}}}
      404: {description: No such booking}
    """
    booking_id = request.path_params["id"]
    record = await _store(request).get(booking_id)
    if record is None:
        raise ApiError(404, f"booking {booking_id} not found", "booking_not_found")
    return JSONResponse(view(record))


async def cancel_booking(request: Request) -> Response:
    """Cancel a booking and give its seats back; repeating it is harmless.
    ---
    summary: Cancel a booking
    responses:
      204: {description: "Cancelled now or before; the booking stays readable with status cancelled"}
      404: {description: No such booking}
      503: {description: movie-service or Redis is unreachable; the booking is unchanged}
    """
    booking_id = request.path_params["id"]
    store = _store(request)
    record = await store.get(booking_id)
    if record is None:
        raise ApiError(404, f"booking {booking_id} not found", "booking_not_found")
    if record["status"] == "cancelled":
        return Response(status_code=204)
    reply = await request.app.state.peers.request(MOVIES, "DELETE", _reservation(record["movieId"], booking_id), request.headers)
    # 404: the movie was deleted, together with its seats: nothing to give back.
    if reply.status_code not in (204, 404):
        raise _unavailable(MOVIES, reply.status_code)
    await store.set_if(booking_id, "status", "confirmed", "cancelled")
    return Response(status_code=204)


def create_app(settings: Settings | None = None) -> Starlette:
    settings = settings or Settings.from_env(SERVICE)
    routes = [
        *collection("/bookings", list_bookings, ["GET"]),
        *collection("/bookings", create_booking, ["POST"]),
        Route("/bookings/{id}", get_booking, methods=["GET"]),
        Route("/bookings/{id}", cancel_booking, methods=["DELETE"]),
    ]
    app = build_app(settings, routes, models=[BookingIn, Booking])
    app.state.bookings = Store(app.state.redis, "bookings", "b")
    # A retry waits for a first attempt still running at most this long.
    wait = 2 * settings.peer_timeout + 2
    app.state.idempotency = idempotency.IdempotencyKeys(app.state.redis, "bookings", wait=wait)
    return app
