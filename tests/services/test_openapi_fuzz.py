"""Schemathesis fuzzes each service and the api-gateway from their own
/openapi.json, with a bounded number of examples per operation: no answer
may be a server error (5xx) or differ from the documented schema.

The services run on the session stack (real Redis); the gateway proxies to
them. Peer-dependent 503/504 cannot happen here, so any 5xx is a bug."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import CHECKS as REGISTERED_CHECKS
from schemathesis.checks import load_all_checks

from services import booking_service, movie_service, user_service
from services.api_gateway import create_app as create_gateway
from services.common.settings import Settings
from services.launcher import LiveServer

MAX_EXAMPLES = 20
load_all_checks()
# Every check schemathesis has (`--checks all`, issue 25): status codes,
# content types, headers and schemas as documented, bad input refused,
# valid input accepted, the Allow header of a 405...
CHECKS = REGISTERED_CHECKS.get_all()
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same examples on every run: a CI failure reproduces
    suppress_health_check=list(HealthCheck),
)


@pytest.fixture(scope="module")
def gateway_url(session_stack: dict[str, str]) -> Iterator[str]:
    peers = {"user-service": session_stack["users"], "movie-service": session_stack["movies"], "booking-service": session_stack["bookings"]}
    with LiveServer(create_gateway(Settings(service="api-gateway", cluster="test", pod="gw-0", peers=peers))) as gw:
        yield gw.url


def _schema(app_factory: object, service: str) -> schemathesis.BaseSchema:
    """The document the service itself serves (the same code builds it), so
    the examples are known when pytest collects the tests."""
    app = app_factory(Settings(service=service))  # type: ignore[operator]
    return schemathesis.openapi.from_dict(app.openapi)


users = _schema(user_service.create_app, "user-service")
movies = _schema(movie_service.create_app, "movie-service")
bookings = _schema(booking_service.create_app, "booking-service")
gateway = _schema(create_gateway, "api-gateway")


@users.parametrize()
@FUZZ
def test_user_service(case: schemathesis.Case, session_stack: dict[str, str], redis_url: str) -> None:
    case.call_and_validate(base_url=session_stack["users"], checks=CHECKS)


@movies.parametrize()
@FUZZ
def test_movie_service(case: schemathesis.Case, session_stack: dict[str, str], redis_url: str) -> None:
    case.call_and_validate(base_url=session_stack["movies"], checks=CHECKS)


@bookings.parametrize()
@FUZZ
def test_booking_service(case: schemathesis.Case, session_stack: dict[str, str], redis_url: str) -> None:
    case.call_and_validate(base_url=session_stack["bookings"], checks=CHECKS)


@gateway.parametrize()
@FUZZ
def test_api_gateway(case: schemathesis.Case, gateway_url: str, redis_url: str) -> None:
    case.call_and_validate(base_url=gateway_url, checks=CHECKS)


def test_served_documents_are_the_fuzzed_ones(session_stack: dict[str, str], gateway_url: str) -> None:
    """What the running servers serve is what was fuzzed."""
    import httpx

    for url, schema in ((session_stack["users"], users), (session_stack["movies"], movies), (session_stack["bookings"], bookings), (gateway_url, gateway)):
        assert httpx.get(url + "/openapi.json").json() == schema.raw_schema
