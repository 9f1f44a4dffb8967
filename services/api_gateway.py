"""api-gateway (port 8080): the single entry point of the app.

* /users, /movies, /bookings (with or without a trailing slash, and every
  path below them) are proxied to the service that owns the prefix
  (`catalog.ROUTED`), over the app's pooled HTTP client. Method, path, query
  string and body go through unchanged, and so do the request headers except
  the hop-by-hop ones and Host (so content-type, accept, idempotency-key and
  the trace headers reach the service). The answer's status, headers and raw
  body come back unchanged, except hop-by-hop headers and the backend's
  Date/Server/Content-Length, which the gateway's own server sets.
* X-Served-By: the backend's value is passed through and the gateway adds its
  own as a second value, so a client sees
  `X-Served-By: movie-service@ctx2/movie-service-... (v1), api-gateway@ctx1/api-gateway-... (v1)`
  (backend first, gateway last: read it like a Via header).
* A backend that cannot be reached gives 503 naming it; one that does not
  finish answering within PEER_TIMEOUT_SECONDS gives 504. Nothing waits longer.
* / serves the web UI (index.html) and /app.js, /style.css the other
  `catalog.UI_FILES` (and /favicon.ico, an alias of favicon.svg:
  `catalog.UI_ALIASES`), read from UI_DIR (in Kubernetes a mounted ConfigMap,
  whose files are symlinks that change on update: files are re-read when
  their stat changes).
* GET /api/status: deployment status of both clusters (services/status/).
* GET /api/whoami?service=movie-service&n=6: calls that service's /info n
  times over the same route the proxy uses, to show who answered
  (load balancing, cross-cluster routing): counts per cluster/pod and per
  version (canary lesson). Without `service`, all three.
"""

from __future__ import annotations

import asyncio
import importlib
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

import aiohttp
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services import catalog
from services.common import deadline
from services.common.app import ServiceApp, build_app
from services.common.errors import ApiError, error_response, peer_timeout, peer_unavailable
from services.common.peers import HttpClient, Peers, http_client
from services.common.responses import JSONResponse
from services.common.settings import Settings
from services.common.tracing import trace_headers
from services.status import StatusReader

PROXY_METHODS = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
# RFC 9110 7.6.1 hop-by-hop headers, plus the ones a proxy always recomputes.
# Header names in the ASGI scope are lower-case bytes; compared as such.
HOP_BY_HOP = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-authenticate",
        b"proxy-authorization",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
    }
)
# A client's X-Request-Deadline is dropped: the gateway sends its own.
DROP_REQUEST = HOP_BY_HOP | {b"host", b"content-length", deadline.HEADER.encode()}
# uvicorn adds its own Date and Server; Starlette sets Content-Length from the body.
DROP_RESPONSE = HOP_BY_HOP | {b"content-length", b"date", b"server"}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".ico": "image/x-icon",
}
WHOAMI_MAX = 20


def _connection_tokens(headers: list[tuple[bytes, bytes]]) -> set[bytes]:
    """Header names listed in Connection: are hop-by-hop for this message too."""
    out: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            out |= {t.strip().lower() for t in value.split(b",") if t.strip()}
    return out


def forward_request_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The client's headers to send on (as latin-1 text, what the client
    library takes). A client that sent no Accept-Encoding gets `identity`
    from the backend, not an encoding it never offered."""
    drop = DROP_REQUEST | _connection_tokens(raw) if any(k == b"connection" for k, _ in raw) else DROP_REQUEST
    out = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in raw if k not in drop]
    if not any(k == b"accept-encoding" for k, _ in raw):
        out.append(("accept-encoding", "identity"))
    return out


def has_body(raw: list[tuple[bytes, bytes]]) -> bool:
    """Whether a request carries a body (RFC 9112 6.3: it says so with
    Transfer-Encoding or a Content-Length other than 0). A GET has none, and
    the proxy then skips reading one."""
    return any(k == b"transfer-encoding" or (k == b"content-length" and v.strip() != b"0") for k, v in raw)


def forward_response_headers(raw: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """The backend's headers to send on, names lower-cased as ASGI wants."""
    drop = DROP_RESPONSE | _connection_tokens(raw)
    return [(k.lower(), v) for k, v in raw if k.lower() not in drop]


# ------------------------------------------------------------------ the UI


class UiFiles:
    """catalog.UI_FILES from a directory, re-read when a file's stat changes
    (a ConfigMap update swaps the symlink target: new inode and mtime)."""

    def __init__(self, directory: Path, names: tuple[str, ...] = catalog.UI_FILES) -> None:
        self.directory = directory
        self.names = frozenset(names)
        self._cache: dict[str, tuple[tuple[int, int, int], bytes]] = {}

    def read(self, name: str) -> bytes | None:
        if name not in self.names:
            return None
        path = self.directory / name
        try:
            st = os.stat(path)  # follows symlinks
            key = (st.st_ino, st.st_mtime_ns, st.st_size)
            cached = self._cache.get(name)
            if cached and cached[0] == key:
                return cached[1]
            data = path.read_bytes()
        except OSError:
            return None
        self._cache[name] = (key, data)
        return data


