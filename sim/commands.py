"""Running the machine's programs for the simulation: one place that finds a
program (naming the Debian package that has it when it is missing), runs it
to its end, and turns a failure into the caller's own error type with the
program's stderr, so every sim module reports a failed command the same way."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Sequence


def need(program: str, package: str, error: type[Exception]) -> str:
    """The path of `program`, or `error` saying which Debian package has it."""
    path = shutil.which(program)
    if path is None:
        raise error(f"{program} is not on PATH (apt-get install {package})")
    return path


def run(argv: Sequence[str], *, what: str, error: type[Exception], package: str | None = None,
        stdin: str | None = None, cwd: Path | None = None) -> str:
    """Run `argv` to its end and return its stdout. A non-zero exit raises
    `error` naming `what`, the command and its stderr (its stdout when stderr
    is empty); with `package`, a missing program is named with that package."""
    if package is not None:
        need(argv[0], package, error)
    result = subprocess.run(list(argv), input=stdin, cwd=cwd, capture_output=True, text=True)
    if result.returncode != 0:
        raise error(f"{what} failed: {' '.join(argv)}: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout
