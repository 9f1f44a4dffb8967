"""Reading the simulated clusters back with a Kubernetes client (the API
servers' REST API over httpx, with the admin certificate)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from services import catalog
from sim import simulation
from sim.controlplane import ControlPlane

NS = catalog.NAMESPACE
ISTIO_GROUPS = ("networking.istio.io", "security.istio.io")


@contextmanager
def running_sim(directory: Path, **options) -> Iterator[simulation.Simulation]:
    started = time.monotonic()
    sim = simulation.up(directory, **options)
    from tests.e2e.stack import record_timing

    record_timing(f"sim-up-{options.get('istio', 'current')}", time.monotonic() - started)
    try:
        yield sim
    finally:
        simulation.down(directory)


class Cluster:
    def __init__(self, plane: ControlPlane) -> None:
        self.plane = plane
        self.name = plane.name
        self.http = plane.client(timeout=20)

    def get(self, path: str) -> httpx.Response:
        return self.http.get(path)

    def items(self, path: str) -> list[dict]:
        r = self.http.get(path)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        return r.json()["items"]

    def exists(self, path: str) -> bool:
        return self.http.get(path).status_code == 200

    def pods(self, namespace: str = NS) -> list[dict]:
        return self.items(f"/api/v1/namespaces/{namespace}/pods")

    def nodes(self) -> dict[str, dict]:
        return {n["metadata"]["name"]: n for n in self.items("/api/v1/nodes")}

    def istio_objects(self, namespace: str) -> list[tuple[str, str]]:
        """(kind, name) of every Istio object in namespace, read at every version the API serves."""
        found = set()
        for group in ISTIO_GROUPS:
            r = self.http.get(f"/apis/{group}")
            if r.status_code != 200:
                continue
            # Every served version: Istio 1.20 prefers security.istio.io/v1,
            # which has no PeerAuthentication (v1beta1 only before 1.22).
            for version in (v["version"] for v in r.json()["versions"]):
                resources = self.http.get(f"/apis/{group}/{version}").json()["resources"]
                for res in resources:
                    if "/" in res["name"]:
                        continue
                    for obj in self.items(f"/apis/{group}/{version}/namespaces/{namespace}/{res['name']}"):
                        found.add((res["kind"], obj["metadata"]["name"]))
        return sorted(found)

    def close(self) -> None:
        self.http.close()


def wait_for(check: Callable[[], object], timeout: float, what: str, interval: float = 0.5):
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what} (last: {last!r})")
