"""booking-service's records and their states, in its own Redis. Every
change of state is one Lua script that checks the state it starts from, so a
late or repeated command (a timeout that ran anyway, a second replica, the
reconciler) can never undo a decision already made.

    pending ──confirm──> confirmed ──cancel──> cancelled
       │                                          ▲
       ├──fail──> failed (hidden, expires)        │
       └──cancel──────────────────────────────────┘

- `pending`: the intent, written before movie-service is asked for seats,
  with a deadline. A booking only ever holds seats under its own id, so any
  seats held at movie-service belong to a record here.
- `confirm` needs `pending` and happens only after movie-service held the
  seats. `fail` and `cancel` are the only ways out otherwise; both put the
  booking in the settle queue, whose entries are given back at movie-service
  (a release there is idempotent and leaves a tombstone that stops a late
  reservation). Seats are therefore released only for a booking that can
  never be confirmed again.
- Failed records are not bookings (GET answers 404, lists skip them); they
  expire with the Idempotency-Key that may point at them.

Keys (prefix `bookings`, layout of services/common/store.py plus):

    bookings:idem:<sha256(key)>  {"fp", "id"}: the booking an Idempotency-Key
                                 made (24 h); a key whose booking failed is
                                 bound to a new id by the next attempt
    bookings:pending             zset id -> deadline (unix time)
    bookings:settle              zset "<id>:<movieId>" -> next attempt time
    bookings:gone:users|movies   sets of deleted user / movie ids
    bookings:feed:users|movies   how far the deletion feeds were followed
    bookings:forget:<kind>:<id>  how far a deletion's cancels got (the last
                                 index score walked; `done`, 24 h, at the end)

Scripts name a record key they compute from an id (`<prefix>:<id>`) when
the id is only known inside the script: fine on one Redis server (what the
app deploys), not on Redis Cluster.
"""

from __future__ import annotations

from typing import Any

from services.common.redis import Redis
from services.common.responses import loads
from services.common.store import Store, dumps

KEY_TTL = 24 * 3600
# Bookings one deletion batch walks (the caller's size is capped by the script)
FORGET_BATCH = 500
FORGET_CAP = 2000
# Settle entries one claim hands out (capped by the script too)
CLAIM_CAP = 2000

# KEYS: record, pending, idem key (or a placeholder)
# ARGV: record json, id, deadline, fingerprint, ttl, '1' when there is a key, prefix
_BEGIN = """
if ARGV[6] == '1' then
  local raw = redis.call('GET', KEYS[3])
  if raw then
    local held = cjson.decode(raw)
    if held.fp ~= ARGV[4] then return {'reused', ''} end
    local rec = redis.call('GET', ARGV[7] .. ':' .. held.id)
    if rec and cjson.decode(rec).status ~= 'failed' then return {'existing', rec} end
  end
  redis.call('SET', KEYS[3], cjson.encode({fp = ARGV[4], id = ARGV[2]}), 'EX', ARGV[5])
end
local mine = redis.call('GET', KEYS[1])
if mine then return {'existing', mine} end
redis.call('SET', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[2])
return {'new', ARGV[1]}
"""

# The start of _CONFIRM and _FAIL: the record (KEYS[1]) as `raw` and `doc`; a
# record that is gone leaves the pending set (KEYS[2]) and answers 'missing'.
_LOAD = """
local raw = redis.call('GET', KEYS[1])
if not raw then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {'missing', ''}
end
local doc = cjson.decode(raw)
"""

# KEYS: record, pending, settle, seq, index, by-user, by-movie, by-pair, gone users, gone movies
# ARGV: id, now, ttl of a failed record, the movie title to store (or ""),
#       not after (unix time: the request's deadline, or when the caller
#       stops waiting for this call, whichever is sooner)
# Past `not after` on Redis' own clock (a call that ran late: the caller got
# a timeout, or the gateway answered 504), the booking fails instead.
_CONFIRM = _LOAD + """
if doc.status ~= 'pending' then return {doc.status, raw} end
redis.call('ZREM', KEYS[2], ARGV[1])
local gone = nil
local t = redis.call('TIME')
if tonumber(t[1]) + tonumber(t[2]) / 1000000 > tonumber(ARGV[5]) then gone = 'expired' end
if redis.call('SISMEMBER', KEYS[9], doc.userId) == 1 then gone = 'gone_user' end
if redis.call('SISMEMBER', KEYS[10], doc.movieId) == 1 then gone = 'gone_movie' end
if gone then
  doc.status = 'failed'
  redis.call('SET', KEYS[1], cjson.encode(doc), 'EX', ARGV[3])
  redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1] .. ':' .. doc.movieId)
  return {gone, raw}
end
if ARGV[4] ~= '' then doc.movieTitle = ARGV[4] end
doc.status = 'confirmed'
raw = cjson.encode(doc)
redis.call('SET', KEYS[1], raw)
local seq = redis.call('INCR', KEYS[4])
for i = 5, 8 do redis.call('ZADD', KEYS[i], seq, ARGV[1]) end
return {'confirmed', raw}
"""

