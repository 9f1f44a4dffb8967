"""Composition root of the theater-msa Pulumi program (one stack per cluster).

Reads the stack configuration once (infra/config.py), then wires the
components. `pulumi up --stack ctx1`, `pulumi up --stack ctx2`; the same
program runs under mocks in tests/infra and in `theater render`.
"""

from __future__ import annotations

import sys
from pathlib import Path

try:
    import services.catalog  # noqa: F401  (installed by `uv sync`)
except ImportError:  # pragma: no cover - the project is not installed
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pulumi

from infra.program import build

build()

__all__: list[str] = []
_ = pulumi  # the runtime is configured by the CLI (or by infra/mockrun.py)
