"""The constant-JSON baseline: a minimal Starlette app, served exactly the way
services/serve.py serves a real service.

`python -m bench.baseline_app` runs it. The uvicorn settings are not copied
here: `serve_as()` calls `services.serve.main()` and swaps only the app
import string it hands to `uvicorn.run`, so any change to serve.py's settings
(loop, http parser, logging, proxy headers...) applies to the baseline too.
"""

from __future__ import annotations

import os
import sys
from typing import Any

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


def create_app() -> Starlette:
    routes = [
        Route("/healthz", constant, methods=["GET"]),
        Route("/movies/{id}", constant, methods=["GET"]),
        Route("/{path:path}", constant, methods=["GET"]),
    ]
    return Starlette(routes=routes)


def serve_as(target: str, service: str) -> None:
    """Run `target` ("module:factory") through services.serve.main(service),
    keeping every uvicorn option serve.py passes except the app itself."""
    import uvicorn

    from services import serve

    real_run = uvicorn.run

    def run(app: Any, **options: Any) -> None:
        real_run(target, **options)

    serve.uvicorn.run = run  # type: ignore[attr-defined]
    try:
        serve.main([service])
    finally:
        serve.uvicorn.run = real_run  # type: ignore[attr-defined]


def main() -> None:
    # serve.main() wants a catalog name (for its default port and SERVICE_NAME);
    # the baseline stands in for movie-service, the service it is compared with.
    os.environ.setdefault("PORT", "8099")
    serve_as("bench.baseline_app:create_app", sys.argv[1] if len(sys.argv) > 1 else "movie-service")


if __name__ == "__main__":
    main()
