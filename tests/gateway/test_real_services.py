"""The gateway in front of the real services, as `theater local` runs them:
the API contract holds through the proxy, and the headers that matter reach
the services (Idempotency-Key: a retried booking is not booked twice)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import httpx
import pytest


@pytest.fixture
def gw(local_app: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=local_app, timeout=10) as client:
        yield client


def test_contract_through_the_gateway(gw: httpx.Client) -> None:
    email = f"minsu-{uuid.uuid4().hex[:8]}@example.com"
    r = gw.post("/users", json={"name": "김민수 🎬", "email": email})
    assert r.status_code == 201, r.text
    user = r.json()
    assert user["name"] == "김민수 🎬"  # Korean round-trips through the proxy
    served = r.headers.get_list("x-served-by")
    assert served[0].startswith("user-service@local/") and served[-1].startswith("api-gateway@local/")

    dup = gw.post("/users/", json={"name": "다른 사람", "email": email})
    assert dup.status_code == 409 and dup.json()["error"]["code"] == "email_taken"

    movie = gw.post("/movies/", json={"title": "기생충", "genre": "드라마", "year": 2019, "capacity": 5}).json()
    assert movie["availableSeats"] == 5

    key = f"idem-{uuid.uuid4()}"
    body = {"userId": user["id"], "movieId": movie["id"], "seats": 2}
    first = gw.post("/bookings/", json=body, headers={"Idempotency-Key": key, "x-request-id": "trace-1"})
    again = gw.post("/bookings/", json=body, headers={"Idempotency-Key": key})
    assert first.status_code == 201 and again.status_code == 201
    assert again.json()["id"] == first.json()["id"]
    assert gw.get(f"/movies/{movie['id']}").json()["availableSeats"] == 3  # booked once, not twice

    listed = gw.get("/bookings", params={"movieId": movie["id"], "limit": "10"}).json()
    assert [b["id"] for b in listed["items"]] == [first.json()["id"]]

    sold_out = gw.post("/bookings/", json={**body, "seats": 4})
    assert sold_out.status_code == 409

    assert gw.delete(f"/bookings/{first.json()['id']}").status_code == 204
    assert gw.get(f"/movies/{movie['id']}").json()["availableSeats"] == 5
    assert gw.get("/users/nope").status_code == 404
    bad = gw.post("/movies/", content=b"{not json", headers={"content-type": "application/json"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "malformed_json"


def test_status_and_whoami_in_the_local_run(gw: httpx.Client) -> None:
    status = gw.get("/api/status").json()
    clusters = {c["name"]: c for c in status["clusters"]}
    assert clusters["ctx1"]["reachable"] is False and clusters["ctx2"]["reason"] == "not_configured"
    local = {s["service"]: s for s in status["local"]}
    assert set(local) == {"api-gateway", "user-service", "movie-service", "booking-service"}
    assert all(s["healthy"] and s["ready"] for s in local.values()), local

    who = gw.get("/api/whoami", params={"n": 3}).json()
    for svc in who["services"]:
        assert svc["counts"] == {f"local/{svc['service']}-local": 3}, svc


def test_gateway_does_not_expose_internal_endpoints(gw: httpx.Client) -> None:
    """Seat reservations are booking-service's to make: a browser going
    through the gateway cannot hold or free seats."""
    movie = gw.post("/movies/", json={"title": "내부", "genre": "드라마", "year": 2020, "capacity": 4}).json()
    for method, path in [
        ("POST", f"/internal/movies/{movie['id']}/reservations"),
        ("DELETE", f"/internal/movies/{movie['id']}/reservations/b_aaaaaaaaaa"),
        ("POST", f"/movies/{movie['id']}/reservations"),
    ]:
        r = gw.request(method, path, json={"bookingId": "b_aaaaaaaaaa", "seats": 4})
        assert r.status_code in (404, 405), (method, path, r.status_code, r.text)
        assert "error" in r.json()
    assert gw.get(f"/movies/{movie['id']}").json()["availableSeats"] == 4
