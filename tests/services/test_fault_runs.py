"""Seeded fault runs: real redis-server, real service processes (two
replicas each of movie-service and booking-service), one fault per run, and
the booking invariants checked through the API afterwards. What a run does
and checks: bench/faults.py. The same runs go on for minutes with
`uv run python -m bench --soak MINUTES`.

FAULT_RUNS (default 20) sets how many runs; FAULT_SEED (default 0) the
first seed, so a failing run is repeated with FAULT_SEED=<its seed>
FAULT_RUNS=1. Each run's line goes to test-artifacts/fault-runs.log.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from bench import faults

RUNS = int(os.environ.get("FAULT_RUNS", "20"))
FIRST_SEED = int(os.environ.get("FAULT_SEED", "0"))
LOG = Path(__file__).resolve().parents[2] / "test-artifacts" / "fault-runs.log"


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[faults.Cluster]:
    c = faults.Cluster(tmp_path_factory.mktemp("fault-cluster"))
    c.start()
    LOG.parent.mkdir(exist_ok=True)
    LOG.write_text("")
    yield c
    c.stop()


@pytest.mark.timeout(600)  # the first one starts the cluster too: slow on a busy 2-core machine
@pytest.mark.parametrize("seed", range(FIRST_SEED, FIRST_SEED + RUNS))
def test_seeded_fault_run_keeps_the_invariants(cluster: faults.Cluster, seed: int) -> None:
    result = faults.run_one(cluster, seed)
    with LOG.open("a") as log:
        log.write(result.line() + "\n")
    assert not result.violations, result.line()
    assert result.statuses.get(201, 0) > 0, "no booking succeeded: the run tested nothing"
    assert result.reconcile_s is not None and result.since_fault_s is not None
    assert result.since_fault_s <= faults.RECONCILE_LIMIT
