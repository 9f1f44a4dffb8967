"""services/common/responses.py: the orjson-encoded JSONResponse gives the
same bytes as Starlette's own for what the services answer."""

from __future__ import annotations

import pytest
from starlette.responses import JSONResponse as StarletteJSONResponse

from services.common.responses import JSONResponse, loads

SAMPLES = [
    {"id": "m_k3x9m2p7qa", "title": "기생충", "genre": "drama", "year": 2019, "capacity": 100, "availableSeats": 0},
    {"items": [{"a": 1, "b": None, "c": True, "d": False, "e": 1.5}], "next": None},
    {"error": {"code": "validation_error", "message": 'title "x" \\ </script> \u2028 \x00 tab\t', "fields": [{"field": "year", "limit": 2100}]}},
    {"movieId": "m_1", "held": {"b_1": 2, "b_2": 10}},
    {"emoji": "🎬", "z": [], "y": {}, "big": 2**53 + 1, "neg": -7},
    [1, "two", [3.25, None]],
    {1: "int keys become strings", "s": "t"},
]


@pytest.mark.parametrize("content", SAMPLES)
def test_same_bytes_as_starlette(content: object) -> None:
    assert JSONResponse(content).body == StarletteJSONResponse(content).body
    assert loads(JSONResponse(content).body) == loads(StarletteJSONResponse(content).body)


def test_media_type_and_status_are_starlette_s() -> None:
    response = JSONResponse({"a": 1}, status_code=201, headers={"x-a": "b"})
    assert response.status_code == 201
    assert response.headers["content-type"] == "application/json"
    assert response.headers["x-a"] == "b"
