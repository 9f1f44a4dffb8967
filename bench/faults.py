"""Seeded fault runs: the booking flow under the faults the Istio lessons
inject, against real processes. Used by tests/services/test_fault_runs.py
(20+ runs per CI run) and by the soak mode (`python -m bench --soak MIN`).

The cluster: one redis-server (append-only, as deployed) shared by
user-service, two movie-service and two booking-service replicas, each a
`python -m services.serve` process; booking-service reaches movie-service
through bench/fault_proxy.py (the mesh: round-robin plus injected faults).

One run (`run_one(cluster, seed)`), everything drawn from `seed`:

1. a new movie (capacity 30-120); four clients book 1-3 seats with fresh
   Idempotency-Keys, cancel some of their bookings and replay some keys,
   spread over both booking-service replicas;
2. after 0.3-1 s, one fault (seed % 6 picks which) for its duration: Redis stopped (SIGSTOP) for
   1-10 s; Redis killed (-9) and restarted on its data; a movie-service or
   booking-service replica killed (-9) and restarted; movie-service slower
   than booking-service's timeout; movie-service answering 503 (half of
   them after doing the work). Load goes on for 1 s after it ends;
3. every key without a final answer (201, 404, 409) is retried with the
   same key and body, every unanswered cancel repeated, as a client would;
4. the invariants are polled through the API until they hold, at most 60 s
   (the reconcile time: from the clients' last request; also reported from
   the end of the fault):
   - capacity - availableSeats == seats of the confirmed bookings listed
     with ?movieId=;
   - the seats movie-service holds, per booking, are exactly those of the
     confirmed bookings (GET /internal/movies/{id}/reservations);
   then, once:
   - each key names at most one listed booking, and every listed booking
     was named by some key's 201 answer (no duplicate from a retry);
   - without a Redis kill, every booking a 201 named is listed (a kill -9
     may lose the last second of writes: append-only, fsync every second);
   - every cancel answered 204/202 left its booking cancelled, and
     replaying its key answers the booking as cancelled, not confirmed;
   - no 500 answers.
"""

from __future__ import annotations

import asyncio
import random
import signal
import sys
import time
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from bench import procs
from services import catalog, launcher
from services.launcher import ServerProcess, free_port
from services.redis_server import RedisServer, find_redis_server

FAULTS = ("redis_stall", "redis_kill", "kill_movie", "kill_booking", "slow_movie", "movie_503")
PEER_TIMEOUT = 2.0  # booking-service -> movie-service / user-service
REDIS_TIMEOUT = 0.5
RECONCILE_INTERVAL = 0.5
CLIENT_TIMEOUT = 4.0
WORKERS = 4
RECONCILE_LIMIT = 60.0
RESOLVE_LIMIT = 60.0
START_TIMEOUT = 120.0  # a shared 2-core machine can take that long to start a Python service
HOST = launcher.HOST


class Cluster:
    """redis-server, user-service, 2 x movie-service behind the fault proxy,
    2 x booking-service; each a process on a free port."""

    def __init__(self, work_dir: Path, replicas: int = 2) -> None:
        self.work_dir = Path(work_dir)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self.redis = RedisServer(self.work_dir / "redis", free_port(HOST), HOST, binary=find_redis_server(prefer_system=True))
        self.replicas = replicas
        self.users: ServerProcess | None = None
        self.movies: list[ServerProcess] = []
        self.bookings: list[ServerProcess] = []
        self.proxy: ServerProcess | None = None
        self.user_ids: list[str] = []
        self.started: list[ServerProcess] = []  # everything to stop, in start order
        self.restarting: Future | None = None  # a killed replica coming back
        self._restarter = ThreadPoolExecutor(1)

    def _env(self, name: str, port: int, db: int, peers: dict[str, str] | None = None) -> dict[str, str]:
        return procs.bench_env(
            catalog.SERVICES[name],
            port,
            redis_url=f"{self.redis.url}/{db}",
            peers=peers,
            log_level="error",
            extra={
                "PEER_TIMEOUT_SECONDS": str(PEER_TIMEOUT),
                "REDIS_TIMEOUT_SECONDS": str(REDIS_TIMEOUT),
                "RECONCILE_INTERVAL_SECONDS": str(RECONCILE_INTERVAL),
            },
        )

    def _service(self, name: str, label: str, db: int, peers: dict[str, str] | None = None) -> ServerProcess:
        port = free_port(HOST)
        proc = procs.server(label, procs.serve_argv(name), self._env(name, port, db, peers), port, self.work_dir)
        self.started.append(proc)
        proc.start_ready("/readyz", timeout=START_TIMEOUT)
        return proc

    def start(self) -> None:
        self.redis.start()
        try:
            # Callees first, each group starting side by side.
            with ThreadPoolExecutor() as pool:
                users = pool.submit(self._service, "user-service", "user-service", 0)
                movies = [pool.submit(self._service, "movie-service", f"movie-service-{i}", 1) for i in range(self.replicas)]
                self.users = users.result()
                self.movies = [m.result() for m in movies]
            port = free_port(HOST)
            env = procs.bench_env(catalog.MOVIE, port, extra={"FAULT_PROXY_UPSTREAMS": ",".join(m.url for m in self.movies)})
            self.proxy = procs.server("fault-proxy", [sys.executable, "-m", "bench.fault_proxy"], env, port, self.work_dir)
            self.started.append(self.proxy)
            self.proxy.start_ready("/_proxy/healthz", timeout=START_TIMEOUT)
            peers = {"user-service": self.users.url, "movie-service": self.proxy.url}
            with ThreadPoolExecutor() as pool:
                bookings = [
                    pool.submit(self._service, "booking-service", f"booking-service-{i}", 2, peers)
                    for i in range(self.replicas)
                ]
                self.bookings = [b.result() for b in bookings]
            with httpx.Client(timeout=10) as http:
                for i in range(20):
                    r = http.post(f"{self.users.url}/users/", json={"name": f"Fan {i}", "email": f"fan{i}@example.com"})
                    r.raise_for_status()
                    self.user_ids.append(r.json()["id"])
        except Exception:
            self.stop()
            raise

    def ready(self) -> None:
        """Wait until a replica killed by the last run is back (every run
        starts with all replicas, so it has exactly one fault)."""
        if self.restarting is not None:
            future, self.restarting = self.restarting, None
            future.result()

    def stop(self) -> None:
        try:
            self.ready()
        except Exception:
            pass
        self._restarter.shutdown()
        if self.redis.proc is not None:
            self.redis.proc.send_signal(signal.SIGCONT)  # in case a run stopped it
        for proc in reversed(self.started):
            proc.stop(procs.STOP_SIGNAL, 5)
        self.redis.stop()

    def set_proxy(self, mode: str, seconds: float = 0.0) -> None:
        assert self.proxy is not None
        httpx.put(f"{self.proxy.url}/_fault", json={"mode": mode, "seconds": seconds}, timeout=5).raise_for_status()

    def inject(self, fault: str, rng: random.Random, duration: float) -> str:
        """Cause `fault` for `duration` seconds, then undo it (blocking)."""
        if fault == "redis_stall":
            assert self.redis.proc is not None
            self.redis.proc.send_signal(signal.SIGSTOP)
            try:
                time.sleep(duration)
            finally:
                self.redis.proc.send_signal(signal.SIGCONT)
            return f"redis SIGSTOP {duration:.1f}s"
        if fault == "redis_kill":
            assert self.redis.proc is not None
            self.redis.proc.kill()
            self.redis.proc.wait()
            self.redis.proc = None
            time.sleep(duration)
            self.redis.start()
            return f"redis kill -9, restarted after {duration:.1f}s"
        if fault in ("kill_movie", "kill_booking"):
            group = self.movies if fault == "kill_movie" else self.bookings
            victim = group[rng.randrange(len(group))]
            victim.kill()
            time.sleep(duration)
            # It takes a while to boot: the run goes on meanwhile, as with a
            # pod that Kubernetes restarts; the next run waits for it.
            self.restarting = self._restarter.submit(victim.start_ready, "/healthz", timeout=START_TIMEOUT)
            return f"{victim.name} kill -9, restarted after {duration:.1f}s"
        if fault == "slow_movie":
            delay = PEER_TIMEOUT + rng.uniform(0.2, 1.5)
            self.set_proxy("delay", delay)
            try:
                time.sleep(duration)
            finally:
                self.set_proxy("none")
            return f"movie-service {delay:.1f}s slow (timeout {PEER_TIMEOUT}s) for {duration:.1f}s"
        if fault == "movie_503":
            self.set_proxy("503")
            try:
                time.sleep(duration)
            finally:
                self.set_proxy("none")
            return f"movie-service answers 503 for {duration:.1f}s"
        raise ValueError(f"unknown fault {fault!r}")


