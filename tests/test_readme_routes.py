"""README section 3.3 lists every route the services and the api-gateway
answer, and nothing they do not: a route added without documentation, or
documentation left behind by a removed route, fails here."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

from starlette.routing import Route

from services import catalog
from services.common.settings import Settings

README = Path(__file__).resolve().parents[1] / "README.md"
DOCUMENTED = re.compile(r"`(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`")


def same(path: str) -> str:
    """A collection answers at `/users` and `/users/`: one route to document."""
    return path.rstrip("/") or "/"


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


def documented_routes() -> set[tuple[str, str]]:
    text = README.read_text(encoding="utf-8")
    start = text.index("### 3.3 경로 전체")
    section = text[start : text.index("\n### ", start + 1)]
    return {(method, same(path)) for method, path in DOCUMENTED.findall(section)}


def test_every_route_is_in_the_readme_and_no_other() -> None:
    served, documented = served_routes(), documented_routes()
    assert ("DELETE", "/movies/{id}") in served
    assert served - documented == set(), "routes missing from README 3.3"
    assert documented - served == set(), "README 3.3 lists routes nothing serves"
