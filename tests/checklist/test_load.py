"""`theater load` against the local run (`theater local` in a subprocess):
its counts agree with what the services hold afterwards, it stops by itself
and on Ctrl-C, and bad options get a one-line error."""

from __future__ import annotations

import json
import signal
import subprocess
import time
from pathlib import Path

import httpx

from checklist.load import parse_mix, percentile
from tests.gateway.conftest import theater_command

ROOT = Path(__file__).resolve().parents[2]


def run_load(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    return subprocess.run([*theater_command(), "load", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_counts_match_the_services_own_data(local_app: str) -> None:
    done = run_load("--url", local_app, "--rate", "15", "--duration", "4", "--mix", "reads=40,bookings=40,cancels=20",
                    "--seed", "7", "--json")
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    # The live progress line went to stderr, with counts by status and percentiles.
    assert "p50" in done.stderr and "p99" in done.stderr and "201:" in done.stderr
    total = summary["total"]["requests"]
    assert 15 * 4 * 0.8 <= total <= 15 * 4 + 2, summary  # the schedule's 60 requests (a booking may be retried once)
    bookings, cancels = summary["byOperation"]["bookings"], summary["byOperation"]["cancels"]
    assert bookings["statuses"].get("201", 0) > 0 and cancels["statuses"].get("204", 0) > 0, summary

    with httpx.Client(base_url=local_app, timeout=10) as http:
        items = http.get("/bookings/", params={"userId": summary["userId"], "limit": "500"}).json()["items"]
        movie = http.get(f"/movies/{summary['movieId']}").json()
    by_status = {s: sum(1 for b in items if b["status"] == s) for s in ("confirmed", "cancelled")}
    # Every 201 the load saw is one booking the service holds; every 204 one of them cancelled.
    assert len(items) == bookings["statuses"]["201"] - summary["idempotentReplays"]
    assert by_status["cancelled"] == cancels["statuses"]["204"] == summary["cancelled"]
    assert by_status["confirmed"] == summary["confirmed"]
    assert movie["availableSeats"] == movie["capacity"] - summary["confirmed"] == summary["movie"]["availableSeats"]


def test_ctrl_c_stops_it_with_a_summary(local_app: str, tmp_path: Path) -> None:
    out, err = tmp_path / "out", tmp_path / "err"
    with open(out, "w") as o, open(err, "w") as e:
        proc = subprocess.Popen([*theater_command(), "load", "--url", local_app, "--rate", "10", "--duration", "600"],
                                cwd=ROOT, stdout=o, stderr=e, text=True)
    deadline = time.monotonic() + 30
    while "요청" not in err.read_text():  # the first progress line
        assert proc.poll() is None, err.read_text()
        assert time.monotonic() < deadline, err.read_text()
        time.sleep(0.2)
    started = time.monotonic()
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=30) == 130
    assert time.monotonic() - started < 15
    assert "Ctrl-C 로 중단" in out.read_text(), out.read_text()
    assert "Traceback" not in err.read_text()


def test_bad_options_and_an_absent_app() -> None:
    for args, message in ((["--rate", "0"], "--rate must be in"), (["--duration", "99999"], "--duration must be in"),
                          (["--mix", "reads=1,sleep=2"], "--mix takes"), (["--url", "ftp://x"], "--url must start")):
        done = run_load(*args)
        assert done.returncode == 2, (args, done.stderr)
        assert message in done.stderr and "Traceback" not in done.stderr
    # A stack without its Pulumi.<stack>.yaml is named, as `theater render` names it (not "http://theater. does not answer").
    done = run_load("--stack", "ctx3", "--duration", "1")
    assert done.returncode == 2, done.stderr
    assert "Pulumi.ctx3.yaml does not exist" in done.stderr and "ctx1, ctx2" in done.stderr, done.stderr
    assert "does not answer" not in done.stderr and "Traceback" not in done.stderr
    # --set (the one override flag of doctor, verify, render and load) is checked like theirs.
    for args, key in ((["--stack", "ctx1", "--set", "nope=1"], "theater-msa:nope"),
                      (["--stack", "ctx1", "--set", "domain=bad_domain!"], "theater-msa:domain"),
                      (["--stack", "ctx1", "--set", "domain="], "theater-msa:domain")):
        done = run_load(*args, "--duration", "1")
        assert done.returncode == 2 and key in done.stderr, (args, done.stderr)
        assert "does not answer" not in done.stderr and "Traceback" not in done.stderr
    done = run_load("--url", "http://127.0.0.1:9", "--duration", "1")
    assert done.returncode == 1
    assert "does not answer" in done.stderr and "theater local" in done.stderr


def test_mix_and_percentiles() -> None:
    assert parse_mix("reads=3,bookings=1") == {"reads": 3.0, "bookings": 1.0, "cancels": 0.0}
    assert percentile([0.3, 0.1, 0.2, 0.4], 50) == 0.2
    assert percentile(list(range(1, 101)), 99) == 99
    assert percentile([], 50) is None


def test_the_demo_password_is_sent_from_the_environment(mesh_like, tmp_path: Path) -> None:
    """A gateway with theater-msa:demoPassword: load sends DEMO_PASSWORD as HTTP
    Basic; without it, one line names the setting and the variable."""
    import os

    from services import api_gateway
    from services.launcher import LiveServer

    peers = {n: mesh_like.servers[n].url for n in ("user-service", "movie-service", "booking-service")}
    settings = mesh_like.settings("api-gateway", peers=peers, demo_password="class-2026")
    with LiveServer(api_gateway.create_app(settings)) as gateway:
        args = [*theater_command(), "load", "--url", gateway.url, "--rate", "10", "--duration", "2", "--json"]
        env = {k: v for k, v in os.environ.items() if k != "DEMO_PASSWORD"}
        done = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={**env, "DEMO_PASSWORD": "class-2026"})
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout)["byOperation"]["bookings"]["statuses"].get("201", 0) > 0
        refused = subprocess.run(args, cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
        assert refused.returncode == 1 and "DEMO_PASSWORD" in refused.stderr and "Traceback" not in refused.stderr
