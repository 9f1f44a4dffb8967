"""Records as JSON in Redis, an ordered index per collection, and cursor
pagination that costs O(page).

Key layout for a collection with prefix `users` (each service owns one
prefix and never touches another's keys):

    users:<id>            the record, a JSON string
    users:seq             counter; every new record takes the next value
    users:index           sorted set: id scored by its sequence number
    users:by-<f>:<value>  optional secondary indexes (same scores), e.g.
                          bookings:by-user:<userId>
    users:unique:<f>      optional hash for a unique field: value -> id
    users:deleted         sorted set: ids of deleted records, scored by a
                          sequence number taken when they were deleted (a
                          feed other services follow: services/common/deletions.py)

A page is `ZRANGE <index> (<cursor> +inf BYSCORE LIMIT 0 <limit+1>` plus one
MGET, both in one script (one round trip): no KEYS, no SCAN, no full reads. The cursor is the sequence number of
the last record returned; clients treat it as opaque.

Ids are a one-letter kind, an underscore and 10 random characters from a
32-letter lowercase alphabet (about 50 bits), e.g. `u_k3x9m2p7qa`. They are
URL-safe and never change.
"""

from __future__ import annotations

import json
import re
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from services.common.redis import Redis
from services.common.responses import loads

ID_ALPHABET = "abcdefghijkmnpqrstuvwxyz23456789"  # no l/1/o/0 to avoid misreading; 32 symbols (new_id)
ID_LENGTH = 10
PAGE_CAP = 500  # records one page may hold, enforced in the script too (query.MAX_LIMIT)

# KEYS: record, seq, unique-hash, index zsets..., extra string keys...
# ARGV: json, id, unique value ('' = none), number of index zsets, extra values...
_CREATE = """
local unique = ARGV[3]
if unique ~= '' then
  local owner = redis.call('HGET', KEYS[3], unique)
  if owner then return {'conflict', owner} end
end
if redis.call('EXISTS', KEYS[1]) == 1 then return {'exists', ''} end
local seq = redis.call('INCR', KEYS[2])
redis.call('SET', KEYS[1], ARGV[1])
if unique ~= '' then redis.call('HSET', KEYS[3], unique, ARGV[2]) end
local n = tonumber(ARGV[4])
for i = 4, math.min(3 + n, #KEYS) do redis.call('ZADD', KEYS[i], seq, ARGV[2]) end
for i = 4 + n, #KEYS do redis.call('SET', KEYS[i], ARGV[1 + i - n]) end
return {'ok', tostring(seq)}
"""

# KEYS: record, unique-hash, seq, deletion feed, then the index zsets, then
#       extra keys to delete (UNLINK: a movie's reservations hash may hold
#       100k entries, freed off Redis's main thread instead of inside the script)
# ARGV: id, unique-field ('' = none), number of index keys
_DELETE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('UNLINK', KEYS[1])
if ARGV[2] ~= '' and redis.call('HGET', KEYS[2], ARGV[2]) == ARGV[1] then
  redis.call('HDEL', KEYS[2], ARGV[2])
