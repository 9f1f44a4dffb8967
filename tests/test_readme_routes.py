"""docs/api.md's "경로 전체" table lists every route the services and the
api-gateway answer, and nothing they do not: a route added without
documentation, or documentation left behind by a removed route, fails here.
Every route the README itself names (`GET /movies/` …) is served too, and the
README links the API document."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from starlette.routing import Route

from services import catalog
from services.common.settings import Settings

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
API = ROOT / "docs" / "api.md"
DOCUMENTED = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")


def same(path: str) -> str:
    """A collection answers at `/users` and `/users/`: one route to document. A query string is not part of the route."""
    return path.split("?")[0].rstrip("/") or "/"


def served_routes() -> set[tuple[str, str]]:
    """(method, path) of every app; the gateway's proxy routes are the
    services' own routes."""
    out: set[tuple[str, str]] = set()
    for spec in catalog.SERVICES.values():
        app = importlib.import_module(spec.module).create_app(Settings(service=spec.name))
        for route in app.routes:
            if not isinstance(route, Route) or route.endpoint.__name__ == "proxy":
                continue
            for method in (route.methods or set()) - {"HEAD"}:
                out.add((method, same(route.path)))
    return out


def routes_in(text: str) -> set[tuple[str, str]]:
    return {(method, same(path)) for method, path in DOCUMENTED.findall(text)}


def documented_routes() -> set[tuple[str, str]]:
    text = API.read_text(encoding="utf-8")
    start = text.index("## 경로 전체")
    return routes_in(text[start : text.index("\n## ", start + 1)])


def test_every_route_is_in_the_api_document_and_no_other() -> None:
    served, documented = served_routes(), documented_routes()
    assert ("DELETE", "/movies/{id}") in served
    assert served - documented == set(), "routes missing from docs/api.md"
    assert documented - served == set(), "docs/api.md lists routes nothing serves"


def test_every_route_the_readme_names_is_served() -> None:
    named = routes_in(README.read_text(encoding="utf-8"))
    assert ("GET", "/movies") in named  # the README does name routes
    assert named - served_routes() == set(), "README names routes nothing serves"
    assert "(docs/api.md)" in README.read_text(encoding="utf-8")
