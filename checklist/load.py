"""`theater load`: bounded demo traffic, so Kiali and Jaeger have something to draw.

    uv run theater load [--url URL | --stack ctx1] [--rate 5] [--duration 60]
                        [--mix reads=70,bookings=20,cancels=10] [--json]

It makes one user and one movie of its own, then sends requests at a fixed
rate (open loop: a slow service does not slow the schedule, and at most
--concurrency requests are in flight; ticks beyond that are counted as
skipped) for --duration seconds: reads (movie list, one movie, the user's
bookings), bookings (POST /bookings/ with a fresh Idempotency-Key; a booking
that got no answer is sent once more with the same key), and cancels of
bookings it made. A progress line shows the counts by status and p50/p99;
the summary at the end says what the services now hold for its user and
movie. It stops by itself, and on Ctrl-C (exit code 130, summary printed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import signal
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import TextIO

import httpx

from checklist.password import demo_auth
from checklist.stack import PROJECT, REPO_ROOT, StackError, read
from infra.setting_objects import SettingError, parse_overrides
from services.catalog import LOAD_NAME_PREFIX

OPS = ("reads", "bookings", "cancels")
DEFAULT_URL = "http://127.0.0.1:8080"
MAX_DURATION = 3600.0
MAX_RATE = 200.0


class LoadError(Exception):
    pass


def parse_mix(text: str) -> dict[str, float]:
    mix: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep or name not in OPS:
            raise LoadError(f"--mix takes {'/'.join(OPS)}=WEIGHT separated by commas, got {part!r}")
        try:
            weight = float(value)
        except ValueError:
            raise LoadError(f"--mix: {name} needs a number, got {value!r}") from None
        if weight < 0:
            raise LoadError(f"--mix: {name} must not be negative")
        mix[name] = weight
    if sum(mix.values()) <= 0:
        raise LoadError("--mix: at least one weight must be positive")
    return {op: mix.get(op, 0.0) for op in OPS}


def percentile(values: list[float], p: float) -> float | None:
    """Nearest-rank percentile (p in 0..100) of values, or None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * p // 100))  # ceil
    return ordered[int(rank) - 1]


@dataclass
class Tally:
    statuses: Counter = field(default_factory=Counter)  # "201", "409", "error:ConnectError", ...
    latencies: list[float] = field(default_factory=list)  # seconds, answered requests only

    def as_data(self) -> dict:
        p50, p99 = percentile(self.latencies, 50), percentile(self.latencies, 99)
        return {"requests": sum(self.statuses.values()), "statuses": dict(sorted(self.statuses.items())),
                "p50Ms": None if p50 is None else round(p50 * 1000, 1),
                "p99Ms": None if p99 is None else round(p99 * 1000, 1)}


@dataclass
class Plan:
    url: str
    rate: float
    duration: float
    mix: dict[str, float]
    concurrency: int = 16
    timeout: float = 10.0
    seed: int | None = None
    capacity: int = 10_000  # the most movie-service accepts


