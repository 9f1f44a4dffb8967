"""movie-service: movies and their seats. Keys live under `movies:` in this
service's Redis (layout in services/common/store.py), plus per movie:

    movies:<id>:seats         seats still available (an integer)
    movies:<id>:reservations  hash bookingId -> seats held (> 0), or the
                              tombstone of a released reservation (-seats, or
                              0 when it was released before it was ever held
                              or refused for want of seats)
    movies:deleted            deleted movie ids (the deletion feed)

Seats change only through two internal endpoints that booking-service calls
(under catalog.INTERNAL_PREFIX, which the gateway and the ingress never route),
each one Lua script, so availability never goes below zero and every
booking holds or frees its seats at most once:

    POST   /internal/movies/{id}/reservations {"bookingId","seats"}
           201 reserved, 200 already held by this booking (a retry); the
           answer carries the movie's title for the booking's record;
           404 no such movie, 409 not enough seats or already released.
           Every answer but 201/200 is final for that booking id: a refusal
           for want of seats leaves a tombstone too, so the same booking id
           can never hold seats later (a late duplicate of the request).
    DELETE /internal/movies/{id}/reservations/{bookingId}
           204 released now, earlier, or never held (a tombstone then stops
           a late reservation for that booking); 404 no such movie
    GET    /internal/movies/{id}/reservations
           the seats each booking holds now (for checks and debugging)
    POST   /internal/releases {"releases": [{"movieId", "bookingId"}, ...]}
           the DELETE above for up to 500 bookings of any movies in one
           call (one script): how a deletion's thousands of seats go back
           at thousands per second

Deleting a movie deletes its seats and reservations, so new bookings for it
get 404, and records the id in the deletion feed (GET
/internal/movies/deleted, services/common/deletions.py): booking-service
follows it and cancels the movie's bookings (services/booking_reconciler.py).

Versions (canary, A/B and failover lessons): the same module runs as v1 and
as v2, chosen by SERVICE_VERSION (Settings.version). v2 adds `bookingRate`
(예매율: the percentage of the movie's seats that are booked) to every movie
answer; v1 clients ignore the extra field, and nothing else differs. Which
version answered is also in X-Served-By and /info.
"""

from __future__ import annotations

from typing import Annotated, Any

import pydantic
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services import catalog
from services.common import deletions
from services.common import redis as redis_mod
from services.common.app import ServiceApp, build_app, collection
from services.common.body import REF_PATTERN, TEXT_PATTERN, StrictModel, read_body
from services.common.errors import ApiError
from services.common.responses import JSONResponse, loads
from services.common.settings import Settings
from services.common.query import order_param, page_params
from services.common.store import Store, id_pattern

SERVICE = "movie-service"
SEATS = ":seats"  # movies:<id>:seats, the seats still available

# KEYS: movie record, seats, reservations   ARGV: bookingId, seats
# Returns {status, seats available, the movie record when the booking holds
# seats} (the record's title goes into the booking: no second round trip).
_RESERVE = """
local record = redis.call('GET', KEYS[1])
if not record then return {'no_movie', 0} end
local avail = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = redis.call('HGET', KEYS[3], ARGV[1])
if held then
  if tonumber(held) > 0 then return {'held', avail, record} end
  return {'released', avail}
end
local want = tonumber(ARGV[2])
if avail < want then
  redis.call('HSET', KEYS[3], ARGV[1], 0)
  return {'sold_out', avail}
end
avail = redis.call('DECRBY', KEYS[2], want)
redis.call('HSET', KEYS[3], ARGV[1], want)
return {'reserved', avail, record}
"""

# KEYS: movie record, seats, reservations   ARGV: bookingId
_RELEASE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return {'no_movie', 0} end
local avail = tonumber(redis.call('GET', KEYS[2]) or '0')
local held = redis.call('HGET', KEYS[3], ARGV[1])
if not held then
  redis.call('HSET', KEYS[3], ARGV[1], 0)
  return {'never_held', avail}
