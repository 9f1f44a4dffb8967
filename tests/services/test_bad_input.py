"""Bad requests get the documented 4xx JSON error, never a 500."""

from __future__ import annotations

import json

import pytest

from tests.services.conftest import Stack

USER = {"name": "Kim", "email": "kim@example.com"}
MOVIE = {"title": "Parasite", "genre": "drama", "year": 2019, "capacity": 10}
BOOKING = {"userId": "u_aaaaaaaaaa", "movieId": "m_aaaaaaaaaa", "seats": 1}


def with_(base: dict, **changes: object) -> dict:
    out = {**base, **changes}
    return {k: v for k, v in out.items() if v is not ...}


# (service, body or raw bytes, status, code, bad field or None)
CASES = [
    ("users", b'{"name": "Kim", ', 400, "malformed_json", None),
    ("users", b"", 400, "malformed_json", None),
    ("users", b"\xff\xfe", 400, "malformed_json", None),
    ("users", b"[1, 2]", 400, "not_an_object", None),
    ("users", b'"just a string"', 400, "not_an_object", None),
    ("users", b"null", 400, "not_an_object", None),
    ("users", with_(USER, admin=True), 422, "validation_error", "admin"),
    ("users", with_(USER, email=...), 422, "validation_error", "email"),
    ("users", with_(USER, name=...), 422, "validation_error", "name"),
    ("users", with_(USER, name=""), 422, "validation_error", "name"),
    ("users", with_(USER, name="   "), 422, "validation_error", "name"),
    ("users", with_(USER, name="가" * 101), 422, "validation_error", "name"),
    ("users", with_(USER, name=42), 422, "validation_error", "name"),
    ("users", with_(USER, email="not-an-email"), 422, "validation_error", "email"),
    ("users", with_(USER, email="a@b"), 422, "validation_error", "email"),
    ("users", with_(USER, email="a b@example.com"), 422, "validation_error", "email"),
    ("users", with_(USER, email="a" * 250 + "@example.com"), 422, "validation_error", "email"),
    ("movies", with_(MOVIE, year=1887), 422, "validation_error", "year"),
    ("movies", with_(MOVIE, year=2101), 422, "validation_error", "year"),
    ("movies", with_(MOVIE, year="2019"), 422, "validation_error", "year"),
    ("movies", with_(MOVIE, year=2019.5), 422, "validation_error", "year"),
    ("movies", with_(MOVIE, year=True), 422, "validation_error", "year"),
    ("movies", with_(MOVIE, capacity=0), 422, "validation_error", "capacity"),
    ("movies", with_(MOVIE, capacity=10001), 422, "validation_error", "capacity"),
    ("movies", with_(MOVIE, capacity=False), 422, "validation_error", "capacity"),
    ("movies", with_(MOVIE, capacity=None), 422, "validation_error", "capacity"),
    ("movies", with_(MOVIE, title="x" * 201), 422, "validation_error", "title"),
    ("movies", with_(MOVIE, genre="x" * 51), 422, "validation_error", "genre"),
    ("movies", with_(MOVIE, genre=""), 422, "validation_error", "genre"),
    ("movies", with_(MOVIE, title=...), 422, "validation_error", "title"),
    ("movies", with_(MOVIE, availableSeats=5), 422, "validation_error", "availableSeats"),
    ("movies", b"[]", 400, "not_an_object", None),
    ("bookings", with_(BOOKING, seats=0), 422, "validation_error", "seats"),
    ("bookings", with_(BOOKING, seats=11), 422, "validation_error", "seats"),
    ("bookings", with_(BOOKING, seats=True), 422, "validation_error", "seats"),
    ("bookings", with_(BOOKING, seats="2"), 422, "validation_error", "seats"),
    ("bookings", with_(BOOKING, seats=...), 422, "validation_error", "seats"),
    ("bookings", with_(BOOKING, userId=7), 422, "validation_error", "userId"),
    ("bookings", with_(BOOKING, userId="../movies"), 422, "validation_error", "userId"),
    ("bookings", with_(BOOKING, movieId=""), 422, "validation_error", "movieId"),
    ("bookings", with_(BOOKING, status="confirmed"), 422, "validation_error", "status"),
    ("bookings", with_(BOOKING, seats=7.5), 422, "validation_error", "seats"),
    ("bookings", b"{bad json", 400, "malformed_json", None),
    # Hostile JSON: 400 or 422, never a 500 (RecursionError, int conversion limit).
    ("users", b'{"name": ' + b"[" * 3000 + b"]" * 3000 + b"}", 400, "malformed_json", None),
    ("movies", b'{"a": ' + b'{"a": ' * 5000 + b"1" + b"}" * 5001, 400, "malformed_json", None),
    ("movies", b'{"title": "t", "genre": "g", "capacity": 5, "year": ' + b"9" * 5000 + b"}", 400, "malformed_json", None),
    ("bookings", b'{"userId": "u", "movieId": "m", "seats": ' + b"7" * 5000 + b"}", 400, "malformed_json", None),
    ("bookings", b'{"userId": "u", "movieId": "m", "seats": ' + b"7" * 4000 + b"}", 422, "validation_error", "seats"),
    ("movies", b'{"title": "t", "genre": "g", "year": 1e400}', 422, "validation_error", "year"),
    ("movies", b'{"title": "t", "genre": "g", "year": -1e20}', 422, "validation_error", "year"),
    ("bookings", b"[]", 400, "not_an_object", None),
]