@dataclass
class Key:
    key: str
    body: dict[str, Any]
    # (status, booking id, booking status) or (status, None, error message)
    answers: list[tuple[int, str | None, str | None]] = field(default_factory=list)

    @property
    def final(self) -> bool:
        return bool(self.answers) and self.answers[-1][0] in (201, 404, 409)


@dataclass
class RunResult:
    seed: int
    fault: str
    detail: str = ""
    capacity: int = 0
    statuses: Counter = field(default_factory=Counter)
    listed: int = 0
    confirmed: int = 0
    cancelled: int = 0
    reconcile_s: float | None = None  # from the clients' last request until the invariants held
    since_fault_s: float | None = None  # the same, from the end of the fault
    seconds: float = 0.0
    violations: list[str] = field(default_factory=list)

    def line(self) -> str:
        codes = " ".join(f"{k}:{v}" for k, v in sorted(self.statuses.items()))
        rec = f"{self.reconcile_s:.1f}s ({self.since_fault_s:.1f}s after the fault)" if self.reconcile_s is not None else "never"
        verdict = "ok" if not self.violations else f"VIOLATED: {'; '.join(self.violations[:5])}"
        return (
            f"seed {self.seed:<5d} {self.detail:<58s} {self.confirmed:>3d} confirmed {self.cancelled:>3d} cancelled  "
            f"reconciled in {rec:>24s}  answers {codes}  run {self.seconds:.0f}s  {verdict}"
        )


class _Run:
    def __init__(self, cluster: Cluster, seed: int, movie: dict[str, Any]) -> None:
        self.cluster = cluster
        self.seed = seed
        self.movie = movie
        self.keys: dict[str, Key] = {}
        self.cancels: dict[str, int] = {}  # booking id -> last status
        self.statuses: Counter = Counter()
        self.turn = 0

    def booking_url(self) -> str:  # round-robin
        self.turn += 1
        return self.cluster.bookings[self.turn % len(self.cluster.bookings)].url

    async def send(self, client: httpx.AsyncClient, method: str, path: str, **kw: Any) -> httpx.Response | str:
        """To one booking-service replica; a refused connection goes to the
        next one, as a Kubernetes Service (or Envoy) would route it. Any
        other failure is the client's to see."""
        for _ in self.cluster.bookings:
            try:
                return await client.request(method, self.booking_url() + path, **kw)
            except httpx.ConnectError:
                continue
            except httpx.HTTPError as exc:
                return type(exc).__name__
        return "all replicas refused"

    async def book(self, client: httpx.AsyncClient, k: Key) -> None:
        r = await self.send(client, "POST", "/bookings/", json=k.body, headers={"Idempotency-Key": k.key})
        if isinstance(r, str):
            self.statuses[0] += 1
            k.answers.append((0, None, r))
            return
        self.statuses[r.status_code] += 1
        try:
            body = r.json()
        except ValueError:
            body = {}
        if r.status_code == 201:
            k.answers.append((201, body["id"], body["status"]))
        else:
            k.answers.append((r.status_code, None, str(body.get("error", {}).get("message", r.text))[:80]))

    async def cancel(self, client: httpx.AsyncClient, booking_id: str) -> None:
        r = await self.send(client, "DELETE", f"/bookings/{booking_id}")
        status = 0 if isinstance(r, str) else r.status_code
        self.statuses[status] += 1
        self.cancels[booking_id] = status

    async def worker(self, client: httpx.AsyncClient, w: int, stop: asyncio.Event) -> None:
        rng = random.Random(self.seed * 1000 + w)
        n = 0
        while not stop.is_set():
            roll = rng.random()
            booked = [a[1] for k in self.keys.values() for a in k.answers[-1:] if a[0] == 201 and a[2] == "confirmed"]  # noqa: E501
            if roll < 0.15 and booked:
                victim = rng.choice(booked)
                if victim not in self.cancels:
                    await self.cancel(client, victim)
                    continue
            if roll > 0.9 and self.keys:
                await self.book(client, rng.choice(list(self.keys.values())))
                continue
            n += 1
            body = {"userId": rng.choice(self.cluster.user_ids), "movieId": self.movie["id"], "seats": rng.randint(1, 3)}
            k = self.keys.setdefault(f"s{self.seed}-w{w}-{n}", Key(f"s{self.seed}-w{w}-{n}", body))
            await self.book(client, k)
            await asyncio.sleep(rng.uniform(0.01, 0.04))  # a bounded rate: the machine has 2 cores

    async def resolve(self, client: httpx.AsyncClient) -> list[str]:
        """Retry what has no final answer, as a client would."""
        deadline = time.monotonic() + RESOLVE_LIMIT
        while time.monotonic() < deadline:
            open_keys = [k for k in self.keys.values() if not k.final]
            open_cancels = [b for b, s in self.cancels.items() if s not in (202, 204, 404)]
            if not open_keys and not open_cancels:
                return []
            gate = asyncio.Semaphore(WORKERS)

            async def one(call):  # type: ignore[no-untyped-def]
                async with gate:
                    await call

            await asyncio.gather(
                *(one(self.book(client, k)) for k in open_keys), *(one(self.cancel(client, b)) for b in open_cancels)
            )
            await asyncio.sleep(0.2)
        return [f"key {k.key} still without a final answer: {k.answers[-3:]}" for k in self.keys.values() if not k.final]


