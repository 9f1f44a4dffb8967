"""ServerProcess.kill() is a kill -9 of the whole process tree, as when
Kubernetes kills a container: Granian forks its workers, and a worker of a
SIGKILLed parent otherwise lives on (the fault runs left six of them)."""

from __future__ import annotations

import os
import sys
import time

from services.launcher import ServerProcess, free_port

# A parent that forks a worker and then both sleep, like Granian's main process and its worker.
FORKING = """
import os, sys, time
child = os.fork()
if child == 0:
    time.sleep(120)
    sys.exit(0)
print(child, flush=True)
time.sleep(120)
"""


def alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_kill_takes_the_forked_workers_too(tmp_path) -> None:
    log = tmp_path / "out.log"
    server = ServerProcess("forking", [sys.executable, "-c", FORKING], dict(os.environ), free_port(), log_path=log)
    server.start()
    deadline = time.monotonic() + 20
    while not log.read_text().strip():
        assert time.monotonic() < deadline, "the forking parent did not start"
        time.sleep(0.05)
    worker = int(log.read_text().split()[0])
    assert alive(worker)
    server.kill()
    deadline = time.monotonic() + 5
    while alive(worker) and time.monotonic() < deadline:
        time.sleep(0.05)
    try:
        assert not alive(worker), "the worker outlived its SIGKILLed parent"
    finally:
        if alive(worker):
            os.kill(worker, 9)
