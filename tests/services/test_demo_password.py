"""The shared demo password (issue 25, item 8: the app is open to everyone;
DEMO_PASSWORD keeps a class's public address to the class). A real
api-gateway in front of the session stack."""

from __future__ import annotations

import base64
from collections.abc import Iterator

import httpx
import pytest

from services import catalog
from services.api_gateway import create_app as create_gateway
from services.common.access import password_of
from services.common.settings import Settings
from services.launcher import LiveServer


@pytest.fixture(scope="module")
def gateway(session_stack: dict[str, str]) -> Iterator[str]:
    peers = {"user-service": session_stack["users"], "movie-service": session_stack["movies"], "booking-service": session_stack["bookings"]}
    settings = Settings(service="api-gateway", cluster="test", pod="gw-0", peers=peers, demo_password="판교-2026")
    with LiveServer(create_gateway(settings)) as gw:
        yield gw.url


@pytest.mark.parametrize("path", ["/", "/users/", "/bookings/", "/api/status", "/openapi.json"])
def test_without_the_password_everything_is_401_with_a_challenge(gateway: str, redis_url: str, path: str) -> None:
    r = httpx.get(gateway + path)
    assert r.status_code == 401, r.text
    assert r.headers["www-authenticate"].startswith("Basic ")
    assert r.json()["error"]["code"] == "password_required"
    assert httpx.get(gateway + path, auth=("class", "wrong")).status_code == 401


def test_with_the_password_the_app_answers(gateway: str, redis_url: str) -> None:
    auth = ("anyone", "판교-2026")
    assert httpx.get(gateway + "/users/", auth=auth).status_code == 200
    r = httpx.post(gateway + "/users/", json={"name": "Kim", "email": "kim@example.com"}, auth=auth)
    assert r.status_code == 201, r.text
    assert httpx.delete(gateway + f"/users/{r.json()['id']}").status_code == 401  # every method


@pytest.mark.parametrize("path", ["/healthz", "/readyz", catalog.METRICS_PATH])
def test_probes_and_metrics_need_no_password(gateway: str, path: str) -> None:
    assert httpx.get(gateway + path).status_code == 200


def test_the_header_parser_refuses_junk() -> None:
    assert password_of(b"Basic " + base64.b64encode(b"a:b:c")) == "b:c"
    for junk in (None, b"", b"Bearer x", b"Basic !!!", b"Basic " + base64.b64encode(b"nocolon"), b"Basic \xff"):
        assert password_of(junk) is None


def test_no_password_means_open(session_stack: dict[str, str], redis_url: str) -> None:
    peers = {"user-service": session_stack["users"], "movie-service": session_stack["movies"], "booking-service": session_stack["bookings"]}
    with LiveServer(create_gateway(Settings(service="api-gateway", cluster="test", pod="gw-1", peers=peers))) as gw:
        assert httpx.get(gw.url + "/users/").status_code == 200
    assert Settings.from_env("api-gateway", {}).demo_password is None
    assert Settings.from_env("api-gateway", {"DEMO_PASSWORD": "x"}).demo_password == "x"
    # A blank secret (the program cannot look inside a Pulumi secret) leaves the app open.
    assert Settings.from_env("api-gateway", {"DEMO_PASSWORD": " \n"}).demo_password is None
