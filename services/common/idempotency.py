"""Idempotency-Key: reading the header and fingerprinting the body.

What a key means is up to the endpoint; booking-service binds each key to
the one booking it made (services/booking_ledger.py): the same key with the
same body gets that booking again, in its current state, with the header
`Idempotent-Replayed: true`; the same key with another body gets 422
`idempotency_key_reused`. Keys are stored hashed (SHA-256).

The body fingerprint is a SHA-256 of the validated body as canonical JSON,
so whitespace and key order do not matter.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

from starlette.requests import Request

from services.common.errors import ApiError

HEADER = "idempotency-key"
REPLAYED = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# 1-255 visible ASCII characters, spaces allowed inside (a UUID is the usual
# choice). The OpenAPI document states the same pattern.
KEY_PATTERN = r"^[!-~](?:[ -~]{0,253}[!-~])?$"


def header_key(request: Request) -> str | None:
    """The request's Idempotency-Key, or None; 422 when it is unusable."""
    key = request.headers.get(HEADER)
    if key is None:
        return None
    if not re.fullmatch(KEY_PATTERN, key):
        raise ApiError(
            422,
            f"Idempotency-Key must be 1-{MAX_KEY_LENGTH} visible ASCII characters (spaces only inside)",
            fields=[
                {
                    "field": "Idempotency-Key",
                    "reason": "bad_format",
                    "message": f"must be 1 to {MAX_KEY_LENGTH} visible ASCII characters",
                }
            ],
        )
    return key


def hashed(key: str) -> str:
    """How a key is stored: never the client's text itself."""
    return hashlib.sha256(key.encode()).hexdigest()


def fingerprint(body: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(body, sort_keys=True, ensure_ascii=False).encode()).hexdigest()


def reused() -> ApiError:
    return ApiError(
        422,
        "this Idempotency-Key was already used with a different request body; use a new key",
        "idempotency_key_reused",
    )