class Load:
    def __init__(self, plan: Plan, out: TextIO = sys.stderr) -> None:
        self.plan = plan
        self.out = out
        self.rng = random.Random(plan.seed)
        self.total = Tally()
        self.by_op: dict[str, Tally] = {op: Tally() for op in OPS}
        self.skipped = 0
        self.replayed = 0
        self.booked: list[str] = []  # confirmed bookings of this run not yet cancelled
        self.cancelled: list[str] = []
        self.user: dict = {}
        self.movie: dict = {}
        self.stop = asyncio.Event()
        self.interrupted = False
        self.started = 0.0
        self.elapsed = 0.0

    # ------------------------------------------------------------ requests

    async def setup(self, client: httpx.AsyncClient) -> None:
        tag = uuid.uuid4().hex[:8]
        try:
            # Named with catalog.LOAD_NAME_PREFIX: the web page hides them (and their bookings).
            r = await client.post("/users/", json={"name": f"{LOAD_NAME_PREFIX}{tag}", "email": f"load-{tag}@example.com"})
            if r.status_code == 401:
                raise LoadError(f"{self.plan.url} asks for the demo password (theater-msa:demoPassword): "
                                "run with DEMO_PASSWORD=<password> in the environment"
                                + (" (the one given was refused)" if demo_auth() else ""))
            if r.status_code != 201:
                raise LoadError(f"POST {self.plan.url}/users/ answered {r.status_code}: {r.text[:200]}")
            self.user = r.json()
            r = await client.post("/movies/", json={"title": f"{LOAD_NAME_PREFIX}{tag}", "genre": "테스트", "year": 2026,
                                                    "capacity": self.plan.capacity})
            if r.status_code != 201:
                raise LoadError(f"POST {self.plan.url}/movies/ answered {r.status_code}: {r.text[:200]}")
            self.movie = r.json()
        except httpx.HTTPError as exc:
            raise LoadError(f"{self.plan.url} does not answer ({type(exc).__name__}: {exc}); "
                            "start the app with `uv run theater local` or pass --url") from None

    async def timed(self, op: str, client: httpx.AsyncClient, method: str, path: str, **kw) -> httpx.Response | None:
        started = time.perf_counter()
        try:
            r = await client.request(method, path, **kw)
        except httpx.HTTPError as exc:
            self.record(op, f"error:{type(exc).__name__}", None)
            return None
        self.record(op, str(r.status_code), time.perf_counter() - started)
        return r

    def record(self, op: str, status: str, seconds: float | None) -> None:
        for tally in (self.total, self.by_op[op]):
            tally.statuses[status] += 1
            if seconds is not None:
                tally.latencies.append(seconds)

    async def read(self, client: httpx.AsyncClient) -> None:
        path = self.rng.choice(["/movies/?limit=20", f"/movies/{self.movie['id']}",
                                f"/bookings/?userId={self.user['id']}&limit=20"])
        await self.timed("reads", client, "GET", path)

    async def book(self, client: httpx.AsyncClient) -> None:
        body = {"userId": self.user["id"], "movieId": self.movie["id"], "seats": 1}
        headers = {"Idempotency-Key": f"load-{uuid.uuid4().hex}"}
        r = await self.timed("bookings", client, "POST", "/bookings/", json=body, headers=headers)
        if r is None:  # no answer: the same key again, so the booking happens at most once
            r = await self.timed("bookings", client, "POST", "/bookings/", json=body, headers=headers)
        if r is not None and r.status_code in (200, 201):
            if r.headers.get("Idempotent-Replayed") == "true":
                self.replayed += 1
            self.booked.append(r.json()["id"])

    async def cancel(self, client: httpx.AsyncClient) -> None:
        if not self.booked:
            await self.book(client)  # nothing to cancel yet
            return
        booking = self.booked.pop(self.rng.randrange(len(self.booked)))
        r = await self.timed("cancels", client, "DELETE", f"/bookings/{booking}")
        if r is not None and r.status_code == 204:
            self.cancelled.append(booking)
        else:
            self.booked.append(booking)  # still confirmed as far as we know

    # ------------------------------------------------------------ schedule

    async def run(self) -> dict:
        limits = httpx.Limits(max_connections=self.plan.concurrency, max_keepalive_connections=self.plan.concurrency)
        async with httpx.AsyncClient(base_url=self.plan.url, timeout=self.plan.timeout, limits=limits,
                                     trust_env=False, auth=demo_auth()) as client:
            await self.setup(client)
            ops = [op for op in OPS if self.plan.mix[op] > 0]
            weights = [self.plan.mix[op] for op in ops]
            actions = {"reads": self.read, "bookings": self.book, "cancels": self.cancel}
            in_flight: set[asyncio.Task] = set()
            progress = asyncio.create_task(self.show_progress())
            self.started = time.monotonic()
            tick = 0
            try:
                while not self.stop.is_set():
                    due = self.started + tick / self.plan.rate
                    if due >= self.started + self.plan.duration:
                        break
                    delay = due - time.monotonic()
                    if delay > 0:
                        try:
                            await asyncio.wait_for(self.stop.wait(), delay)
                            break
                        except TimeoutError:
                            pass
                    tick += 1
                    if len(in_flight) >= self.plan.concurrency:
                        self.skipped += 1
                        continue
                    task = asyncio.create_task(actions[self.rng.choices(ops, weights)[0]](client))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                if in_flight:
                    await asyncio.wait(in_flight, timeout=self.plan.timeout * 2 + 1)
            finally:
                self.elapsed = time.monotonic() - self.started
                progress.cancel()
                self.progress_line(final=True)
            return await self.summary(client)

    async def show_progress(self) -> None:
        while True:
            await asyncio.sleep(0.5 if self.out.isatty() else 2.0)
            self.progress_line()

    def progress_line(self, final: bool = False) -> None:
        elapsed = time.monotonic() - self.started if self.started else 0.0
        data = self.total.as_data()
        statuses = " ".join(f"{k}:{v}" for k, v in data["statuses"].items()) or "-"
        p50 = "-" if data["p50Ms"] is None else f"{data['p50Ms']:.0f}ms"
        p99 = "-" if data["p99Ms"] is None else f"{data['p99Ms']:.0f}ms"
        line = (f"[{min(elapsed, self.plan.duration):5.1f}s/{self.plan.duration:.0f}s] 요청 {data['requests']} | "
                f"{statuses} | p50 {p50} p99 {p99}" + (f" | 건너뜀 {self.skipped}" if self.skipped else ""))
        if self.out.isatty():
            self.out.write("\r\033[K" + line + ("\n" if final else ""))
        else:
            self.out.write(line + "\n")
        self.out.flush()

    async def summary(self, client: httpx.AsyncClient) -> dict:
        state: dict = {}
        try:
            movie = await client.get(f"/movies/{self.movie['id']}")
            if movie.status_code == 200:
                state["availableSeats"] = movie.json()["availableSeats"]
                state["capacity"] = movie.json()["capacity"]
        except httpx.HTTPError as exc:
            state["error"] = f"{type(exc).__name__}: {exc}"
        return {
            "url": self.plan.url, "rate": self.plan.rate, "duration": self.plan.duration, "mix": self.plan.mix,
            "elapsedSeconds": round(self.elapsed, 2), "interrupted": self.interrupted,
            "total": self.total.as_data(), "byOperation": {op: t.as_data() for op, t in self.by_op.items()},
            "skipped": self.skipped, "idempotentReplays": self.replayed,
            "userId": self.user.get("id"), "movieId": self.movie.get("id"),
            "confirmed": len(self.booked), "cancelled": len(self.cancelled), "movie": state,
        }


