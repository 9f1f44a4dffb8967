"""The fixed API contract of user-, movie- and booking-service, over real
HTTP against real Redis."""

from __future__ import annotations

import json
import re

import httpx
import pytest

from tests.services.conftest import Stack

ISO_UTC = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$")
ID = re.compile(r"^[a-z]_[a-z0-9]{10}$")


def test_create_and_read_user_korean_name_round_trips(stack: Stack) -> None:
    name = "김민지 🎬 Ünïcödé"
    r = stack.http.post(f"{stack.users}/users/", json={"name": name, "email": "minji@example.com"})
    assert r.status_code == 201
    user = r.json()
    assert list(user) == ["id", "name", "email", "createdAt"]
    assert user["name"] == name and user["email"] == "minji@example.com"
    assert ID.match(user["id"]) and ISO_UTC.match(user["createdAt"])
    got = stack.http.get(f"{stack.users}/users/{user['id']}")
    assert got.status_code == 200 and got.json() == user
    assert "김민지".encode() in got.content  # raw UTF-8, not \u escapes


@pytest.mark.parametrize("path", ["/users", "/users/"])
def test_both_slash_forms_work_without_redirect(stack: Stack, path: str) -> None:
    r = stack.http.post(stack.users + path, json={"name": "a", "email": f"a{len(path)}@example.com"})
    assert r.status_code == 201
    listing = stack.http.get(stack.users + path)
    assert listing.status_code == 200
    assert [u["id"] for u in listing.json()["items"]] == [r.json()["id"]]
    for base, p in ((stack.movies, "/movies"), (stack.bookings, "/bookings")):
        for variant in (p, p + "/"):
            assert stack.http.get(base + variant).status_code == 200


def test_duplicate_email_is_409_case_insensitive_and_freed_by_delete(stack: Stack) -> None:
    first = stack.user("Lee", "lee@example.com")
    r = stack.http.post(f"{stack.users}/users", json={"name": "Other", "email": "LEE@Example.com"})
    assert r.status_code == 409
    assert r.json()["error"]["code"] == "email_taken"
    assert "lee@example.com" in r.json()["error"]["message"].lower()
    assert stack.http.delete(f"{stack.users}/users/{first['id']}").status_code == 204
    assert stack.http.get(f"{stack.users}/users/{first['id']}").status_code == 404
    assert stack.http.delete(f"{stack.users}/users/{first['id']}").status_code == 404
    again = stack.http.post(f"{stack.users}/users", json={"name": "Lee 2", "email": "lee@example.com"})
    assert again.status_code == 201


def test_movie_defaults_and_fields(stack: Stack) -> None:
    r = stack.http.post(f"{stack.movies}/movies", json={"title": "올드보이", "genre": "thriller", "year": 2003})
    assert r.status_code == 201
    movie = r.json()
    assert list(movie) == ["id", "title", "genre", "year", "capacity", "availableSeats"]
    assert movie["capacity"] == 100 and movie["availableSeats"] == 100 and movie["title"] == "올드보이"
    assert stack.http.get(f"{stack.movies}/movies/{movie['id']}").json() == movie
    for year in (1888, 2100):
        ok = stack.http.post(f"{stack.movies}/movies", json={"title": "t", "genre": "g", "year": year, "capacity": 1})
        assert ok.status_code == 201 and ok.json()["capacity"] == 1


def test_booking_contract(stack: Stack) -> None:
    user, movie = stack.user(), stack.movie(capacity=5)
    r = stack.book(user["id"], movie["id"], 3)
    assert r.status_code == 201, r.text
    booking = r.json()
    assert list(booking) == ["id", "userId", "movieId", "seats", "status", "createdAt", "userName", "movieTitle"]
    assert booking["userId"] == user["id"] and booking["movieId"] == movie["id"]
    assert booking["userName"] == user["name"] and booking["movieTitle"] == movie["title"]
    assert booking["seats"] == 3 and booking["status"] == "confirmed"
    assert ID.match(booking["id"]) and ISO_UTC.match(booking["createdAt"])
    assert stack.available(movie["id"]) == 2
    assert stack.http.get(f"{stack.bookings}/bookings/{booking['id']}").json() == booking

    sold_out = stack.book(user["id"], movie["id"], 3)
    assert sold_out.status_code == 409
    assert sold_out.json()["error"]["code"] == "sold_out"
    assert "2 available" in sold_out.json()["error"]["message"]
    assert stack.available(movie["id"]) == 2


def test_unknown_user_or_movie_is_404_saying_which(stack: Stack) -> None:
    user, movie = stack.user(), stack.movie(capacity=5)
    r = stack.book("u123", movie["id"])
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "user_not_found", "message": "user u123 not found"}
    r = stack.book(user["id"], "m_nosuchmovi")
    assert r.status_code == 404
    assert r.json()["error"] == {"code": "movie_not_found", "message": "movie m_nosuchmovi not found"}
    assert stack.all_bookings() == []
    assert stack.available(movie["id"]) == 5


@pytest.mark.parametrize("path", ["/users/u_aaaaaaaaaa", "/movies/m_aaaaaaaaaa", "/bookings/b_aaaaaaaaaa",
                                  "/users/index", "/movies/seq", "/bookings/by-user"])
