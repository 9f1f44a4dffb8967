"""The /api/status answer: every cluster read at once (and the local
services probed when no cluster answers), cached for
`status_cache_seconds` with one fetch in flight at a time."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from services.common.peers import HttpClient
from services.common.settings import Settings
from services.status.clients import ClusterClients
from services.status.clusters import read_cluster
from services.status.probes import probe_service
from services.status.sources import cluster_sources
from services.status.summaries import iso, utcnow


class StatusReader:
    """Builds the /api/status answer, cached for `settings.status_cache_seconds`."""

    def __init__(
        self,
        settings: Settings,
        http: HttpClient,
        environ: dict[str, str] | None = None,
    ) -> None:
        self.settings = settings
        self.http = http
        self.environ = environ
        self._cached: dict[str, Any] | None = None
        self._cached_at = 0.0
        self._lock = asyncio.Lock()
        self.clients = ClusterClients()
        self.fetches = 0  # how many times the clusters were really queried (tests, /metrics-like curiosity)

    async def status(self) -> dict[str, Any]:
        ttl = self.settings.status_cache_seconds
        if self._cached is not None and time.monotonic() - self._cached_at < ttl:
            return self._cached
        async with self._lock:
            # Whoever waited on the lock finds the answer the first caller just built.
            if self._cached is not None and time.monotonic() - self._cached_at < ttl:
                return self._cached
            result = await self._build()
            self._cached, self._cached_at = result, time.monotonic()
            return result

    async def _build(self) -> dict[str, Any]:
        self.fetches += 1
        sources = cluster_sources(self.settings, self.environ)
        in_kubernetes = any(s.kind == "in-cluster" for s in sources)
        no_cluster = all(s.kind == "none" for s in sources)
        clusters = await asyncio.gather(
            *(read_cluster(s, self.settings.namespace, self.settings.k8s_timeout, self.clients) for s in sources)
        )
        local = None
        if not in_kubernetes or not any(c["reachable"] for c in clusters):
            timeout = min(self.settings.peer_timeout, 2.0)
            probes = await asyncio.gather(
                *(probe_service(self.http, name, url, timeout)
                  for name in self.settings.peers for url in self.settings.peer_urls(name))
            )
            me = {"service": self.settings.service, "url": None, "healthy": True, "ready": True, "info": self.settings.info(), "error": None}
            local = [me, *probes]
        return {
            "namespace": self.settings.namespace,
            "mode": "local" if no_cluster else "kubernetes",
            "generatedAt": iso(utcnow()),
            "cacheSeconds": self.settings.status_cache_seconds,
            "clusters": list(clusters),
            "local": local,
        }
