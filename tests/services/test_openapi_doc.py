"""The OpenAPI documents say what the services accept (issue 11)."""

from __future__ import annotations

import re

import pytest

from services import booking_service, movie_service, user_service
from services.common.settings import Settings

DOCS = {
    name: module.create_app(Settings(service=name)).openapi
    for name, module in (("user-service", user_service), ("movie-service", movie_service), ("booking-service", booking_service))
}


def operations(doc: dict) -> list[tuple[str, str, dict]]:
    return [(path, method, op) for path, ops in doc["paths"].items() for method, op in ops.items()]


@pytest.mark.parametrize("name", DOCS)
def test_every_path_parameter_is_declared(name: str) -> None:
    for path, method, op in operations(DOCS[name]):
        wanted = set(re.findall(r"{(\w+)}", path))
        declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path" and p["required"]}
        assert wanted == declared, (path, method)


@pytest.mark.parametrize("name", DOCS)
def test_request_bodies_are_required(name: str) -> None:
    bodies = [(path, op) for path, _, op in operations(DOCS[name]) if "requestBody" in op]
    assert bodies
    assert all(op["requestBody"]["required"] is True for _, op in bodies)


@pytest.mark.parametrize("name", DOCS)
def test_cursor_is_documented_as_digits(name: str) -> None:
    cursors = [p for _, _, op in operations(DOCS[name]) for p in op.get("parameters", []) if p["name"] == "cursor"]
    assert cursors
    for param in cursors:
        pattern = param["schema"]["pattern"]
        assert re.search(pattern, "123") and not re.search(pattern, "abc") and not re.search(pattern, "-5")