def _id(case: tuple) -> str:
    service, body, status, code, field = case
    return f"{service}-{status}-{field or code}-{abs(hash(repr(body))) % 1000}"


@pytest.mark.parametrize("case", CASES, ids=[_id(c) for c in CASES])
def test_bad_body(stack: Stack, case: tuple) -> None:
    service, body, status, code, field = case
    base = getattr(stack, service)
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = stack.http.post(f"{base}/{service}/", content=content, headers={"content-type": "application/json"})
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    error = r.json()["error"]
    assert error["code"] == code and error["message"]
    if field is not None:
        assert field in [f["field"] for f in error["fields"]]
    # Nothing was stored.
    assert stack.http.get(f"{base}/{service}").json()["items"] == []


def test_whole_number_written_as_float_is_an_integer(stack: Stack) -> None:
    """JSON Schema's "integer" accepts 7.0, so the service does too (it used
    to pass the OpenAPI document and get 422)."""
    r = stack.http.post(f"{stack.movies}/movies/", json={**MOVIE, "year": 2019.0, "capacity": 7.0})
    assert r.status_code == 201, r.text
    assert r.json()["year"] == 2019 and r.json()["capacity"] == 7
    assert isinstance(r.json()["year"], int)


@pytest.mark.parametrize(
    "service, body, field, sentence",
    [
        ("bookings", with_(BOOKING, userId="../movies"), "userId", "userId must be 1 to 64 letters, digits, '_' or '-'."),
        ("users", with_(USER, email="a b@example.com"), "email", "email must be an email address such as kim@example.com."),
        ("movies", with_(MOVIE, year=2101), "year", "year must be at most 2100."),
        ("movies", with_(MOVIE, title=...), "title", "title is required."),
        ("users", with_(USER, name=""), "name", "name must not be empty."),
        ("users", with_(USER, admin=True), "admin", "admin is not a field of this request."),
        ("bookings", with_(BOOKING, seats="2"), "seats", "seats must be a whole number."),
    ],
)
def test_validation_errors_read_as_sentences(stack: Stack, service: str, body: dict, field: str, sentence: str) -> None:
    r = stack.http.post(f"{getattr(stack, service)}/{service}/", json=body)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["message"] == sentence
    (entry,) = error["fields"]
    assert entry["field"] == field and error["message"] == f"{field} {entry['message']}."
    assert entry["reason"]  # what the web UI translates
    for text in (error["message"], entry["message"]):
        assert not any(c in text for c in "^$[]{}\\"), text  # no raw regular expression


def test_all_bad_fields_are_listed(stack: Stack) -> None:
    r = stack.http.post(f"{stack.movies}/movies", json={"title": "", "year": 1500, "extra": 1})
    assert r.status_code == 422
    fields = {f["field"] for f in r.json()["error"]["fields"]}
    assert fields == {"title", "genre", "year", "extra"}


@pytest.mark.parametrize("service", ["users", "movies", "bookings"])
def test_body_over_64_kib_is_413_json(stack: Stack, service: str) -> None:
    base = getattr(stack, service)
    exactly = b'{"name": "' + b"a" * (64 * 1024 - 12) + b'"}'
    assert len(exactly) == 64 * 1024
    r = stack.http.post(f"{base}/{service}/", content=exactly, headers={"content-type": "application/json"})
    assert r.status_code == 422  # at the limit: read and validated
    r = stack.http.post(f"{base}/{service}/", content=exactly + b" ", headers={"content-type": "application/json"})
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: counted as it arrives
        for _ in range(65):
            yield b"x" * 1024

    r = stack.http.post(f"{base}/{service}/", content=chunks())
    assert r.status_code == 413 and r.json()["error"]["code"] == "payload_too_large"


