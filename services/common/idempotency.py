"""Idempotency-Key support for POST endpoints that must not run twice.

A request carrying `Idempotency-Key: <key>` first claims the key with
`SET NX` (a short lease while it runs). Then:

- the same key with the same body, after the first request succeeded,
  gets the first response again (same status and body, plus the header
  `Idempotent-Replayed: true`) for `ttl` seconds (24 h);
- the same key while the first request still runs waits for it (polling
  Redis) and then gets its response; if it is still running after `wait`
  seconds, 409 `idempotency_in_progress`;
- the same key with a different body gets 422 `idempotency_key_reused`;
- a first request that fails releases the key: it left nothing behind, so
  a retry simply runs again.

The body fingerprint is a SHA-256 of the validated body as canonical JSON,
so whitespace and key order do not matter. Keys are stored hashed under
`<prefix>:idem:<sha256>`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis
import redis.exceptions
from starlette.requests import Request

from services.common.errors import ApiError

log = logging.getLogger("theater")

HEADER = "idempotency-key"
MAX_KEY_LENGTH = 255

_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass(frozen=True)
class Outcome:
    """A response remembered for a key."""

    status: int
    body: dict[str, Any]


@dataclass(frozen=True)
class Claim:
    """This request owns the key; `data` is what it stored with its lease."""

    key: str
    value: str
    data: dict[str, Any]


Recover = Callable[[Mapping[str, Any]], Awaitable[Outcome | None]]


def header_key(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 422 when it is unusable."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not 1 <= len(key) <= MAX_KEY_LENGTH or not key.isprintable():
        raise ApiError(
            422,
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} printable characters",
            fields=[{"field": "Idempotency-Key", "message": "1-255 printable characters"}],
        )
    return key


def fingerprint(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


class IdempotencyKeys:
    def __init__(
        self, redis: aioredis.Redis, prefix: str, *, ttl: int = 24 * 3600, lease: int = 30, wait: float = 12.0
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttl = ttl
        self.lease = lease  # longer than any request may run
        self.wait = wait
        self._release = redis.register_script(_RELEASE)

    def redis_key(self, key: str) -> str:
        return f"{self.prefix}:idem:" + hashlib.sha256(key.encode()).hexdigest()

    async def claim(
        self, key: str, body_fingerprint: str, data: Mapping[str, Any], recover: Recover | None = None
    ) -> Claim | Outcome:
        """Claim `key` for this request, or return the response to replay.

        `recover(data)` is asked, when another request holds the key, whether
        that request's effect already exists (it may have died after doing
        its work but before recording its response)."""
        rkey = self.redis_key(key)
        value = json.dumps({"state": "pending", "fp": body_fingerprint, "token": secrets.token_hex(8), **data})
        deadline = time.monotonic() + self.wait
        while True:
            if await self.redis.set(rkey, value, nx=True, ex=self.lease):
                return Claim(rkey, value, dict(data))
            raw = await self.redis.get(rkey)
            if raw is None:
                continue  # the holder gave up or its lease ended: try again
            held = json.loads(raw)
            if held["fp"] != body_fingerprint:
                raise ApiError(
                    422,
                    "this Idempotency-Key was already used with a different request body; use a new key",
                    "idempotency_key_reused",
                )
            if held["state"] == "done":
                return Outcome(held["status"], held["body"])
            if recover is not None:
                outcome = await recover(held)
                if outcome is not None:
                    return outcome
            if time.monotonic() > deadline:
                raise ApiError(
                    409, "a request with this Idempotency-Key is still in progress; retry shortly",
                    "idempotency_in_progress",
                )
            await asyncio.sleep(0.05)

    async def finish(self, claim: Claim, outcome: Outcome) -> None:
        """Remember the response for `ttl` seconds."""
        held = json.loads(claim.value)
        done = {"state": "done", "fp": held["fp"], "status": outcome.status, "body": outcome.body}
        try:
            await self.redis.set(claim.key, json.dumps(done, ensure_ascii=False), ex=self.ttl)
        except redis.exceptions.RedisError as exc:
            # The effect exists; a retry within the lease finds it via recover().
            log.warning("could not record idempotent response for %s: %s", claim.key, exc)

    async def abandon(self, claim: Claim) -> None:
        """Give the key up after a failure, so a retry runs again."""
        try:
            await self._release(keys=[claim.key], args=[claim.value])
        except redis.exceptions.RedisError as exc:
            log.warning("could not release idempotency key %s (its lease ends by itself): %s", claim.key, exc)