end
local n = tonumber(held)
if n <= 0 then return {'already_released', avail} end
avail = redis.call('INCRBY', KEYS[2], n)
redis.call('HSET', KEYS[3], ARGV[1], -n)
return {'released', avail}
"""

# Bookings one batch release may name (booking-service's reconciler sends up
# to this many per call; the script refuses more, so it stays bounded).
RELEASE_CAP = 500

# _RELEASE for many bookings, of any movies, in one call: a deletion's
# thousands of cancelled bookings give their seats back at thousands per
# second instead of one HTTP call each. A movie that is gone took its seats
# with it (nothing to give back). Record keys are computed from the ids
# (one Redis server, as the app deploys; the ids are checked before).
# ARGV: key prefix, then movieId, bookingId pairs (at most RELEASE_CAP)
# Returns the seats given back by this call.
_RELEASE_MANY = """
if #ARGV > 1 + 2 * %(cap)d then return redis.error_reply('at most %(cap)d bookings per call') end
local released = 0
for i = 2, #ARGV - 1, 2 do
  local movie = ARGV[1] .. ':' .. ARGV[i]
  if redis.call('EXISTS', movie) == 1 then
    local held = redis.call('HGET', movie .. ':reservations', ARGV[i + 1])
    if not held then
      redis.call('HSET', movie .. ':reservations', ARGV[i + 1], 0)
    else
      local n = tonumber(held)
      if n > 0 then
        redis.call('INCRBY', movie .. '%(seats)s', n)
        redis.call('HSET', movie .. ':reservations', ARGV[i + 1], -n)
        released = released + n
      end
    end
  end