# ------------------------------------------------------------------ /api


async def _one_info(client: HttpClient, url: str, timeout: float, headers: dict[str, str]) -> dict[str, Any]:
    start = time.perf_counter()

    def elapsed_ms() -> float:
        return round((time.perf_counter() - start) * 1000, 1)

    try:
        response = await client.request("GET", url, headers=headers, timeout=timeout)
        ms = elapsed_ms()
        if response.status_code != 200:
            return {"error": f"HTTP {response.status_code}", "ms": ms}
        data = response.json()
        return {
            "service": data.get("service"),
            "version": data.get("version"),
            "cluster": data.get("cluster"),
            "pod": data.get("pod"),
            "node": data.get("node"),
            "servedBy": response.headers.get("x-served-by"),
            "ms": ms,
        }
    except TimeoutError:
        return {"error": "timeout", "ms": elapsed_ms()}
    except aiohttp.ClientError as exc:
        return {"error": f"unreachable ({type(exc).__name__})", "ms": elapsed_ms()}
    except ValueError:
        return {"error": "answer was not JSON", "ms": elapsed_ms()}


# ------------------------------------------------------------------ app


class Gateway:
    """The gateway's endpoints: the proxy (over the pooled client to the
    services), the UI files, /api/status and /api/whoami."""

    def __init__(self, settings: Settings, http: HttpClient, peers: Peers, ui: UiFiles, status: StatusReader) -> None:
        self.settings = settings
        self.http = http
        self.peers = peers
        self.ui = ui
        self.status = status

    async def proxy(self, request: Request) -> Response:
        """Raw path and query in, raw answer out, on the app's pool (the same
        client as the peer calls). One deadline, PEER_TIMEOUT_SECONDS, covers
        the whole exchange: reading the client's body (408 when that is what ran
        out) and the backend's answer (504)."""
        scope = request.scope
        settings = self.settings
        path: str = scope["path"]
        spec = catalog.ROUTED[path[1:].split("/", 1)[0]]
        base = self.peers.base(spec.name)
        # raw_path keeps the client's percent-encoding exactly as sent.
        target = scope.get("raw_path") or path.encode()
        query = scope.get("query_string", b"")
        if query:
            target += b"?" + query
        method = request.method
        client = self.http
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + settings.peer_timeout
        body = b""
        if has_body(scope["headers"]):
            try:
                async with asyncio.timeout_at(deadline_at):
                    body = await request.body()
            except TimeoutError:
                return error_response(408, f"the request body did not arrive within {settings.peer_timeout:g} s", "request_timeout")
        try:
            answer = await client.request(
                method,
                base + target.decode("latin-1"),
                headers=[
                    *forward_request_headers(scope["headers"]),
                    # The service gives up before this (services/common/deadline.py).
                    (deadline.HEADER, deadline.header_value(time.time() + deadline_at - loop.time())),
                ],
                data=body if body or method in ("POST", "PUT", "PATCH") else None,
                timeout=max(deadline_at - loop.time(), 0.001),
                encoded=True,
            )
        except TimeoutError:
            raise peer_timeout(spec.name, settings.peer_timeout) from None
        except aiohttp.ClientResponseError as exc:
            # A 1xx the gateway cannot relay (101), or bytes that are not HTTP.
            what = f"answered {exc.status}, which the gateway does not relay" if exc.status < 200 else "sent an answer that is not valid HTTP"
            raise ApiError(502, f"{spec.name} {what}", "bad_gateway", peer=spec.name) from None
        except aiohttp.ClientError as exc:
            raise peer_unavailable(spec.name, f"is unreachable at {base} ({type(exc).__name__})") from None
        out = Response(content=answer.content, status_code=answer.status_code)
        # Replace Starlette's defaults with the backend's headers, then let
        # Response's own content-length stand (it matches the body; none on
        # 204/304). A HEAD answer has no body: the backend's length is the news.
        headers = forward_response_headers(list(answer.raw_headers))
        if method == "HEAD":
            headers += [(k.lower(), v) for k, v in answer.raw_headers if k.lower() == b"content-length"]
        else:
            headers += [(k, v) for k, v in out.raw_headers if k == b"content-length"]
        out.raw_headers = headers
        return out

    def _ui_response(self, request: Request, name: str) -> Response:
        files = self.ui
        data = files.read(name)
        if data is None:
            return error_response(404, f"UI file {name!r} is not in UI_DIR ({files.directory})", "not_found")
        media = CONTENT_TYPES.get(Path(name).suffix, "application/octet-stream")
        # no-cache: browsers revalidate, so a ConfigMap update shows on reload.
        return Response(data, media_type=media, headers={"cache-control": "no-cache"})

    async def index(self, request: Request) -> Response:
        return self._ui_response(request, "index.html")

    async def ui_file(self, request: Request) -> Response:
        name = request.url.path.lstrip("/")
        return self._ui_response(request, catalog.UI_ALIASES.get(name, name))

    async def api_status(self, request: Request) -> Response:
        reader = self.status
        return JSONResponse(await reader.status(), headers={"cache-control": "no-store"})

    async def api_whoami(self, request: Request) -> Response:
        """Ask each service's /info n times (one after another, as a student
        pressing reload would) and count the answers by cluster/pod."""
        settings = self.settings
        wanted = request.query_params.get("service")
        try:
            n = int(request.query_params.get("n", "6"))
        except ValueError:
            n = 0
        if not 1 <= n <= WHOAMI_MAX:
            reason, limit = ("too_small", 1) if n < 1 else ("too_large", WHOAMI_MAX)
            words = f"must be a whole number from 1 to {WHOAMI_MAX}"
            field = {"field": "n", "reason": reason, "message": words, "limit": limit}
            raise ApiError(422, f"n {words}.", fields=[field])
        routed = [s.name for s in catalog.ROUTED.values()]
        if wanted is not None and wanted not in routed:
            raise ApiError(
                422,
                f"unknown service {wanted!r}; expected one of {', '.join(routed)}",
                fields=[{"field": "service", "reason": "invalid", "message": f"must be one of {', '.join(routed)}"}],
            )
        names = [wanted] if wanted else routed
        client = self.http
        peers = self.peers
        trace = trace_headers(request.headers)

        async def ask(name: str) -> dict[str, Any]:
            answers: list[dict[str, Any]] = []
            for _ in range(n):
                answers.append(await _one_info(client, peers.base(name) + "/info", settings.peer_timeout, trace))
                if answers[-1].get("error") == "timeout":
                    break  # one slow answer is the finding; n of them would hang the page
            counts = Counter(
                f"{a['cluster']}/{a['pod']}" if "error" not in a else f"error: {a['error']}" for a in answers
            )
            versions = Counter(a["version"] for a in answers if "error" not in a)
            urls = ",".join(u + "/info" for u in peers.urls[name])
            return {"service": name, "url": urls, "answers": answers, "counts": dict(counts.most_common()),
                    "versions": dict(versions.most_common())}

        services = await asyncio.gather(*(ask(name) for name in names))
        return JSONResponse({"gateway": settings.info(), "n": n, "services": list(services)})

    def routes(self) -> list[Route]:
        # The proxy first: it is the hot path, and its three prefixes cannot
        # shadow /, /api/*, the UI files or the shared routes (build_app puts a
        # service's routes before /healthz, /readyz, /info, /metrics, /openapi.json).
        out: list[Route] = []
        for prefix in catalog.ROUTED:
            out += [
                Route(f"/{prefix}", self.proxy, methods=PROXY_METHODS, include_in_schema=False),
                Route(f"/{prefix}/{{rest:path}}", self.proxy, methods=PROXY_METHODS, include_in_schema=False),
            ]
        out += [
            Route("/", self.index, methods=["GET", "HEAD"], include_in_schema=False),
            Route("/api/status", self.api_status, methods=["GET"]),
            Route("/api/whoami", self.api_whoami, methods=["GET"]),
        ]
        # One route per UI file (no catch-all: it would shadow /openapi.json).
        for name in (*catalog.UI_FILES, *catalog.UI_ALIASES):
            out.append(Route(f"/{name}", self.ui_file, methods=["GET", "HEAD"], include_in_schema=False, name=f"ui:{name}"))
        return out


