"""Trace headers Envoy needs copied from an inbound request to every
outbound call, so that the spans of one request join into one trace."""

from __future__ import annotations

from collections.abc import Mapping

TRACE_HEADERS: tuple[str, ...] = (
    "x-request-id",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
)


def trace_headers(inbound: Mapping[str, str]) -> dict[str, str]:
    """The trace headers present in `inbound` (a request's headers)."""
    return {name: inbound[name] for name in TRACE_HEADERS if name in inbound}