end
return released
""" % {"cap": RELEASE_CAP, "seats": SEATS}


class MovieIn(StrictModel):
    """Body of POST /movies/."""

    title: Annotated[str, pydantic.Field(min_length=1, max_length=200, pattern=TEXT_PATTERN)]
    genre: Annotated[str, pydantic.Field(min_length=1, max_length=50, pattern=TEXT_PATTERN)]
    year: Annotated[int, pydantic.Field(ge=1888, le=2100)]
    capacity: Annotated[int, pydantic.Field(ge=1, le=10000)] = 100

    @pydantic.field_validator("title", "genre")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class Movie(pydantic.BaseModel):
    id: str
    title: str
    genre: str
    year: int
    capacity: int
    availableSeats: int
    bookingRate: int | None = pydantic.Field(
        None, ge=0, le=100, description="v2 only: percentage of the seats that are booked (예매율)"
    )


class ReservationIn(StrictModel):
    """Body of POST /internal/movies/{id}/reservations (called by booking-service)."""

    bookingId: Annotated[str, pydantic.Field(pattern=REF_PATTERN)]
    seats: Annotated[int, pydantic.Field(ge=1, le=10)]


# A movie id exactly (services/common/store.py): the batch release computes
# Redis keys from it, so nothing else may reach the script.
MOVIE_KIND = "m"
MOVIE_ID_PATTERN = id_pattern(MOVIE_KIND)


class Release(StrictModel):
    movieId: Annotated[str, pydantic.Field(pattern=MOVIE_ID_PATTERN)]
    bookingId: Annotated[str, pydantic.Field(pattern=REF_PATTERN)]


class ReleasesIn(StrictModel):
    """Body of POST /internal/releases (called by booking-service's reconciler)."""

    releases: Annotated[list[Release], pydantic.Field(min_length=1, max_length=RELEASE_CAP)]


class Reservation(pydantic.BaseModel):
    movieId: str
    title: str | None = pydantic.Field(description="the movie's title, which booking-service copies into the booking")
    bookingId: str
    seats: int
    availableSeats: int


class Movies:
    """The movie collection plus each movie's seat keys. `booking_rate`:
    answers carry bookingRate (v2)."""

    def __init__(self, store: Store, booking_rate: bool = False) -> None:
        self.store = store
        self.booking_rate = booking_rate
        self.reserve = store.redis.register_script(_RESERVE)
        self.release = store.redis.register_script(_RELEASE)
        self.release_many = store.redis.register_script(_RELEASE_MANY)

    def seats_key(self, movie_id: str) -> str:
        return self.store.record_key(movie_id) + SEATS

    def reservations_key(self, movie_id: str) -> str:
        return self.store.key(movie_id, "reservations")

    def seat_keys(self, movie_id: str) -> list[str]:
        return [self.store.record_key(movie_id), self.seats_key(movie_id), self.reservations_key(movie_id)]

    async def views(self, ids: list[str]) -> list[dict[str, Any]]:
        """Records with their current availableSeats; two round trips."""
        if not ids:
            return []
        keys = [k for i in ids for k in (self.store.record_key(i), self.seats_key(i))]
        values = await self.store.redis.mget(keys)
        out = []
        for raw, seats in zip(values[::2], values[1::2], strict=True):
            if raw is not None:
                out.append(self.view(loads(raw), int(seats or 0)))
        return out

    def view(self, record: dict[str, Any], available: int) -> dict[str, Any]:
        return view(record, available, booking_rate=self.booking_rate)


def view(record: dict[str, Any], available: int, booking_rate: bool = False) -> dict[str, Any]:
    out = {
        "id": record["id"],
        "title": record["title"],
        "genre": record["genre"],
        "year": record["year"],
        "capacity": record["capacity"],
        "availableSeats": available,
    }
    if booking_rate:
        out["bookingRate"] = rate_percent(record["capacity"], available)
    return out


def rate_percent(capacity: int, available: int) -> int:
    """Booked seats as a whole percentage of the capacity, 0-100."""
    if capacity <= 0:
        return 0
    booked = min(max(capacity - available, 0), capacity)
    return round(100 * booked / capacity)


def shows_booking_rate(version: str) -> bool:
    """v2 (catalog.MOVIE_V2) shows bookingRate; every other version is v1's behaviour."""
    return version == catalog.MOVIE_V2.version


def _not_found(movie_id: str) -> ApiError:
    return ApiError(404, f"movie {movie_id} not found", "movie_not_found")


class MovieEndpoints:
    """movie-service's endpoints, public and internal, over its movies."""

    def __init__(self, movies: Movies) -> None:
        self.movies = movies

    async def create_movie(self, request: Request) -> Response:
        """Create a movie; all its seats start available.
        ---
        summary: Create a movie
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/MovieIn"}
        responses:
          201: {description: The new movie, content: {application/json: {schema: {$ref: "#/components/schemas/Movie"}}}}
          400: {description: Malformed JSON or not an object}
          422: {description: Invalid or unknown fields}
          503: {description: Redis is unreachable}
        """
        body = await read_body(request, MovieIn)
        movies = self.movies
        movie_id = movies.store.new_id()
        record = {"id": movie_id, **body.model_dump()}
        await movies.store.create(movie_id, record, also_set={movies.seats_key(movie_id): body.capacity})
        return JSONResponse(movies.view(record, body.capacity), status_code=201)

    async def list_movies(self, request: Request) -> Response:
        """List movies, oldest first (or newest first).
        ---
        summary: List movies
        parameters:
          - {name: limit, in: query, schema: {type: integer, minimum: 1, maximum: 500, default: 50}}
          - {name: cursor, in: query, schema: {type: string}, description: "`next` of the previous page"}
          - {name: order, in: query, schema: {type: string, enum: [oldest, newest], default: oldest}, description: "newest: the latest movies first (the web page's order); `next` then walks backwards"}
        responses:
          200: {description: "{items: [Movie], next: cursor or null}"}
          422: {description: Bad limit, cursor or order}
        """
        limit, cursor = page_params(request)
        newest = order_param(request)
        movies = self.movies
        rows, next_cursor = await movies.store.page_values(movies.store.index, limit, cursor, (SEATS,), newest=newest)
        items = [movies.view(loads(raw), int(seats or 0)) for raw, seats in rows if raw is not None]
        return JSONResponse({"items": items, "next": next_cursor})

    async def get_movie(self, request: Request) -> Response:
        """Read one movie with its available seats.
        ---
        summary: Read a movie
        responses:
          200: {description: The movie, content: {application/json: {schema: {$ref: "#/components/schemas/Movie"}}}}
          404: {description: No such movie}
        """
        movie_id = request.path_params["id"]
        movies = self.movies
        found = await movies.views([movie_id]) if movies.store.is_id(movie_id) else []
        if not found:
            raise _not_found(movie_id)
        return JSONResponse(found[0])

    async def delete_movie(self, request: Request) -> Response:
        """Delete a movie; new bookings for it get 404, and booking-service
        cancels its bookings (they stay readable, as cancelled).
        ---
        summary: Delete a movie
        responses:
          204: {description: Deleted; its bookings become cancelled within the reconcile time}
          404: {description: No such movie}
        """
        movie_id = request.path_params["id"]
        movies = self.movies
        extra = [movies.seats_key(movie_id), movies.reservations_key(movie_id)]
        if not await movies.store.delete(movie_id, extra_keys=extra):
            raise _not_found(movie_id)
        return Response(status_code=204)

    async def reserve_seats(self, request: Request) -> Response:
        """Hold seats for a booking (internal: called by booking-service).
        ---
        summary: Reserve seats for a booking
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReservationIn"}
        responses:
          201: {description: Reserved, content: {application/json: {schema: {$ref: "#/components/schemas/Reservation"}}}}
          200: {description: This booking already holds its seats (a retry)}
          400: {description: Malformed JSON or not an object}
          404: {description: No such movie}
          409: {description: Not enough seats, or this booking's reservation was released}
          422: {description: Invalid or unknown fields}
        """
        movie_id = request.path_params["id"]
        body = await read_body(request, ReservationIn)
        movies = self.movies
        if not movies.store.is_id(movie_id):
            raise _not_found(movie_id)
        status, available, *record = await movies.reserve(keys=movies.seat_keys(movie_id), args=[body.bookingId, body.seats])
        if status == "no_movie":
            raise _not_found(movie_id)
        if status == "sold_out":
            raise ApiError(
                409, f"not enough seats for movie {movie_id}: {body.seats} wanted, {available} available", "sold_out"
            )
        if status == "released":
            raise ApiError(409, f"the reservation for booking {body.bookingId} was already released", "released")
        title = loads(record[0]).get("title") if record else None  # for the booking's snapshot
        result = {
            "movieId": movie_id,
            "title": title,
            "bookingId": body.bookingId,
            "seats": body.seats,
            "availableSeats": int(available),
        }
        return JSONResponse(result, status_code=201 if status == "reserved" else 200)

    async def list_reservations(self, request: Request) -> Response:
        """The seats each booking holds now (internal: checks and debugging).
        ---
        summary: Seats held per booking
        responses:
          200: {description: "{movieId, held: {bookingId: seats}}"}
          404: {description: No such movie}
        """
        movie_id = request.path_params["id"]
        movies = self.movies
        if not movies.store.is_id(movie_id) or not await movies.store.redis.exists(movies.store.record_key(movie_id)):
            raise _not_found(movie_id)
        # The hash keeps a tombstone for every booking ever released: read it
        # in HSCAN steps (each bounded), keep what is held (at most the capacity).
        held: dict[str, int] = {}
        cursor = "0"
        while True:
            cursor, rows = await movies.store.redis.hscan(movies.reservations_key(movie_id), cursor)
            held.update((booking, int(n)) for booking, n in rows.items() if int(n) > 0)
            if cursor == "0":
                return JSONResponse({"movieId": movie_id, "held": held})

    async def release_seats(self, request: Request) -> Response:
        """Give a booking's seats back, at most once (internal: booking-service).
        ---
        summary: Release a booking's seats
        responses:
          204: {description: Released now or earlier, or never held}
          404: {description: No such movie}
        """
        movie_id = request.path_params["id"]
        booking_id = request.path_params["bookingId"]
        movies = self.movies
        if not movies.store.is_id(movie_id):
            raise _not_found(movie_id)
        status, _ = await movies.release(keys=movies.seat_keys(movie_id), args=[booking_id])
        if status == "no_movie":
            raise _not_found(movie_id)
        return Response(status_code=204)

    async def release_many(self, request: Request) -> Response:
        """Give the seats of many bookings back, each at most once, whatever
        their movies (internal: booking-service's reconciler, after a
        deletion). A movie that is gone has no seats to give back.
        ---
        summary: Release the seats of many bookings
        requestBody:
          content:
            application/json:
              schema: {$ref: "#/components/schemas/ReleasesIn"}
        responses:
          200: {description: "{released: seats given back by this call}; every booking named holds nothing now"}
          400: {description: Malformed JSON or not an object}
          422: {description: "Not a list of 1-500 {movieId, bookingId}, or a movieId that is no movie id"}
        """
        body = await read_body(request, ReleasesIn)
        movies = self.movies
        args = [movies.store.prefix, *(v for r in body.releases for v in (r.movieId, r.bookingId))]
        released = await movies.release_many(args=args)
        return JSONResponse({"released": int(released)})


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env(SERVICE)
    redis = redis_mod.connect(settings)
    api = MovieEndpoints(Movies(Store(redis, "movies", MOVIE_KIND), booking_rate=shows_booking_rate(settings.version)))
    reservations = f"{catalog.INTERNAL_PREFIX}/movies/{{id}}/reservations"
    routes = [
        *collection("/movies", api.list_movies, ["GET"]),
        *collection("/movies", api.create_movie, ["POST"]),
        Route("/movies/{id}", api.get_movie, methods=["GET"]),
        Route("/movies/{id}", api.delete_movie, methods=["DELETE"]),
        deletions.route("movies", api.movies.store),
        *collection(reservations, api.reserve_seats, ["POST"]),
        *collection(reservations, api.list_reservations, ["GET"]),
        Route(reservations + "/{bookingId}", api.release_seats, methods=["DELETE"]),
        Route(f"{catalog.INTERNAL_PREFIX}/releases", api.release_many, methods=["POST"]),
    ]
    models = [MovieIn, Movie, ReservationIn, Release, ReleasesIn, Reservation]
    return build_app(settings, routes, models=models, redis=redis)
