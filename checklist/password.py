"""The shared demo password (README 6, `theater-msa:demoPassword`).

With DEMO_PASSWORD in the environment, verify and load send it as HTTP Basic
(any user name), as the api-gateway asks for it; without, they send nothing."""

from __future__ import annotations

import os
from collections.abc import Mapping

import httpx


def demo_auth(env: Mapping[str, str] = os.environ) -> httpx.BasicAuth | None:
    password = (env.get("DEMO_PASSWORD") or "").strip()
    return httpx.BasicAuth("theater", password) if password else None
