"""A virtualenv with only the services' runtime dependencies, as the container
image installs them (`uv sync --no-default-groups`, services/Dockerfile).

Why: the dev environment also holds the infra/dev/bench groups, and some
runtime libraries import optional packages when they are present (redis-py 8,
which the services used until issue 16, imported the OpenTelemetry SDK that
pulumi pulls in: about 9 MiB of RSS per process). Memory figures that set Kubernetes requests should come from what
the image runs. Created once under bench/out/runtime-venv with uv, and again
when uv.lock changes.
"""

from __future__ import annotations

import hashlib
import platform
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / "bench" / "out" / "runtime-venv"


def ensure(progress: Callable[[str], None]) -> tuple[str | None, str]:
    """(python path, how) of the runtime-only venv; (None, why) if it cannot be made."""
    uv = shutil.which("uv")
    if not uv:
        return None, "uv not found on PATH"
    lock = (ROOT / "uv.lock").read_bytes()
    stamp = hashlib.sha256(lock).hexdigest()
    python = VENV / "bin" / "python"
    stamp_file = VENV / ".uv-lock-sha256"
    if python.exists() and stamp_file.exists() and stamp_file.read_text() == stamp:
        return str(python), "runtime dependencies only (bench/out/runtime-venv, as in the image)"
    progress("creating bench/out/runtime-venv: the runtime dependencies only, as the image installs them")
    reqs = VENV.parent / "runtime-requirements.txt"
    VENV.parent.mkdir(parents=True, exist_ok=True)
    steps = [
        [uv, "export", "--frozen", "--no-default-groups", "--no-hashes", "--no-emit-project", "-q", "-o", str(reqs)],
        [uv, "venv", "-q", "--clear", str(VENV), "--python", platform.python_version()],
        [uv, "pip", "install", "-q", "--python", str(python), "-r", str(reqs)],
    ]
    for cmd in steps:
        try:
            proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            return None, f"{' '.join(cmd[:3])} failed: {exc}"
        if proc.returncode != 0:
            return None, f"{' '.join(cmd[:3])} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}"
    stamp_file.write_text(stamp)
    return str(python), "runtime dependencies only (bench/out/runtime-venv, as in the image)"