def _get(http: httpx.Client, procs_: list[ServerProcess], path: str, **kw: Any) -> httpx.Response:
    """GET from the first replica that accepts the connection."""
    for proc in procs_:
        try:
            return http.get(proc.url + path, **kw)
        except httpx.ConnectError:
            continue
    raise httpx.ConnectError(f"no replica answers {path}")


def _all_bookings(http: httpx.Client, cluster: Cluster, movie_id: str) -> list[dict[str, Any]]:
    items, cursor = [], None
    while True:
        params = {"movieId": movie_id, "limit": "500", **({"cursor": cursor} if cursor else {})}
        r = _get(http, cluster.bookings, "/bookings/", params=params)
        r.raise_for_status()
        items += r.json()["items"]
        cursor = r.json()["next"]
        if not cursor:
            return items


def seat_problems(cluster: Cluster, http: httpx.Client, movie: dict[str, Any]) -> tuple[list[str], list[dict[str, Any]]]:
    """The seat invariants, read through the services' HTTP APIs."""
    try:
        m = _get(http, cluster.movies, f"/movies/{movie['id']}")
        held = _get(http, cluster.movies[::-1], f"/internal/movies/{movie['id']}/reservations")
        listed = _all_bookings(http, cluster, movie["id"])
        m.raise_for_status()
        held.raise_for_status()
    except httpx.HTTPError as exc:
        return [f"cannot read the state: {exc}"], []
    confirmed = {b["id"]: b["seats"] for b in listed if b["status"] == "confirmed"}
    problems = []
    taken = movie["capacity"] - m.json()["availableSeats"]
    if taken != sum(confirmed.values()):
        problems.append(f"capacity - availableSeats = {taken} but confirmed bookings hold {sum(confirmed.values())}")
    holds = held.json()["held"]
    orphans = {b: n for b, n in holds.items() if confirmed.get(b) != n}
    missing = {b: n for b, n in confirmed.items() if holds.get(b) != n}
    if orphans:
        problems.append(f"seats held without a confirmed booking: {dict(list(orphans.items())[:5])}")
    if missing:
        problems.append(f"confirmed bookings without their seats: {dict(list(missing.items())[:5])}")
    return problems, listed


