"""Cursor pagination: every record exactly once, in creation order, with
a cost that depends on the page, not on the collection."""

from __future__ import annotations

import pytest
import redis

from tests.services.conftest import Stack


def walk(stack: Stack, url: str, limit: int, **params: str) -> tuple[list[str], int]:
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        query = {"limit": str(limit), **params, **({"cursor": cursor} if cursor else {})}
        r = stack.http.get(url, params=query)
        assert r.status_code == 200, r.text
        body = r.json()
        assert set(body) == {"items", "next"}
        assert len(body["items"]) <= limit
        pages += 1
        ids += [item["id"] for item in body["items"]]
        cursor = body["next"]
        if cursor is None:
            return ids, pages
        assert isinstance(cursor, str) and body["items"]


@pytest.mark.parametrize("limit", [1, 7, 23, 500])
def test_walk_all_users(stack: Stack, limit: int) -> None:
    made = [stack.user(f"user{i}")["id"] for i in range(23)]
    ids, pages = walk(stack, f"{stack.users}/users/", limit)
    assert ids == made  # no duplicates, none missing, oldest first
    assert pages == max(1, -(-23 // limit))


def test_default_limit_is_50_and_deletes_leave_no_gaps(stack: Stack) -> None:
    made = [stack.movie(capacity=1, title=f"m{i}")["id"] for i in range(53)]
    first = stack.http.get(f"{stack.movies}/movies").json()
    assert len(first["items"]) == 50 and first["next"]
    for movie_id in made[10:20]:
        assert stack.http.delete(f"{stack.movies}/movies/{movie_id}").status_code == 204
    ids, _ = walk(stack, f"{stack.movies}/movies", 6)
    assert ids == made[:10] + made[20:]


def test_walk_filtered_bookings(stack: Stack) -> None:
    u1, u2, movie = stack.user("a")["id"], stack.user("b")["id"], stack.movie(capacity=100)["id"]
    mine = []
    for i in range(15):
        who = u1 if i % 3 else u2
        booking = stack.book(who, movie).json()["id"]
        if who == u1:
            mine.append(booking)
    ids, pages = walk(stack, f"{stack.bookings}/bookings", 4, userId=u1)
    assert ids == mine and pages == 3
    ids, _ = walk(stack, f"{stack.bookings}/bookings", 4, movieId=movie)
    assert len(ids) == 15 and len(set(ids)) == 15


def test_list_does_not_scan(stack: Stack, redis_client: redis.Redis) -> None:
    """A page is one ZRANGE ... LIMIT and one MGET: never KEYS or SCAN."""
    for i in range(12):
        stack.user(f"u{i}")
    redis_client.config_resetstat()
    r = stack.http.get(f"{stack.users}/users?limit=5")
    assert r.status_code == 200 and len(r.json()["items"]) == 5
    stats = redis_client.info("commandstats")
    used = {name.removeprefix("cmdstat_") for name in stats}
    assert "keys" not in used and "scan" not in used
    assert stats["cmdstat_zrange"]["calls"] == 1 and stats["cmdstat_mget"]["calls"] == 1


def test_bookings_newest_first(stack: Stack, redis_client: redis.Redis) -> None:
    """`order=newest` walks the same bookings backwards through the same
    cursor (the web page shows the newest first), with a user filter too,
    and a page still costs one ZRANGE ... LIMIT and one MGET."""
    u1, u2, movie = stack.user("a")["id"], stack.user("b")["id"], stack.movie(capacity=100)["id"]
    made, mine = [], []
    for i in range(11):
        who = u1 if i % 3 else u2
        made.append(stack.book(who, movie).json()["id"])
        if who == u1:
            mine.append(made[-1])
    url = f"{stack.bookings}/bookings"
    ids, pages = walk(stack, url, 4, order="newest", movieId=movie)
    assert ids == made[::-1] and pages == 3
    ids, _ = walk(stack, url, 3, order="newest", userId=u1)
    assert ids == mine[::-1]
    assert walk(stack, url, 5, order="oldest", movieId=movie)[0] == made  # the default spelled out
    redis_client.config_resetstat()
    r = stack.http.get(url, params={"order": "newest", "limit": "2", "movieId": movie})
    assert [b["id"] for b in r.json()["items"]] == made[:-3:-1]
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_zrange"]["calls"] == 1 and stats["cmdstat_mget"]["calls"] == 1
    bad = stack.http.get(url, params={"order": "sideways"})
    assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "order"


def test_users_and_movies_newest_first(stack: Stack, redis_client: redis.Redis) -> None:
    """The web page lists users and movies newest first, so one made after
    the first 200 still shows: `order=newest` walks them backwards, skips
    deleted ones without a gap, and a movie page still carries its seats
    in the same single script (one ZRANGE, one MGET)."""
    users = [stack.user(f"n{i}")["id"] for i in range(9)]
    ids, pages = walk(stack, f"{stack.users}/users/", 4, order="newest")
    assert ids == users[::-1] and pages == 3
    movies = [stack.movie(capacity=i + 1, title=f"nm{i}")["id"] for i in range(7)]
    for movie_id in movies[2:4]:
        assert stack.http.delete(f"{stack.movies}/movies/{movie_id}").status_code == 204
    kept = movies[:2] + movies[4:]
    ids, _ = walk(stack, f"{stack.movies}/movies", 2, order="newest")
    assert ids == kept[::-1]
    redis_client.config_resetstat()
    r = stack.http.get(f"{stack.movies}/movies", params={"order": "newest", "limit": "2"})
    first = r.json()["items"]
    assert [m["id"] for m in first] == kept[:-3:-1]
    assert [m["availableSeats"] for m in first] == [7, 6]
    stats = redis_client.info("commandstats")
    assert stats["cmdstat_zrange"]["calls"] == 1 and stats["cmdstat_mget"]["calls"] == 1
    for url in (f"{stack.users}/users/", f"{stack.movies}/movies"):
        bad = stack.http.get(url, params={"order": "sideways"})
        assert bad.status_code == 422 and bad.json()["error"]["fields"][0]["field"] == "order"
