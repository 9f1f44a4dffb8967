"""Stand-in services for checking the harness itself (`python -m bench
--standins`): the same API contract, built on the same plumbing
(services.common.app / store), but NOT the real services. Figures from a
stand-in run say nothing about the real services.

`python -m bench.standins NAME` serves one of them the way serve.py serves
the real one (see baseline_app.serve_as).
"""

from __future__ import annotations

import sys

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bench.baseline_app import serve_as
from services.common.app import build_app, collection
from services.common.body import read_json_object
from services.common.errors import ApiError
from services.common.settings import Settings
from services.common.store import Store, page_params

_RESERVE = """
local left = tonumber(redis.call('GET', KEYS[1]) or '-1')
local n = tonumber(ARGV[1])
if left < 0 then return -2 end
if left < n then return -1 end
return redis.call('DECRBY', KEYS[1], n)
"""


def _users() -> object:
    settings = Settings.from_env("user-service")

    async def create(request: Request) -> Response:
        store: Store = request.app.state.store
        body = await read_json_object(request)
        doc = {"id": store.new_id(), "name": body["name"], "email": body["email"]}
        await store.create(doc["id"], doc)
        return JSONResponse(doc, status_code=201)

    async def lst(request: Request) -> Response:
        limit, cursor = page_params(request)
        return JSONResponse((await request.app.state.store.page(None, limit, cursor)).body())

    async def get(request: Request) -> Response:
        doc = await request.app.state.store.get(request.path_params["id"])
        if doc is None:
            raise ApiError(404, "no such user")
        return JSONResponse(doc)

    async def items(request: Request) -> Response:
        return await (create(request) if request.method == "POST" else lst(request))

    app = build_app(settings, [*collection("/users", items, ["GET", "POST"]), Route("/users/{id}", get)])
    app.state.store = Store(app.state.redis, "users", "u")
    return app


def _movies() -> object:
    settings = Settings.from_env("movie-service")

    async def with_seats(request: Request, doc: dict) -> dict:
        left = await request.app.state.redis.get(f"movies:{doc['id']}:seats")
        return {**doc, "availableSeats": int(left)}

    async def items(request: Request) -> Response:
        store: Store = request.app.state.store
        if request.method == "POST":
            body = await read_json_object(request)
            doc = {"id": store.new_id(), **{k: body[k] for k in ("title", "genre", "year", "capacity")}}
            await request.app.state.redis.set(f"movies:{doc['id']}:seats", doc["capacity"])
            await store.create(doc["id"], doc)
            return JSONResponse({**doc, "availableSeats": doc["capacity"]}, status_code=201)
        limit, cursor = page_params(request)
        return JSONResponse((await store.page(None, limit, cursor)).body())

    async def get(request: Request) -> Response:
        doc = await request.app.state.store.get(request.path_params["id"])
        if doc is None:
            raise ApiError(404, "no such movie")
        return JSONResponse(await with_seats(request, doc))

    async def reserve(request: Request) -> Response:
        body = await read_json_object(request)
        left = await request.app.state.reserve(keys=[f"movies:{request.path_params['id']}:seats"], args=[body["seats"]])
        if left == -2:
            raise ApiError(404, "no such movie")
        if left == -1:
            raise ApiError(409, "sold out")
        return JSONResponse({"availableSeats": left})

    routes = [*collection("/movies", items, ["GET", "POST"]), Route("/movies/{id}", get), Route("/movies/{id}/reserve", reserve, methods=["POST"])]
    app = build_app(settings, routes)
    app.state.store = Store(app.state.redis, "movies", "m")
    app.state.reserve = app.state.redis.register_script(_RESERVE)
    return app


def _bookings() -> object:
    settings = Settings.from_env("booking-service")

    async def items(request: Request) -> Response:
        store: Store = request.app.state.store
        if request.method == "GET":
            limit, cursor = page_params(request)
            movie = request.query_params.get("movieId")
            index = store.index_by("movie", movie) if movie else None
            return JSONResponse((await store.page(index, limit, cursor)).body())
        body = await read_json_object(request)
        peers = request.app.state.peers
        user = await peers.request("user-service", "GET", f"/users/{body['userId']}", request.headers)
        if user.status_code != 200:
            raise ApiError(422, "no such user")
        r = await peers.request("movie-service", "POST", f"/movies/{body['movieId']}/reserve", request.headers, json={"seats": body["seats"]})
        if r.status_code != 200:
            raise ApiError(r.status_code, r.json()["error"]["message"])
        doc = {"id": store.new_id(), "userId": body["userId"], "movieId": body["movieId"], "seats": body["seats"], "status": "confirmed"}
        await store.create(doc["id"], doc, indexes=[store.index_by("movie", body["movieId"])])
        return JSONResponse(doc, status_code=201)

    app = build_app(settings, collection("/bookings", items, ["GET", "POST"]))
    app.state.store = Store(app.state.redis, "bookings", "b")
    return app


def _gateway() -> object:
    settings = Settings.from_env("api-gateway")
    owners = {"users": "user-service", "movies": "movie-service", "bookings": "booking-service"}

    async def proxy(request: Request) -> Response:
        path = request.url.path
        peer = owners.get(path.strip("/").split("/")[0])
        if peer is None:
            raise ApiError(404, "no route")
        body = await request.body()
        url = request.app.state.peers.urls[peer] + path + (f"?{request.url.query}" if request.url.query else "")
        r = await request.app.state.http.request(request.method, url, content=body, headers={"content-type": "application/json"})
        return Response(r.content, status_code=r.status_code, media_type="application/json")

    return build_app(settings, [Route("/{path:path}", proxy, methods=["GET", "POST"])])


FACTORIES = {"user-service": _users, "movie-service": _movies, "booking-service": _bookings, "api-gateway": _gateway}


def create_app() -> object:
    import os

    return FACTORIES[os.environ["SERVICE_NAME"]]()


if __name__ == "__main__":
    serve_as("bench.standins:create_app", sys.argv[1])
