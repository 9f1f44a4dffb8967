"""An optional shared password for a class's public address (issue 25,
item 8). The app has no accounts: whoever reaches the api-gateway can list
every user's e-mail and delete anyone's bookings, users and movies. With
DEMO_PASSWORD set, the api-gateway asks for it (HTTP Basic: any user name,
that password) on every path but the probes and metrics; a browser shows its
own login box once and sends it with every later request, so the page needs
no change. curl: `curl -u class:<password> ...`.

It is a door for a classroom demo, not security: the password travels in
every request (base64, not encrypted, unless the address is HTTPS) and is
the same for everyone. To keep the address to a network instead, see the
Istio AuthorizationPolicy in the README.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from starlette.types import ASGIApp, Receive, Scope, Send

from services import catalog
from services.common.errors import error_response

# Kubernetes probes and Prometheus reach these without the password.
OPEN_PATHS = frozenset({"/healthz", "/readyz", catalog.METRICS_PATH})
CHALLENGE = 'Basic realm="Theater MSA", charset="UTF-8"'


def password_of(header: bytes | None) -> str | None:
    """The password of an `Authorization: Basic ...` header, or None."""
    if not header or not header[:6].lower() == b"basic ":
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    _, sep, password = decoded.partition(":")
    return password if sep else None


class DemoPasswordMiddleware:
    """401 (with a Basic challenge) unless the request carries `password`."""

    def __init__(self, app: ASGIApp, password: str) -> None:
        self.app = app
        self.password = password.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", []) if k == b"authorization"), None)
        given = password_of(header)
        if given is not None and hmac.compare_digest(given.encode(), self.password):
            await self.app(scope, receive, send)
            return
        response = error_response(
            401, "this class's Theater MSA asks for the shared demo password (HTTP Basic, any user name)",
            "password_required",
        )
        response.headers["www-authenticate"] = CHALLENGE
        await response(scope, receive, send)
