"""The baselines: minimal Starlette apps, served exactly the way
services/serve.py serves a real service.

- constant JSON (the issue's baseline): no I/O at all;
- with BASELINE_REDIS_URL set, GET /movies/{id} does what movie-service's
  GET does at its core, one MGET of the record and its seats (key names from
  services.movie_service), and nothing else: no shared plumbing, no
  middleware. Comparing movie-service with it isolates the plumbing's cost
  from the cost of a Redis round trip.

`python -m bench.baseline_app [SERVICE]` runs one. The server settings are
not copied here: it takes them from `services.serve.server_options()`, as
serve.main() does for a real service, so any change there (logging, proxy
headers, shutdown...) applies to the baseline too.
"""

from __future__ import annotations

import os
import sys
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

# The same shape and roughly the same size as a movie-service answer.
BODY = {
    "id": "00000000-0000-0000-0000-000000000000",
    "title": "Baseline",
    "genre": "drama",
    "year": 2000,
    "capacity": 100,
    "availableSeats": 100,
}


async def constant(request: Request) -> Response:
    return JSONResponse(BODY)


def _redis_movie_route(redis_url: str) -> Route:
    import json

    from services.common.redis import Redis
    from services.common.store import Store
    from services.movie_service import Movies

    client = Redis(redis_url, 2.0)  # the services' client, so the gap to movie-service is the plumbing
    movies = Movies(Store(client, "movies", "m"))

    async def movie(request: Request) -> Response:
        movie_id = request.path_params["id"]
        raw, seats = await client.mget([movies.store.record_key(movie_id), movies.seats_key(movie_id)])
        if raw is None:
            return JSONResponse({"error": "not found"}, status_code=404)
        return JSONResponse({**json.loads(raw), "availableSeats": int(seats or 0)})

    return Route("/movies/{id}", movie, methods=["GET"])


def create_app() -> Starlette:
    redis_url = os.environ.get("BASELINE_REDIS_URL")
    routes = [
        Route("/healthz", constant, methods=["GET"]),
        _redis_movie_route(redis_url) if redis_url else Route("/movies/{id}", constant, methods=["GET"]),
        Route("/{path:path}", constant, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def main() -> None:
    from services import catalog, serve

    # The baseline stands in for movie-service, the service it is compared
    # with: its catalog entry gives the default port, overridden by $PORT.
    os.environ.setdefault("PORT", "8099")
    spec = catalog.SERVICES[sys.argv[1] if len(sys.argv) > 1 else "movie-service"]
    serve.run("bench.baseline_app:create_app", spec)


if __name__ == "__main__":
    main()