def run_one(cluster: Cluster, seed: int) -> RunResult:
    rng = random.Random(seed)
    fault = FAULTS[seed % len(FAULTS)]  # consecutive seeds cover every fault
    duration = rng.uniform(1, 10) if fault == "redis_stall" else rng.uniform(1, 3)
    start_after = rng.uniform(0.3, 1.0)
    capacity = rng.randint(30, 120)
    result = RunResult(seed=seed, fault=fault, capacity=capacity)
    started = time.monotonic()
    with httpx.Client(timeout=10) as http:
        cluster.ready()
        # Set-up, not a finding: the previous run's fault may still be settling (Redis reloading its
        # append-only file answers 503), so the run's movie is created with a bounded wait.
        deadline = time.monotonic() + 30
        while True:
            r = http.post(f"{cluster.movies[0].url}/movies/",
                          json={"title": f"Run {seed}", "genre": "test", "year": 2000, "capacity": capacity})
            if r.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        r.raise_for_status()
        movie = r.json()
    run = _Run(cluster, seed, movie)

    async def drive() -> tuple[float, float]:
        stop = asyncio.Event()
        limits = httpx.Limits(max_connections=WORKERS * 4)
        async with httpx.AsyncClient(timeout=CLIENT_TIMEOUT, limits=limits) as client:
            workers = [asyncio.create_task(run.worker(client, w, stop)) for w in range(WORKERS)]
            await asyncio.sleep(start_after)
            result.detail = await asyncio.to_thread(cluster.inject, fault, rng, duration)
            fault_end = time.monotonic()
            await asyncio.sleep(1.0)
            stop.set()
            await asyncio.gather(*workers)
            result.violations += await run.resolve(client)
        return fault_end, time.monotonic()

    fault_end, quiet = asyncio.run(drive())
    with httpx.Client(timeout=10) as http:
        deadline = quiet + RECONCILE_LIMIT
        while True:
            problems, listed = seat_problems(cluster, http, movie)
            if not problems:
                result.reconcile_s = round(time.monotonic() - quiet, 2)
                result.since_fault_s = round(time.monotonic() - fault_end, 2)
                break
            if time.monotonic() > deadline:
                result.violations += problems
                break
            time.sleep(0.1)
        result.violations += key_problems(run, listed, fault, http)
    result.statuses = run.statuses
    result.listed = len(listed)
    result.confirmed = sum(b["status"] == "confirmed" for b in listed)
    result.cancelled = sum(b["status"] == "cancelled" for b in listed)
    result.seconds = round(time.monotonic() - started, 1)
    if run.statuses.get(500):
        result.violations.append(f"{run.statuses[500]} answers were 500")
    return result


def key_problems(run: _Run, listed: list[dict[str, Any]], fault: str, http: httpx.Client) -> list[str]:
    problems = []
    status_of = {b["id"]: b["status"] for b in listed}
    named: set[str] = set()
    key_of: dict[str, Key] = {}
    for k in run.keys.values():
        ids = {a[1] for a in k.answers if a[0] == 201}
        named |= ids
        for i in ids:
            key_of[i] = k
        live = ids & status_of.keys()
        if len(live) > 1:
            problems.append(f"key {k.key} yields {len(live)} bookings: {sorted(live)}")
    unnamed = status_of.keys() - named
    if unnamed:
        problems.append(f"bookings no answer named (duplicates): {sorted(unnamed)[:5]}")
    if fault != "redis_kill":
        lost = named - status_of.keys()
        if lost:
            problems.append(f"bookings answered 201 but not listed: {sorted(lost)[:5]}")
    cancelled = [b for b, s in run.cancels.items() if s in (202, 204)]
    wrong = [b for b in cancelled if b in status_of and status_of[b] != "cancelled"]
    if wrong:
        problems.append(f"cancelled (204/202) but listed as {status_of[wrong[0]]}: {wrong[:5]}")
    for booking_id in cancelled[:5]:
        k = key_of.get(booking_id)
        if k is None or booking_id not in status_of:
            continue
        try:
            r = http.post(f"{run.cluster.bookings[-1].url}/bookings/", json=k.body, headers={"Idempotency-Key": k.key})
        except httpx.ConnectError:  # that replica is restarting
            r = http.post(f"{run.cluster.bookings[0].url}/bookings/", json=k.body, headers={"Idempotency-Key": k.key})
        if r.status_code == 201 and r.json()["status"] == "confirmed":
            problems.append(f"replaying key {k.key} after its cancel claims the booking is confirmed")
    return problems
