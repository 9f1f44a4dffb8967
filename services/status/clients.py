"""One lightkube client per cluster, built off the event loop and kept
while its credentials do not change."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx2
from lightkube import AsyncClient

from services.status.sources import ClusterSource


class ClusterClients:
    """One lightkube client per cluster, kept while its credentials do not
    change. Building a client loads the CA bundle: 80 ms of CPU on a calm
    machine and over a second on a busy one. Built on every status poll and
    on the event loop, it stalled the gateway's other calls (a who-answered
    /info call timed out connecting to 127.0.0.1), so clients are built in a
    worker thread and reused."""

    def __init__(self) -> None:
        self._clients: dict[tuple[str, str], tuple[tuple[Any, ...], str, Any]] = {}

    async def get(self, source: ClusterSource, namespace: str, timeout: float) -> tuple[str, Any]:
        """(API server URL, client) for `source`; raises on a bad kubeconfig."""
        fingerprint = (*source.fingerprint(), namespace, timeout)
        key = (source.name, source.role)
        cached = self._clients.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1], cached[2]

        def build() -> tuple[str, Any]:
            config = source.config()
            client = AsyncClient(
                config,
                namespace=namespace,
                timeout=httpx2.Timeout(timeout, connect=min(timeout, 2.0)),
                trust_env=False,  # never pick up the host's KUBECONFIG/proxy settings by accident
            )
            return config.cluster.server, client

        server, client = await asyncio.to_thread(build)
        if cached is not None:
            await _close_quietly(cached[2])
        self._clients[key] = (fingerprint, server, client)
        return server, client

    async def aclose(self) -> None:
        for _, _, client in self._clients.values():
            await _close_quietly(client)
        self._clients.clear()


async def _close_quietly(client: Any) -> None:
    try:
        await client.close()
    except Exception:  # pragma: no cover - closing never matters for the answer
        pass