@pytest.mark.parametrize("service", ["users", "movies", "bookings"])
@pytest.mark.parametrize(
    "query, field",
    [
        ("limit=0", "limit"),
        ("limit=501", "limit"),
        ("limit=-1", "limit"),
        ("limit=abc", "limit"),
        ("limit=1.5", "limit"),
        ("limit=", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=-5", "cursor"),
        ("cursor=1e9", "cursor"),
    ],
)
def test_bad_limit_or_cursor_is_422(stack: Stack, service: str, query: str, field: str) -> None:
    r = stack.http.get(f"{getattr(stack, service)}/{service}/?{query}")
    assert r.status_code == 422, r.text
    assert [f["field"] for f in r.json()["error"]["fields"]] == [field]


def test_bad_booking_filter_is_422(stack: Stack) -> None:
    r = stack.http.get(f"{stack.bookings}/bookings?userId=a:b&movieId=ok")
    assert r.status_code == 422
    assert [f["field"] for f in r.json()["error"]["fields"]] == ["userId"]


def test_wrong_method_and_unknown_route_are_json(stack: Stack) -> None:
    r = stack.http.put(f"{stack.users}/users/", json={})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    r = stack.http.get(f"{stack.users}/nothing-here")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"


def test_bad_idempotency_key_is_422(stack: Stack) -> None:
    user, movie = stack.user(), stack.movie()
    r = stack.book(user["id"], movie["id"], 1, headers={"Idempotency-Key": "x" * 256})
    assert r.status_code == 422
    assert r.json()["error"]["fields"][0]["field"] == "Idempotency-Key"
    assert stack.all_bookings() == [] and stack.available(movie["id"]) == 100


@pytest.mark.parametrize(
    "service, path, methods",
    [
        ("users", "/users/", {"GET", "HEAD", "POST"}),
        ("users", "/users", {"GET", "HEAD", "POST"}),
        ("movies", "/movies/m_aaaaaaaaaa", {"GET", "HEAD", "DELETE"}),
        ("bookings", "/bookings/b_aaaaaaaaaa", {"GET", "HEAD", "DELETE"}),
    ],
)
def test_405_lists_every_allowed_method(stack: Stack, service: str, path: str, methods: set[str]) -> None:
    r = stack.http.request("PATCH", getattr(stack, service) + path, json={})
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"
    assert len(r.headers.get_list("allow")) == 1, r.headers.get_list("allow")  # issue 25: there were two
    assert {m.strip() for m in r.headers["allow"].split(",")} == methods


@pytest.mark.parametrize("path", ["/bookings/%0A", "/bookings%0A", "/bookings/%0D%0A", "/bookings/%00", "/bookings/b_x%0A"])
def test_control_characters_in_the_path_are_404(stack: Stack, path: str) -> None:
    """Starlette's route patterns end in `$`, which matches before a final
    newline: /bookings/%0A used to be served as the list."""
    r = stack.http.get(stack.bookings + path)
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "not_found"


def test_unknown_methods_fold_into_one_metric_label(stack: Stack) -> None:
    def lines() -> list[str]:
        return stack.http.get(f"{stack.users}/metrics").text.splitlines()

    stack.http.get(f"{stack.users}/users/")
    before = len(lines())
    methods = [f"X{i}WEIRD" for i in range(40)] + ["PROPFIND", "MKCOL", "LOCK", "TRACE", "CONNECTX", "PURGE", "SEARCH"]
    for method in methods:
        for path in ("/users/", "/users/u_x", "/nothing"):
            stack.http.request(method, stack.users + path)
    after = lines()
    assert not any("X1WEIRD" in line or "PROPFIND" in line for line in after)
    assert any('method="other"' in line for line in after)
    # "other" on 3 routes: 3 counters + 3 histograms (~17 lines each), where
    # one label value per method would add 47 x 3 x ~17 = ~2,400 lines.
    assert len(after) - before < 100, len(after) - before

# Messages a person reads: the rule in words, never a regex or pydantic's wording.
RAW = ("^", "$", "[", "\\", "String should", "Input should", "Value error", "Field required")
REASONS = {"required", "empty", "too_short", "too_long", "too_small", "too_large", "not_integer", "not_text", "bad_format", "unknown_field", "invalid"}


@pytest.mark.parametrize("case", [c for c in CASES if c[2] == 422], ids=[_id(c) for c in CASES if c[2] == 422])
def test_field_errors_state_the_rule_in_words(stack: Stack, case: tuple) -> None:
    service, body, _, _, field = case
    content = body if isinstance(body, bytes) else json.dumps(body).encode()
    r = stack.http.post(f"{getattr(stack, service)}/{service}/", content=content, headers={"content-type": "application/json"})
    error = r.json()["error"]
    for f in error["fields"]:
        assert f["reason"] in REASONS, f
        assert not any(raw in f["message"] for raw in RAW), f
        assert f"{f['field']} {f['message']}" in error["message"]
    assert not any(raw in error["message"] for raw in RAW), error["message"]


@pytest.mark.parametrize(
    "service, body, expected",
    [
        ("users", with_(USER, email=...), {"field": "email", "reason": "required", "message": "is required"}),
        ("users", with_(USER, email=""), {"field": "email", "reason": "empty", "message": "must not be empty"}),
        ("users", with_(USER, name="   "), {"field": "name", "reason": "empty", "message": "must not be empty"}),
        (
            "users",
            with_(USER, email="not-an-email"),
            {"field": "email", "reason": "bad_format", "message": "must be an email address such as kim@example.com"},
        ),
        (
            "users",
            with_(USER, name="가" * 101),
            {"field": "name", "reason": "too_long", "message": "must be at most 100 characters long", "limit": 100},
        ),
        ("movies", with_(MOVIE, year="2019"), {"field": "year", "reason": "not_integer", "message": "must be a whole number"}),
        ("movies", with_(MOVIE, capacity=0), {"field": "capacity", "reason": "too_small", "message": "must be at least 1", "limit": 1}),
        ("bookings", with_(BOOKING, seats=11), {"field": "seats", "reason": "too_large", "message": "must be at most 10", "limit": 10}),
        (
            "bookings",
            with_(BOOKING, userId="../movies"),
            {"field": "userId", "reason": "bad_format", "message": "must be 1 to 64 letters, digits, '_' or '-'"},
        ),
        ("bookings", with_(BOOKING, status="x"), {"field": "status", "reason": "unknown_field", "message": "is not a field of this request"}),
    ],
)
def test_field_error_wording(stack: Stack, service: str, body: dict, expected: dict) -> None:
    r = stack.http.post(f"{getattr(stack, service)}/{service}/", json=body)
    assert r.status_code == 422
    assert r.json()["error"]["fields"] == [expected]


def test_every_pattern_field_says_its_rule_in_words() -> None:
    """body.PATTERN_MEANINGS words every pattern a request model uses."""
    from services.booking_service import BookingIn
    from services.common.body import PATTERN_MEANINGS
    from services.movie_service import MovieIn, ReservationIn
    from services.user_service import UserIn

    for model in (UserIn, MovieIn, BookingIn, ReservationIn):
        for name, info in model.model_fields.items():
            for m in info.metadata:
                pattern = getattr(m, "pattern", None)
                if pattern:
                    assert pattern in PATTERN_MEANINGS, f"{model.__name__}.{name}: no words for {pattern}"


@pytest.mark.parametrize(
    "variant",
    [
        "kim\u200b@example.com",  # zero-width space
        "\ufeffkim@example.com",  # BOM
        "ki\u00adm@example.com",  # soft hyphen
        "ｋｉｍ@example.com",  # full-width letters
        "KIM@EXAMPLE.COM",
    ],
)
def test_emails_that_only_look_different_are_the_same_address(stack: Stack, variant: str) -> None:
    """Issue 25, item 7: an email differing only by a zero-width space or a
    full-width letter created a second user."""
    first = stack.http.post(f"{stack.users}/users/", json={"name": "Kim", "email": "kim@example.com"})
    assert first.status_code == 201, first.text
    again = stack.http.post(f"{stack.users}/users/", json={"name": "Kim2", "email": variant})
    assert again.status_code == 409, again.text
    assert again.json()["error"]["code"] == "email_taken"


@pytest.mark.parametrize("field", ["name", "email"])
@pytest.mark.parametrize("char", ["\x00", "\x1b", "\n", "\x7f", "\x85"])
def test_control_characters_in_names_and_emails_are_refused(stack: Stack, field: str, char: str) -> None:
    body = {"name": "Kim", "email": "kim@example.com"}
    body[field] = ("Ki" + char + "m") if field == "name" else f"ki{char}m@example.com"
    r = stack.http.post(f"{stack.users}/users/", json=body)
    assert r.status_code == 422, r.text
    (error,) = r.json()["error"]["fields"]
    assert error["field"] == field and error["reason"] == "bad_format", r.text
    assert stack.http.get(f"{stack.users}/users/").json()["items"] == []