def proxied_openapi(own: dict[str, Any]) -> dict[str, Any]:
    """The gateway's /openapi.json: its own routes plus every route it
    proxies, taken from the documents the three services generate (the same
    code builds them, so they cannot drift apart). /internal is not proxied,
    so it is not listed."""
    doc = {**own, "paths": dict(own.get("paths", {}))}
    components = doc.setdefault("components", {}).setdefault("schemas", {})
    for prefix, spec in catalog.ROUTED.items():
        module = importlib.import_module(spec.module)
        service_doc = module.create_app(Settings(service=spec.name)).openapi
        for path, operations in service_doc.get("paths", {}).items():
            if path == f"/{prefix}" or path.startswith(f"/{prefix}/"):
                doc["paths"][path] = operations
        components.update(service_doc.get("components", {}).get("schemas", {}))
    return doc


def create_app(settings: Settings | None = None) -> ServiceApp:
    settings = settings or Settings.from_env(catalog.GATEWAY.name)
    http = http_client(settings)
    status = StatusReader(settings, http)
    gateway = Gateway(settings, http, Peers(settings, http), UiFiles(Path(settings.ui_dir)), status)
    return build_app(
        settings, gateway.routes(), closing=[http, status.clients], openapi=proxied_openapi, password=settings.demo_password
    )
