"""booking-service: bookings of seats by users. Records live under
`bookings:` in this service's Redis, with their states kept by
services/booking_ledger.py; three secondary indexes serve the list filters:
`bookings:by-user:<userId>`, `bookings:by-movie:<movieId>` and
`bookings:by-pair:<userId>:<movieId>`.

Booking seats (POST /bookings/), safe under any single fault (a Redis stall
or restart, a dead instance, a slow or failing peer) with N replicas:

1. check the user: GET user-service /users/{userId} (404 -> "user ... not found");
2. write the intent: a `pending` record with a deadline, bound to the
   request's Idempotency-Key if it has one (a retry finds the same booking,
   in whatever state it reached, and carries it on);
3. hold the seats: POST movie-service /internal/movies/{movieId}/reservations
   under the booking's id (atomic there, so concurrent bookings never
   oversell; repeating it holds the seats once);
4. confirm: pending -> confirmed, only after the seats are held, and never
   for a user or movie whose deletion booking-service has seen;
5. check the user once more: if user-service says the user is gone (deleted
   while the booking was in progress, before the deletion feed was
   followed), the booking is cancelled at once, its seats go back and the
   answer is 404. So a 201 means the user still existed after the confirm.

Anything but a clear answer in step 3 (timeout, 503, a lost connection)
fails the booking (pending -> failed) and releases its seats; a fenced state
change means a late confirm can never revive it, and movie-service's
tombstone means a late reservation can never hold seats for it. A request
that dies half-way leaves a pending record that the reconciler
(services/booking_reconciler.py) fails after its deadline.

Cancelling (DELETE /bookings/{id}) first records `cancelled`, then
releases the seats (at most once per booking, enforced by movie-service).
When movie-service cannot be reached the answer is 202: the cancel stands
and the reconciler gives the seats back once it answers. The booking stays
readable; a repeated cancel answers 204 and frees nothing. Deleting a user
or a movie cancels their bookings the same way (the reconciler follows the
deletion feeds). No service calls back into booking-service.
"""

from __future__ import annotations

import time
from typing import Annotated, Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services import catalog
from services.booking_ledger import Ledger
from services.booking_reconciler import MOVIES, USERS, Reconciler, release
from services.common import deadline, idempotency
from services.common import redis as redis_mod
from services.common.app import ServiceApp, build_app, collection
from services.common.body import REF_PATTERN, StrictModel, read_body
from services.common.errors import ApiError, peer_unavailable
from services.common.peers import Peers, http_client
from services.common.responses import JSONResponse
from services.common.settings import Settings
from services.common.query import order_param, page_params, ref_params
from services.common.store import Store, now_iso

SERVICE = "booking-service"
FIELDS = ("id", "userId", "movieId", "seats", "status", "createdAt")
# Names copied when booking (docs/consistency.md): the user's from the user check, the
# movie's title from movie-service's reservation answer, stored with the
# confirm. A booking reads like a ticket, with no call to other services;
# bookings made before these fields existed show null.
SNAPSHOT = ("userName", "movieTitle")



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
    status: str = pydantic.Field(description='"confirmed" or "cancelled" ("pending" while being made)')
    createdAt: str
    userName: str | None = pydantic.Field(description="the user's name when the booking was made")
    movieTitle: str | None = pydantic.Field(description="the movie's title when the booking was made")


def view(record: dict[str, Any]) -> dict[str, Any]:
    return {name: record[name] for name in FIELDS} | {name: record.get(name) for name in SNAPSHOT}


def _unavailable(peer: str, status: int) -> ApiError:
    return peer_unavailable(peer, f"cannot serve the request right now (it answered {status})")


def _late(booking_id: str | None = None) -> ApiError:
    what = f"booking {booking_id} could not be completed" if booking_id else "the booking could not be started"
    return ApiError(
        504,
        f"{what} before the request's deadline and was given up: nothing is held; "
        "retry the request (with the same Idempotency-Key, if you sent one)",
        "deadline_exceeded",
    )


def _left(deadline_at: float) -> float:
    """Seconds until `deadline_at` (at least a millisecond: a call then fails at once)."""
    return max(deadline_at - time.time(), 0.001)


def _abandoned(booking_id: str) -> ApiError:
    return ApiError(
        503,
        f"booking {booking_id} could not be completed (a fault interrupted it) and was given up; "
        "retry the request (with the same Idempotency-Key, if you sent one)",
        "booking_abandoned",
    )