def test_unknown_ids_are_404_json(stack: Stack, path: str) -> None:
    base = {"users": stack.users, "movies": stack.movies, "bookings": stack.bookings}[path.split("/")[1]]
    r = stack.http.get(base + path)
    assert r.status_code == 404
    assert r.json()["error"]["code"].endswith("not_found")


def test_deleted_user_or_movie_takes_no_new_bookings(stack: Stack) -> None:
    """What deletion does to existing bookings: tests/services/test_deletions.py."""
    user, other, movie = stack.user(), stack.user("Park"), stack.movie(capacity=10)
    assert stack.http.delete(f"{stack.users}/users/{user['id']}").status_code == 204
    assert stack.http.delete(f"{stack.movies}/movies/{movie['id']}").status_code == 204
    assert stack.http.get(f"{stack.movies}/movies/{movie['id']}").status_code == 404
    assert stack.http.delete(f"{stack.movies}/movies/{movie['id']}").status_code == 404
    r = stack.book(other["id"], movie["id"], 1)
    assert r.status_code == 404 and r.json()["error"]["code"] == "movie_not_found"
    r = stack.book(user["id"], stack.movie()["id"], 1)
    assert r.status_code == 404 and r.json()["error"]["code"] == "user_not_found"
    assert stack.all_bookings() == []


def test_cancel_gives_seats_back_and_booking_stays_readable(stack: Stack) -> None:
    user, movie = stack.user(), stack.movie(capacity=4)
    booking = stack.book(user["id"], movie["id"], 3).json()
    assert stack.available(movie["id"]) == 1
    r = stack.http.delete(f"{stack.bookings}/bookings/{booking['id']}")
    assert r.status_code == 204 and r.content == b""
    assert stack.available(movie["id"]) == 4
    after = stack.http.get(f"{stack.bookings}/bookings/{booking['id']}").json()
    assert after == {**booking, "status": "cancelled"}
    assert stack.http.delete(f"{stack.bookings}/bookings/b_aaaaaaaaaa").status_code == 404


def test_booking_filters(stack: Stack) -> None:
    u1, u2 = stack.user("A"), stack.user("B")
    m1, m2 = stack.movie(), stack.movie()
    made = {}
    for u in (u1, u2):
        for m in (m1, m2):
            made[(u["id"], m["id"])] = stack.book(u["id"], m["id"]).json()["id"]
    u1, u2, m1, m2 = u1["id"], u2["id"], m1["id"], m2["id"]
    ids = lambda items: [b["id"] for b in items]  # noqa: E731
    assert ids(stack.all_bookings()) == list(made.values())
    assert ids(stack.all_bookings(userId=u1)) == [made[(u1, m1)], made[(u1, m2)]]
    assert ids(stack.all_bookings(movieId=m2)) == [made[(u1, m2)], made[(u2, m2)]]
    assert ids(stack.all_bookings(userId=u2, movieId=m1)) == [made[(u2, m1)]]
    assert stack.all_bookings(userId="u_nobodyhere") == []


def test_bookings_carry_names_read_from_booking_service_alone(redis_url: str) -> None:
    """userName and movieTitle are copied when booking, so reading a booking
    or a list of them calls no other service: it works with both stopped,
    and after the user and the movie are deleted."""
    from tests.services.conftest import start_stack

    servers, urls = start_stack(redis_url)
    user_server, movie_server, booking_server = servers
    try:
        with httpx.Client(timeout=10) as http:
            stack = Stack(http=http, **urls)
            user, movie = stack.user("김민수"), stack.movie(title="기생충")
            booking = stack.book(user["id"], movie["id"], 2).json()
            assert (booking["userName"], booking["movieTitle"]) == ("김민수", "기생충")
            assert http.delete(f"{stack.users}/users/{user['id']}").status_code == 204
            assert http.delete(f"{stack.movies}/movies/{movie['id']}").status_code == 204
            user_server.stop()
            movie_server.stop()
            one = http.get(f"{stack.bookings}/bookings/{booking['id']}")
            # Deleting the user cancels the booking (issue 10) whenever the
            # reconciler reads the deletion feed: the status may have changed.
            assert one.status_code == 200 and one.json()["status"] in {"confirmed", "cancelled"}
            assert {**one.json(), "status": None} == {**booking, "status": None}
            listed = stack.all_bookings()
            assert [(b["userName"], b["movieTitle"]) for b in listed] == [("김민수", "기생충")]
    finally:
        for server in (booking_server, movie_server, user_server):
            server.stop()


def test_bookings_made_before_the_names_existed_read_as_null(stack: Stack, redis_client) -> None:
    user, movie = stack.user(), stack.movie()
    booking = stack.book(user["id"], movie["id"], 1).json()
    key = f"bookings:{booking['id']}"
    old = json.loads(redis_client.get(key))
    del old["userName"], old["movieTitle"]
    redis_client.set(key, json.dumps(old))
    got = stack.http.get(f"{stack.bookings}/bookings/{booking['id']}").json()
    assert got["userName"] is None and got["movieTitle"] is None and got["seats"] == 1