def render_summary(s: dict) -> str:
    lines = [f"theater load: {s['url']} 에 {s['elapsedSeconds']:.1f}초 동안 {s['total']['requests']}건"
             + (" (Ctrl-C 로 중단)" if s["interrupted"] else "")]
    names = {"reads": "조회", "bookings": "예약", "cancels": "취소"}
    for op, t in s["byOperation"].items():
        statuses = " ".join(f"{k}:{v}" for k, v in t["statuses"].items()) or "-"
        p = "-" if t["p50Ms"] is None else f"p50 {t['p50Ms']:.0f}ms p99 {t['p99Ms']:.0f}ms"
        lines.append(f"  {names[op]:3} {t['requests']:6}건  {statuses:30} {p}")
    t = s["total"]
    lines.append(f"  전체 {t['requests']:6}건  p50 {t['p50Ms']}ms p99 {t['p99Ms']}ms, 동시 요청 한도로 건너뜀 {s['skipped']}")
    seats = s["movie"].get("availableSeats")
    lines.append(f"  사용자 {s['userId']}, 영화 {s['movieId']}: 확정 {s['confirmed']}건, 취소 {s['cancelled']}건"
                 + (f", 남은 좌석 {seats}/{s['movie']['capacity']}" if seats is not None else ""))
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    target = parser.add_mutually_exclusive_group()
    target.add_argument("--url", help=f"보낼 주소 (기본: {DEFAULT_URL}, 로컬 실행의 api-gateway)")
    target.add_argument("--stack", help="이 스택의 http://theater.<domain> 으로 보냄 (예: ctx1)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="--stack 과 함께: 이번 실행에만 스택 설정을 바꿈, 예: domain=1.2.3.4.nip.io")
    parser.add_argument("--rate", type=float, default=5.0, help=f"초당 요청 수 (기본: 5, 최대 {MAX_RATE:.0f})")
    parser.add_argument("--duration", type=float, default=60.0, help=f"보내는 시간(초) (기본: 60, 최대 {MAX_DURATION:.0f})")
    parser.add_argument("--mix", default="reads=70,bookings=20,cancels=10",
                        help="조회·예약·취소의 비율 (기본: reads=70,bookings=20,cancels=10)")
    parser.add_argument("--concurrency", type=int, default=16, help="동시에 보내는 요청의 상한, 넘치면 건너뜀 (기본: 16)")
    parser.add_argument("--timeout", type=float, default=10.0, help="요청마다 기다리는 초 (기본: 10)")
    parser.add_argument("--seed", type=int, help="작업을 고르는 무작위 씨앗 (기본: 실행마다 다름)")
    parser.add_argument("--json", action="store_true", help="요약을 JSON 으로 출력")


def plan_from(args: argparse.Namespace) -> Plan:
    if not 0 < args.rate <= MAX_RATE:
        raise LoadError(f"--rate must be in (0, {MAX_RATE:.0f}] requests per second, got {args.rate}")
    if not 0 < args.duration <= MAX_DURATION:
        raise LoadError(f"--duration must be in (0, {MAX_DURATION:.0f}] seconds, got {args.duration}")
    if not 1 <= args.concurrency <= 256:
        raise LoadError(f"--concurrency must be 1 to 256, got {args.concurrency}")
    url = args.url or DEFAULT_URL
    if args.set and not args.stack:
        raise LoadError("--set changes a stack setting: use it with --stack")
    if args.stack:
        try:
            settings = read(args.stack, REPO_ROOT, parse_overrides(args.set, "--set"))
        except (StackError, SettingError) as exc:
            raise LoadError(str(exc)) from None
        if not settings.domain:
            raise LoadError(f"{PROJECT}:domain is not set for stack {args.stack}: "
                            f"`pulumi config set {PROJECT}:domain <domain> --stack {args.stack}`, or pass --url")
        url = f"http://{settings.host}"
    if not url.startswith(("http://", "https://")):
        raise LoadError(f"--url must start with http:// or https://, got {url!r}")
    return Plan(url.rstrip("/"), args.rate, args.duration, parse_mix(args.mix), args.concurrency, args.timeout, args.seed)


def main(args: argparse.Namespace) -> int:
    try:
        plan = plan_from(args)
    except LoadError as exc:
        print(f"theater load: {exc}", file=sys.stderr)
        return 2
    load = Load(plan)

    async def go() -> dict:
        loop = asyncio.get_running_loop()

        def interrupt() -> None:
            load.interrupted = True
            load.stop.set()

        loop.add_signal_handler(signal.SIGINT, interrupt)
        loop.add_signal_handler(signal.SIGTERM, interrupt)
        return await load.run()

    print(f"theater load: {plan.url}, 초당 {plan.rate:g}건, {plan.duration:g}초, "
          f"비율 {', '.join(f'{k}={v:g}' for k, v in plan.mix.items())} (Ctrl-C 로 멈춤)", file=sys.stderr, flush=True)
    try:
        summary = asyncio.run(go())
    except LoadError as exc:
        print(f"theater load: {exc}", file=sys.stderr)
        return 1
    print(json.dumps(summary, ensure_ascii=False, indent=2) if args.json else render_summary(summary), flush=True)
    return 130 if summary["interrupted"] else 0
