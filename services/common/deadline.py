"""A request's deadline, handed from the api-gateway to the service behind it,
so that the service gives up before the gateway does (issue 25, item 3).

The gateway answers 504 when a service has not answered within its deadline
(PEER_TIMEOUT_SECONDS). Without this header the service would not know: a
booking-service that was paused, or slow, could confirm a booking after the
client got 504 ("a 504 that booked"). With it:

- the gateway sends `X-Request-Deadline: <unix time, seconds>` (its own
  deadline, replacing whatever a client sent);
- booking-service works to `min(that - MARGIN, arrival + its own budget)`
  (and, behind an Envoy sidecar whose route has a timeout, to before that
  timeout too: `x-envoy-expected-rq-timeout-ms`),
  and its confirm is fenced on Redis' clock (services/booking_ledger.py):
  past the deadline it fails the booking instead of confirming it. So when
  the gateway answers 504, booking-service has given up, or will.

The clocks are the hosts' (the gateway's, booking-service's, Redis'): on one
machine the same clock; in a cluster NTP keeps them within milliseconds, and
MARGIN (0.5 s) absorbs that. A client's 504 remains "unknown" anyway (Envoy
may time out earlier, a connection may drop): retry with the same
Idempotency-Key to learn the outcome (docs/scale.md).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

HEADER = "x-request-deadline"
# What an Envoy sidecar adds when its route has a timeout (the Istio lessons'
# VirtualService timeouts): the milliseconds it will wait, from when it sent
# the request. Envoy answers 504 after that, so the service gives up before.
ENVOY_HEADER = "x-envoy-expected-rq-timeout-ms"
MARGIN = 0.5  # seconds the service keeps to answer before the caller's deadline


def header_value(deadline: float) -> str:
    """The header's value for an absolute deadline (unix time)."""
    return f"{deadline:.3f}"


def of(headers: Mapping[str, str], budget: float, now: float | None = None) -> float:
    """The deadline (unix time) a service works to: its own `budget` from
    now, or sooner when a caller says it gives up sooner: the api-gateway's
    deadline less MARGIN, or an Envoy route timeout less a fifth of it (at
    most MARGIN). A value that is not a number is ignored."""
    now = time.time() if now is None else now
    out = now + budget
    theirs = _number(headers.get(HEADER))
    if theirs is not None:
        out = min(out, theirs - MARGIN)
    envoy_ms = _number(headers.get(ENVOY_HEADER))
    if envoy_ms is not None and envoy_ms > 0:
        seconds = envoy_ms / 1000
        out = min(out, now + seconds - min(MARGIN, seconds / 5))
    return out


def _number(raw: str | None) -> float | None:
    if raw is None or len(raw) > 32:
        return None
    try:
        value = float(raw)
    except ValueError:
        return None
    return value if math.isfinite(value) else None
