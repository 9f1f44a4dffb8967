"""`uv run python -m bench --soak MINUTES [--seed N]`: the fault runs of
bench/faults.py (the same as tests/services/test_fault_runs.py), one after
another on one cluster for MINUTES, then the counts: runs per fault,
answers, bookings, invariant violations and reconcile times."""

from __future__ import annotations

import random
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

from bench import faults


def soak(minutes: float, seed: int | None = None, progress=print) -> int:  # type: ignore[no-untyped-def]
    first = seed if seed is not None else random.randrange(1_000_000)
    progress(f"soak: {minutes:g} min of fault runs from seed {first} (repeat one: FAULT_SEED=<seed> FAULT_RUNS=1 uv run pytest tests/services/test_fault_runs.py)")
    results: list[faults.RunResult] = []
    with tempfile.TemporaryDirectory(prefix="theater-soak-") as tmp:
        cluster = faults.Cluster(Path(tmp))
        t0 = time.monotonic()
        cluster.start()
        progress(f"cluster up in {time.monotonic() - t0:.0f} s")
        end = time.monotonic() + minutes * 60
        try:
            s = first
            while time.monotonic() < end:
                result = faults.run_one(cluster, s)
                results.append(result)
                progress(result.line())
                s += 1
        finally:
            cluster.stop()
    per_fault = Counter(r.fault for r in results)
    answers: Counter = Counter()
    for r in results:
        answers.update(r.statuses)
    bad = [r for r in results if r.violations]
    times = [r.since_fault_s for r in results if r.since_fault_s is not None]
    quiet = [r.reconcile_s for r in results if r.reconcile_s is not None]
    print()
    print(f"runs: {len(results)}  ({', '.join(f'{f} {n}' for f, n in sorted(per_fault.items()))})")
    print(f"answers: {' '.join(f'{k}:{v}' for k, v in sorted(answers.items()))}")
    print(f"bookings listed: {sum(r.listed for r in results)} (confirmed {sum(r.confirmed for r in results)}, cancelled {sum(r.cancelled for r in results)})")
    if times:
        print(
            f"invariants held again after the fault ended: median {statistics.median(times):.1f} s, max {max(times):.1f} s; "
            f"after the clients' last retry: median {statistics.median(quiet):.1f} s, max {max(quiet):.1f} s"
        )
    print(f"runs with a violated invariant: {len(bad)}")
    for r in bad:
        print("  " + r.line())
    return 1 if bad else 0