class Bookings:
    """booking-service's endpoints: its store and ledger, and the two
    services it calls."""

    def __init__(self, store: Store, ledger: Ledger, peers: Peers, *, budget: float, redis_timeout: float) -> None:
        self.store = store
        self.ledger = ledger
        self.peers = peers
        self.budget = budget  # seconds a booking request may take, at most
        self.redis_timeout = redis_timeout

    async def _check_user(self, request: Request, user_id: str, deadline_at: float) -> str | None:
        """The user's name; 404 when there is no such user."""
        reply = await self.peers.request(USERS, "GET", f"/users/{user_id}", request.headers, timeout=_left(deadline_at))
        if reply.status_code == 404:
            raise ApiError(404, f"user {user_id} not found", "user_not_found")
        if reply.status_code != 200:
            raise _unavailable(USERS, reply.status_code)
        return _peer_field(reply, "name")

    async def create_booking(self, request: Request) -> Response:
        """Book seats for a user. Honours an `Idempotency-Key` header.
        ---
        summary: Book seats
        parameters:
          - name: Idempotency-Key
            in: header
            schema: {type: string, minLength: 1, maxLength: 255, pattern: "^[!-~](?:[ -~]{0,253}[!-~])?$"}
            description: "1-255 visible ASCII characters (a UUID); a retry with the same key and body returns
              the same booking, in its current state. Keep the key until a definite answer (201, 400, 404,
              409, 422): after a 503, a 504 or a lost connection, send the same request with the same key
              again. A key lasts 24 h."
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/BookingIn"}
        responses:
          201: {description: Booked (or the key's booking again), content: {application/json: {schema: {$ref: "#/components/schemas/Booking"}}}}
          400: {description: Malformed JSON or not an object}
          404: {description: "The user or the movie does not exist (the message says which)"}
          409: {description: Not enough seats}
          422: {description: Invalid or unknown fields, or an Idempotency-Key reused with another body}
          503: {description: "Redis, user-service or movie-service is unreachable, or a fault interrupted the booking:
            booking-service gave up, nothing is held and it never confirms later. A 503 from a proxy in between
            (a connection lost on the way back) leaves the outcome unknown. Either way, retry with the same
            Idempotency-Key"}
          504: {description: "Not answered in time: the outcome is unknown to the client. booking-service gives
            up before the api-gateway's deadline (X-Request-Deadline) and never confirms after it, but a
            proxy in between (Envoy with a shorter route timeout, say) may answer 504 while the booking
            completes. Retry with the same Idempotency-Key: the answer is the one booking, or its definite
            refusal; never a second booking"}
        """
        body = await read_body(request, BookingIn)
        key = idempotency.header_key(request)
        # Give up before the caller does (the gateway sends its deadline):
        # nothing is confirmed after it (services/common/deadline.py).
        deadline_at = deadline.of(request.headers, self.budget)
        if time.time() >= deadline_at:
            raise _late()
        user_name = await self._check_user(request, body.userId, deadline_at)
        ledger = self.ledger
        record = {
            "id": self.store.new_id(),
            "userId": body.userId,
            "movieId": body.movieId,
            "seats": body.seats,
            "status": "pending",
            "createdAt": now_iso(),
            "userName": user_name,
        }
        fp = idempotency.fingerprint(body.model_dump())
        outcome, found = await ledger.begin(record, time.time(), idempotency.hashed(key) if key else None, fp, deadline_at)
        if outcome == "reused" or found is None:
            raise idempotency.reused()
        if found["status"] == "pending":
            found = await self._complete(request, found, deadline_at)
        headers = {idempotency.REPLAYED: "true"} if outcome == "existing" else None
        return JSONResponse(view(found), status_code=201, headers=headers)

    async def _complete(self, request: Request, record: dict[str, Any], deadline_at: float) -> dict[str, Any]:
        """Hold the seats of a pending booking and confirm it by
        `deadline_at`; the record afterwards, or an ApiError once the booking
        has been given up."""
        booking_id, movie_id = record["id"], record["movieId"]
        path = f"{catalog.INTERNAL_PREFIX}/movies/{movie_id}/reservations"
        payload = {"bookingId": booking_id, "seats": record["seats"]}
        try:
            reply = await self.peers.request(MOVIES, "POST", path, request.headers, json=payload, timeout=_left(deadline_at))
        except ApiError as exc:  # it may still arrive: give up and release
            return await self._give_up(request, record, exc, nothing_held=False, deadline_at=deadline_at)
        if reply.status_code in (200, 201):
            title = _peer_field(reply, "title")
            now = time.time()
            # The script refuses to confirm once this request's deadline has
            # passed, or once this call would have timed out here (Redis
            # stalled): a late confirm can never follow a 503 or a 504.
            # (Less a quarter of the Redis timeout, at most MARGIN, for the
            # clocks of Redis' host and this one.)
            not_after = min(deadline_at, now + self.redis_timeout - min(deadline.MARGIN, self.redis_timeout / 4))
            status, after = await self.ledger.confirm(booking_id, record["userId"], movie_id, now, title, not_after)
            if status == "confirmed" and after is not None:
                return await self._user_still_there(request, after, deadline_at)
            if status == "cancelled" and after is not None:
                return after
            if status == "expired":
                await release(self.peers, self.ledger, booking_id, movie_id, request.headers, timeout=_left(deadline_at))
                raise _late(booking_id)
            if status == "gone_user":
                raise ApiError(404, f"user {record['userId']} was deleted while booking", "user_not_found")
            if status == "gone_movie":
                raise ApiError(404, f"movie {movie_id} was deleted while booking", "movie_not_found")
            raise _abandoned(booking_id)
        # Final answers: movie-service holds nothing for this id, and never will.
        if reply.status_code == 404:
            error = ApiError(404, f"movie {movie_id} not found", "movie_not_found")
            return await self._give_up(request, record, error, nothing_held=True, deadline_at=deadline_at)
        if reply.status_code == 409:
            code, message = _peer_error(reply)
            if code == "sold_out":
                error = ApiError(409, message or f"not enough seats for movie {movie_id}", "sold_out")
            else:  # "released": given up by another attempt or the reconciler
                error = _abandoned(booking_id)
            return await self._give_up(request, record, error, nothing_held=True, deadline_at=deadline_at)
        # A 5xx may have done the work anyway (its Redis timed out, say).
        return await self._give_up(request, record, _unavailable(MOVIES, reply.status_code), nothing_held=False, deadline_at=deadline_at)

    async def _user_still_there(self, request: Request, record: dict[str, Any], deadline_at: float) -> dict[str, Any]:
        """Checked once more after the confirm: the user's deletion may have
        been answered while the booking was in progress, before
        booking-service followed the deletion feed. A 201 then means the
        user existed after the booking was confirmed (docs/consistency.md); if they
        are gone, the booking is cancelled now, its seats go back, and the
        answer is 404. When user-service cannot answer, the booking stands
        (the deletion feed cancels it if the user was in fact deleted)."""
        try:
            reply = await self.peers.request(
                USERS, "GET", f"/users/{record['userId']}", request.headers, timeout=max(_left(deadline_at), 0.05)
            )
        except ApiError:
            return record
        if reply.status_code != 404:
            return record
        status, after = await self.ledger.cancel(record["id"], time.time())
        if status == "cancelled_now" and after is not None:
            await release(self.peers, self.ledger, record["id"], record["movieId"], request.headers)
        raise ApiError(404, f"user {record['userId']} was deleted while booking", "user_not_found")

    async def _give_up(
        self, request: Request, record: dict[str, Any], error: ApiError, *, nothing_held: bool, deadline_at: float
    ) -> dict[str, Any]:
        """Fail the pending booking and release whatever it may hold (a
        release that does not finish by the deadline is the reconciler's).
        If another attempt confirmed it meanwhile, that booking is the answer."""
        ledger = self.ledger
        status, after = await ledger.fail(record["id"], time.time(), nothing_held=nothing_held)
        if status in ("confirmed", "cancelled") and after is not None:
            return after
        if status == "failed_now" and not nothing_held:
            await release(self.peers, ledger, record["id"], record["movieId"], request.headers, timeout=_left(deadline_at))
        raise error

    async def list_bookings(self, request: Request) -> Response:
        """List bookings, oldest first (or newest first), optionally of one user and/or one movie.
        ---
        summary: List bookings
        parameters:
          - {name: userId, in: query, schema: {type: string, pattern: "^[A-Za-z0-9_-]{1,64}$"}, description: "only this user's bookings"}
          - {name: movieId, in: query, schema: {type: string, pattern: "^[A-Za-z0-9_-]{1,64}$"}, description: "only this movie's bookings"}
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
          - {name: cursor, in: query, schema: {type: string}, description: "`next` of the previous page"}
          - {name: order, in: query, schema: {type: string, enum: [oldest, newest], default: oldest}, description: "newest: the latest bookings first (the web page's order); `next` then walks backwards"}
        responses:
          200: {description: "{items: [Booking], next: cursor or null}"}
          422: {description: Bad limit, cursor, order, userId or movieId}
        """
        limit, cursor = page_params(request)
        newest = order_param(request)
        store = self.store
        refs = ref_params(request, ("userId", "movieId"))
        user_id, movie_id = refs["userId"], refs["movieId"]
        if user_id and movie_id:
            index = store.index_by("pair", f"{user_id}:{movie_id}")
        elif user_id:
            index = store.index_by("user", user_id)
        elif movie_id:
            index = store.index_by("movie", movie_id)
        else:
            index = store.index
        page = await store.page(index, limit, cursor, newest=newest)
        return JSONResponse({"items": [view(r) for r in page.items], "next": page.next})

    async def get_booking(self, request: Request) -> Response:
        """Read one booking (cancelled ones too).
        ---
        summary: Read a booking
        responses:
          200: {description: The booking, content: {application/json: {schema: {$ref: "#/components/schemas/Booking"}}}}
          404: {description: No such booking}
        """
        booking_id = request.path_params["id"]
        record = await self.store.get(booking_id)
        if record is None or record["status"] == "failed":  # a failed attempt is no booking
            raise ApiError(404, f"booking {booking_id} not found", "booking_not_found")
        return JSONResponse(view(record))

    async def cancel_booking(self, request: Request) -> Response:
        """Cancel a booking and give its seats back; repeating it is harmless.
        ---
        summary: Cancel a booking
        responses:
          204: {description: "Cancelled now or before; the booking stays readable with status cancelled"}
          202: {description: "Cancelled; movie-service could not be reached, its seats go back as soon as it answers"}
          404: {description: No such booking}
          503: {description: Redis is unreachable; the booking is unchanged}
        """
        booking_id = request.path_params["id"]
        ledger = self.ledger
        status, record = await ledger.cancel(booking_id, time.time())
        if status == "missing" or record is None:
            raise ApiError(404, f"booking {booking_id} not found", "booking_not_found")
        if status == "cancelled":
            return Response(status_code=204)
        if await release(self.peers, ledger, booking_id, record["movieId"], request.headers):
            return Response(status_code=204)
        return JSONResponse(view(record), status_code=202)


def _peer_field(reply: Any, name: str) -> str | None:
    try:
        value = reply.json()[name]
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _peer_error(reply: Any) -> tuple[str | None, str | None]:
    try:
        error = reply.json()["error"]
        return error.get("code"), error.get("message")
    except Exception:
        return None, None


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env(SERVICE)
    redis = redis_mod.connect(settings)
    http = http_client(settings)
    peers = Peers(settings, http)
    store = Store(redis, "bookings", "b")
    # A request confirms at most a reservation call plus a Redis call after
    # it began; past that, its pending record is the reconciler's to fail.
    grace = settings.peer_timeout + settings.redis_timeout + 1
    ledger = Ledger(redis, store, grace=grace)
    reconciler = Reconciler(ledger, peers, interval=settings.reconcile_interval, retry_after=settings.peer_timeout + 1)
    # The gateway waits PEER_TIMEOUT_SECONDS for an answer (and sends its
    # deadline); booking-service works to its own, shorter one.
    budget = settings.peer_timeout - min(deadline.MARGIN, settings.peer_timeout / 5)
    api = Bookings(store, ledger, peers, budget=budget, redis_timeout=settings.redis_timeout)
    routes = [
        *collection("/bookings", api.list_bookings, ["GET"]),
        *collection("/bookings", api.create_booking, ["POST"]),
        Route("/bookings/{id}", api.get_booking, methods=["GET"]),
        Route("/bookings/{id}", api.cancel_booking, methods=["DELETE"]),
    ]
    return build_app(
        settings, routes, models=[BookingIn, Booking], redis=redis, closing=[http], background=reconciler.run_forever
    )
