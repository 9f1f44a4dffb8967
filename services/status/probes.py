"""The local run's panel: /info, /healthz and /readyz of each service."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from services.common.peers import HttpClient, Reply


def _failure(exc: BaseException) -> str:
    if isinstance(exc, TimeoutError):
        return "no answer in time"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "cannot connect"
    return type(exc).__name__


async def probe_service(client: HttpClient, name: str, url: str, timeout: float) -> dict[str, Any]:
    """/info, /healthz and /readyz of one service, for the local run's panel."""
    entry: dict[str, Any] = {"service": name, "url": url, "healthy": False, "ready": False, "info": None, "error": None}

    async def get(path: str) -> Reply:
        return await client.request("GET", url + path, timeout=timeout)

    results = await asyncio.gather(get("/info"), get("/healthz"), get("/readyz"), return_exceptions=True)
    info, health, ready = results
    problems = []
    for what, res in (("info", info), ("healthz", health), ("readyz", ready)):
        if isinstance(res, BaseException):
            problems.append(f"{what}: {_failure(res)}")
    if isinstance(info, Reply) and info.status_code == 200:
        try:
            entry["info"] = info.json()
        except ValueError:
            problems.append("info: not JSON")
    if isinstance(health, Reply):
        entry["healthy"] = health.status_code == 200
    if isinstance(ready, Reply):
        entry["ready"] = ready.status_code == 200
        if ready.status_code != 200:
            try:
                problems.append(ready.json()["error"]["message"])
            except (ValueError, KeyError, TypeError):
                problems.append(f"readyz: HTTP {ready.status_code}")
    if problems:
        entry["error"] = "; ".join(dict.fromkeys(problems))
    return entry