end
redis.call('ZADD', KEYS[4], redis.call('INCR', KEYS[3]), ARGV[1])
local n = tonumber(ARGV[3])
for i = 5, math.min(4 + n, #KEYS) do redis.call('ZREM', KEYS[i], ARGV[1]) end
for i = 5 + n, #KEYS do redis.call('UNLINK', KEYS[i]) end
return 1
"""

# A page in one round trip: the ids after the cursor in an index, then the
# values of their records (and of extra keys per record) in one MGET.
# KEYS: index   ARGV: cursor, limit, record key prefix, order ('oldest' or
# 'newest'), suffixes of extra keys. Oldest first walks up from after the
# cursor; newest first walks down from below it ('' = from the top).
# Returns {next cursor or '', then per id: record, extra values...}; a value
# is nil when its key is gone. The record keys are computed from the ids, so
# this needs one Redis server (what the app deploys), not Redis Cluster.
_PAGE = """
local limit = math.min(tonumber(ARGV[2]), %(cap)d)
local rows
if ARGV[4] == 'newest' then
  local top = '+inf'
  if ARGV[1] ~= '' then top = '(' .. ARGV[1] end
  rows = redis.call('ZRANGE', KEYS[1], top, '-inf', 'BYSCORE', 'REV', 'LIMIT', 0, limit + 1, 'WITHSCORES')
else
  rows = redis.call('ZRANGE', KEYS[1], '(' .. ARGV[1], '+inf', 'BYSCORE', 'LIMIT', 0, limit + 1, 'WITHSCORES')
end
local n = #rows / 2
local out = {''}
if n > limit then
  n = limit
  out[1] = rows[2 * limit]
end
local keys = {}
for i = 1, n do
  local key = ARGV[3] .. ':' .. rows[2 * i - 1]
  keys[#keys + 1] = key
  for j = 5, #ARGV do keys[#keys + 1] = key .. ARGV[j] end
end
if #keys > 0 then
  local values = redis.call('MGET', unpack(keys))
  for i = 1, #keys do out[i + 1] = values[i] end
end
return out
""" % {"cap": PAGE_CAP}

# KEYS: record   ARGV: field, expected value, new value
# Returns the record after the call (changed or not), or nil when missing.
_SET_IF = """
local raw = redis.call('GET', KEYS[1])
if not raw then return false end
local doc = cjson.decode(raw)
if doc[ARGV[1]] == ARGV[2] then
  doc[ARGV[1]] = ARGV[3]
  raw = cjson.encode(doc)
  redis.call('SET', KEYS[1], raw)
end
return raw
"""


def id_pattern(kind: str) -> str:
    """The pattern of a record id of `kind` (its one-letter prefix), as new_id makes them."""
    return rf"^{re.escape(kind)}_[{ID_ALPHABET}]{{{ID_LENGTH}}}$"


class IdCollision(Exception):
    """A new record's random id is taken already (50 bits: astronomically rare); retry."""


class Conflict(Exception):
    """A unique field already belongs to another record."""

    def __init__(self, owner: str) -> None:
        super().__init__(owner)
        self.owner = owner


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    next: str | None

    def body(self) -> dict[str, Any]:
        return {"items": self.items, "next": self.next}


def dumps(doc: Mapping[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":"))


class Store:
    """One collection of JSON records in the service's own key space."""

    def __init__(self, redis: Redis, prefix: str, kind: str) -> None:
        self.redis = redis
        self.prefix = prefix
        self.kind = kind
        self._id = re.compile(id_pattern(kind))
        self._create = redis.register_script(_CREATE)
        self._delete = redis.register_script(_DELETE)
        self._set_if = redis.register_script(_SET_IF)
        self._page = redis.register_script(_PAGE)

    # -- keys -------------------------------------------------------------
    def key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def record_key(self, id: str) -> str:
        return self.key(id)

    @property
    def index(self) -> str:
        return self.key("index")

    def index_by(self, field: str, value: str) -> str:
        return self.key(f"by-{field}", value)

    def unique_key(self, field: str) -> str:
        return self.key("unique", field)

    # -- ids --------------------------------------------------------------
    def new_id(self) -> str:
        # One read of the system's random source (not one per character): 32
        # symbols, so each random byte's low 5 bits pick one without bias.
        return f"{self.kind}_" + "".join(ID_ALPHABET[b & 31] for b in secrets.token_bytes(ID_LENGTH))

    def is_id(self, value: str) -> bool:
        """Only well-formed ids reach Redis, so a path like /users/index can
        never read one of the collection's own bookkeeping keys."""
        return bool(self._id.match(value))

    # -- records ----------------------------------------------------------
    async def create(
        self,
        id: str,
        doc: Mapping[str, Any],
        *,
        indexes: Sequence[str] = (),
        unique: tuple[str, str] | None = None,
        also_set: Mapping[str, str | int] | None = None,
    ) -> int:
        """Store `doc` under `id`, add it to the main index and `indexes` and
        SET the `also_set` keys, all in one atomic step. `unique` = (field,
        value): raise Conflict if another record holds that value. Returns
        the record's sequence number."""
        field, value = unique if unique else ("", "")
        extra = dict(also_set or {})
        index_keys = [self.index, *indexes]
        keys = [self.record_key(id), self.key("seq"), self.unique_key(field or "none"), *index_keys, *extra]
        args = [dumps(doc), id, value, len(index_keys), *extra.values()]
        status, detail = await self._create(keys=keys, args=args)
        if status == "conflict":
            raise Conflict(detail)
        if status == "exists":  # a 50-bit id collided: astronomically rare
            raise IdCollision(id)
        return int(detail)

    async def get(self, id: str) -> dict[str, Any] | None:
        if not self.is_id(id):
            return None
        raw = await self.redis.get(self.record_key(id))
        return None if raw is None else loads(raw)

    async def delete(
        self,
        id: str,
        *,
        indexes: Sequence[str] = (),
        unique: tuple[str, str] | None = None,
        extra_keys: Sequence[str] = (),
    ) -> bool:
        """Delete the record, drop it from its indexes, free its unique value
        (only if this record holds it), delete `extra_keys` and add the id
        to the deletion feed, atomically."""
        if not self.is_id(id):
            return False
        field, value = unique if unique else ("", "")
        keys = [
            self.record_key(id),
            self.unique_key(field or "none"),
            self.key("seq"),
            self.deleted,
            self.index,
            *indexes,
            *extra_keys,
        ]
        return bool(await self._delete(keys=keys, args=[id, value, 1 + len(indexes)]))

    @property
    def deleted(self) -> str:
        return self.key("deleted")

    async def deleted_since(self, after: int, limit: int) -> list[tuple[str, int]]:
        """(id, sequence number) of records deleted after `after`, oldest first."""
        rows = await self.redis.zrangebyscore(self.deleted, f"({after}", "+inf", count=limit, withscores=True)
        return [(member, int(score)) for member, score in rows]

    async def set_if(self, id: str, field: str, expected: str, new: str) -> dict[str, Any] | None:
        """Atomically set a string `field` to `new` if it equals `expected`.
        Returns the record afterwards, or None when it does not exist."""
        if not self.is_id(id):
            return None
        raw = await self._set_if(keys=[self.record_key(id)], args=[field, expected, new])
        return None if raw is None else json.loads(raw)

    async def unique_owner(self, field: str, value: str) -> str | None:
        return await self.redis.hget(self.unique_key(field), value)

    async def page_values(
        self, index: str, limit: int, cursor: int | None, suffixes: Sequence[str] = (), *, newest: bool = False
    ) -> tuple[list[list[str | None]], str | None]:
        """The records after `cursor` in `index`, oldest first (or, with
        `newest`, those before it, newest first; None = from the newest),
        each as [raw record, value of `<record key><suffix>` for each
        suffix...], and the next cursor: one round trip (a script doing the
        ZRANGE and the MGET), so a page costs about what a single read does."""
        start: int | str = cursor if cursor is not None else ("" if newest else 0)
        reply = await self._page(keys=[index], args=[start, limit, self.prefix, "newest" if newest else "oldest", *suffixes])
        width = 1 + len(suffixes)
        values = reply[1:]
        groups = [values[i : i + width] for i in range(0, len(values), width)]
        return groups, (str(int(float(reply[0]))) if reply[0] else None)

    async def page(self, index: str | None, limit: int, cursor: int | None, *, newest: bool = False) -> Page:
        groups, next_cursor = await self.page_values(index or self.index, limit, cursor, newest=newest)
        return Page([loads(raw) for raw, in groups if raw is not None], next_cursor)


def now_iso() -> str:
    """The current time as ISO 8601 in UTC with milliseconds, e.g.
    `2026-11-29T13:44:30.123Z`."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
