"""How long one stack's Pulumi program takes under mocks (infra/mockrun.py,
the same runner `theater render` uses): what the program itself adds to
every `pulumi preview`/`up` (the CLI, the engine and the providers add more).

Each run is a fresh Python process, as under the Pulumi CLI, so imports
count; the in-process program time and a warm re-run are reported too.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# Runs in a fresh interpreter; prints one JSON line.
_CHILD = r"""
import json, sys, tempfile, time
from pathlib import Path
t0 = time.perf_counter()
from infra import mockrun
from infra.render import PLACEHOLDER_API_SERVER
from services import catalog
t1 = time.perf_counter()
stack = sys.argv[1]
kwargs = {}
note = None
missing = [f for f in catalog.UI_FILES if not (catalog.UI_DIR / f).exists()]
if missing:
    tmp = Path(tempfile.mkdtemp(prefix="bench-ui-"))
    for f in catalog.UI_FILES:
        (tmp / f).write_text("<!-- placeholder -->\n")
    kwargs["ui_dir"] = tmp
    note = "services/ui files missing: placeholder UI files used"
overrides = mockrun.example({"dashboardApiServer": PLACEHOLDER_API_SERVER})
result = mockrun.run(stack, overrides, **kwargs)
t2 = time.perf_counter()
mockrun.run(stack, overrides, **kwargs)
t3 = time.perf_counter()
print(json.dumps({"import_s": t1 - t0, "program_s": t2 - t1, "warm_s": t3 - t2,
                  "resources": len(result.resources), "objects": len(result.objects), "note": note}))
"""


def time_program(runs: int, progress: Callable[[str], None] = print, stacks: tuple[str, ...] = ("ctx1", "ctx2")) -> dict:
    try:
        import infra.mockrun  # noqa: F401
    except ImportError as exc:
        return {"skipped": f"infra/mockrun.py not importable: {exc}"}
    out: dict = {"runs": runs, "stacks": {}}
    for stack in stacks:
        samples = []
        for _ in range(runs):
            t = time.perf_counter()
            proc = subprocess.run([sys.executable, "-c", _CHILD, stack], capture_output=True, text=True, cwd=ROOT, timeout=120)
            wall = time.perf_counter() - t
            if proc.returncode != 0:
                err = (proc.stderr.strip().splitlines() or ["?"])[-1]
                out["stacks"][stack] = {"error": err}
                progress(f"pulumi {stack}: program failed under mocks: {err}")
                break
            sample = json.loads(proc.stdout.strip().splitlines()[-1])
            sample["process_s"] = wall
            samples.append(sample)
        else:
            med = {k: statistics.median(s[k] for s in samples) for k in ("process_s", "import_s", "program_s", "warm_s")}
            out["stacks"][stack] = {
                **{k: round(v, 3) for k, v in med.items()},
                "resources": samples[0]["resources"],
                "objects": samples[0]["objects"],
                "note": samples[0]["note"],
            }
            progress(
                f"pulumi {stack}: median of {runs}: {med['process_s']:.2f} s per fresh process "
                f"(imports {med['import_s']:.2f} s, program {med['program_s']:.2f} s, warm re-run {med['warm_s']:.2f} s), "
                f"{samples[0]['resources']} resources"
            )
    return out