# KEYS: record, pending, settle   ARGV: id, now, '1' when nothing can be held, ttl
_FAIL = _LOAD + """
if doc.status ~= 'pending' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  return {doc.status, raw}
end
doc.status = 'failed'
raw = cjson.encode(doc)
redis.call('SET', KEYS[1], raw, 'EX', ARGV[4])
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[3] ~= '1' then redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1] .. ':' .. doc.movieId) end
return {'failed_now', raw}
"""

# KEYS: record, pending, settle   ARGV: id, now
_CANCEL = """
local raw = redis.call('GET', KEYS[1])
if not raw then return {'missing', ''} end
local doc = cjson.decode(raw)
if doc.status == 'failed' then return {'missing', ''} end
if doc.status == 'cancelled' then return {'cancelled', raw} end
doc.status = 'cancelled'
raw = cjson.encode(doc)
redis.call('SET', KEYS[1], raw)
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZADD', KEYS[3], ARGV[2], ARGV[1] .. ':' .. doc.movieId)
return {'cancelled_now', raw}
"""

# One batch of a deletion's cancels. Bounded: it walks at most `batch` (hard
# cap FORGET_CAP) entries of the index after the deletion's progress key, so
# a user with 100k bookings costs 100k/batch short calls, never one long one
# (one long script is Redis answering BUSY to every other client).
# KEYS: gone set, the deleted record's index (by-user or by-movie), settle, progress
# ARGV: deleted id, now, prefix, batch size, ttl of the progress key once done
# Returns {cancelled in this batch, 1 when the whole index has been walked}.
_FORGET = """
local batch = math.min(tonumber(ARGV[4]), %(cap)d)
redis.call('SADD', KEYS[1], ARGV[1])
local after = redis.call('GET', KEYS[4]) or '0'
if after == 'done' then return {0, 1} end
local rows = redis.call('ZRANGE', KEYS[2], '(' .. after, '+inf', 'BYSCORE', 'LIMIT', 0, batch, 'WITHSCORES')
local n = 0
for i = 1, #rows, 2 do
  local id = rows[i]
  local key = ARGV[3] .. ':' .. id
  local raw = redis.call('GET', key)
  if raw then
    local doc = cjson.decode(raw)
    if doc.status == 'confirmed' then
      doc.status = 'cancelled'
      redis.call('SET', key, cjson.encode(doc))
      redis.call('ZADD', KEYS[3], ARGV[2], id .. ':' .. doc.movieId)
      n = n + 1
    end
  end
end
if #rows < 2 * batch then
  redis.call('SET', KEYS[4], 'done', 'EX', ARGV[5])
  return {n, 1}
end
local last = rows[#rows]
if tonumber(last) > tonumber(after) then redis.call('SET', KEYS[4], last) end
return {n, 0}
""" % {"cap": FORGET_CAP}

# KEYS: settle   ARGV: now, next attempt time, limit (capped at CLAIM_CAP)
_CLAIM = """
local limit = math.min(tonumber(ARGV[3]), %(cap)d)
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, limit)
for _, member in ipairs(due) do redis.call('ZADD', KEYS[1], 'XX', ARGV[2], member) end
return due
""" % {"cap": CLAIM_CAP}

# KEYS: cursor   ARGV: new value (only moves forward)
_ADVANCE = """
if tonumber(redis.call('GET', KEYS[1]) or '0') < tonumber(ARGV[1]) then redis.call('SET', KEYS[1], ARGV[1]) end
return 1
"""


def settle_member(booking_id: str, movie_id: str) -> str:
    return f"{booking_id}:{movie_id}"


class Ledger:
    def __init__(self, redis: Redis, store: Store, *, grace: float, key_ttl: int = KEY_TTL) -> None:
        self.redis = redis
        self.store = store
        self.grace = grace  # how long a pending booking may stay pending
        self.key_ttl = key_ttl
        self.pending = store.key("pending")
        self.settle = store.key("settle")
        self._begin = redis.register_script(_BEGIN)
        self._confirm = redis.register_script(_CONFIRM)
        self._fail = redis.register_script(_FAIL)
        self._cancel = redis.register_script(_CANCEL)
        self._forget = redis.register_script(_FORGET)
        self._claim = redis.register_script(_CLAIM)
        self._advance = redis.register_script(_ADVANCE)

    def idem_key(self, hashed: str) -> str:
        return self.store.key("idem", hashed)

    def gone(self, kind: str) -> str:
        return self.store.key("gone", kind)

    @staticmethod
    def _doc(raw: str) -> dict[str, Any] | None:
        return loads(raw) if raw else None

    async def begin(
        self, record: dict[str, Any], now: float, key: str | None, fingerprint: str, deadline: float | None = None
    ) -> tuple[str, dict[str, Any] | None]:
        """Write the pending record (bound to `key`, a hashed Idempotency-Key).
        ('new', record), ('existing', the key's live booking) or ('reused', None)
        when the key was used with another body. The reconciler fails it
        after `deadline` (default: now + grace)."""
        keys = [self.store.record_key(record["id"]), self.pending, self.idem_key(key or "none")]
        until = now + self.grace if deadline is None else deadline
        args = [dumps(record), record["id"], until, fingerprint, self.key_ttl, "1" if key else "", self.store.prefix]
        status, raw = await self._begin(keys=keys, args=args)
        return status, self._doc(raw)

    async def confirm(
        self, booking_id: str, user_id: str, movie_id: str, now: float, title: str | None = None,
        not_after: float | None = None,
    ) -> tuple[str, dict[str, Any] | None]:
        """('confirmed', record) or the state that stopped it: 'cancelled',
        'failed', 'gone_user', 'gone_movie', 'expired' (the script ran after
        `not_after`, on Redis' clock: the booking failed instead, and its
        seats joined the settle queue) or 'missing'. `title` (the movie's,
        from the reservation answer) is stored with the confirm."""
        s = self.store
        keys = [
            s.record_key(booking_id), self.pending, self.settle, s.key("seq"), s.index,
            s.index_by("user", user_id), s.index_by("movie", movie_id), s.index_by("pair", f"{user_id}:{movie_id}"),
            self.gone("users"), self.gone("movies"),
        ]
        limit = now + self.grace if not_after is None else not_after
        status, raw = await self._confirm(keys=keys, args=[booking_id, now, self.key_ttl, title or "", limit])
        return status, self._doc(raw)

    async def fail(self, booking_id: str, now: float, *, nothing_held: bool) -> tuple[str, dict[str, Any] | None]:
        """Give up a pending booking: ('failed_now', record), else its state.
        Unless `nothing_held`, it joins the settle queue."""
        keys = [self.store.record_key(booking_id), self.pending, self.settle]
        status, raw = await self._fail(keys=keys, args=[booking_id, now, "1" if nothing_held else "", self.key_ttl])
        return status, self._doc(raw)

    async def cancel(self, booking_id: str, now: float) -> tuple[str, dict[str, Any] | None]:
        """('cancelled_now', record), ('cancelled', record) or ('missing', None)."""
        if not self.store.is_id(booking_id):
            return "missing", None
        keys = [self.store.record_key(booking_id), self.pending, self.settle]
        status, raw = await self._cancel(keys=keys, args=[booking_id, now])
        return status, self._doc(raw)

    async def settled(self, booking_id: str, movie_id: str) -> None:
        """The seats of this booking are back at movie-service."""
        await self.redis.zrem(self.settle, settle_member(booking_id, movie_id))

    async def overdue(self, now: float, limit: int = 100) -> list[str]:
        """Pending bookings past their deadline."""
        return await self.redis.zrangebyscore(self.pending, "-inf", now, count=limit)

    async def claim_settle(self, now: float, retry_at: float, limit: int = 100) -> list[tuple[str, str]]:
        """(bookingId, movieId) whose seats are due to go back; other replicas
        skip them until `retry_at`."""
        members = await self._claim(keys=[self.settle], args=[now, retry_at, limit])
        return [tuple(m.split(":", 1)) for m in members]  # type: ignore[misc]

    async def forget(self, kind: str, deleted_id: str, now: float, batch: int = FORGET_BATCH) -> int:
        """A user or movie was deleted: cancel its confirmed bookings (they
        join the settle queue) and refuse to confirm its pending ones. One
        bounded script call per `batch` bookings; the progress is kept in
        Redis (`bookings:forget:<kind>:<id>`), so a restart or a second
        replica carries on where the last batch ended. Between batches
        Redis serves everyone else."""
        index = self.store.index_by("user" if kind == "users" else "movie", deleted_id)
        keys = [self.gone(kind), index, self.settle, self.store.key("forget", kind, deleted_id)]
        cancelled = 0
        while True:
            n, done = await self._forget(keys=keys, args=[deleted_id, now, self.store.prefix, batch, self.key_ttl])
            cancelled += int(n)
            if int(done):
                return cancelled

    async def settled_many(self, members: list[str]) -> None:
        """Drop settle entries whose seats are back (one ZREM)."""
        if members:
            await self.redis.zrem(self.settle, *members)

    async def feed_cursor(self, kind: str) -> int:
        return int(await self.redis.get(self.store.key("feed", kind)) or 0)

    async def advance(self, kind: str, seq: int) -> None:
        await self._advance(keys=[self.store.key("feed", kind)], args=[seq])
