"""Drive the real `pulumi` CLI the way the README tells an instructor to,
in a copy of the project, with the file backend (`pulumi login --local`) and
PULUMI_CONFIG_PASSPHRASE, against the simulated clusters' kubeconfig."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from sim import tools

ROOT = Path(__file__).resolve().parents[2]
PROJECT_FILES = ["Pulumi.yaml", "Pulumi.ctx1.yaml", "Pulumi.ctx2.yaml", "pyproject.toml"]
PROJECT_DIRS = ["infra", "services"]
PASSPHRASE = "e2e-passphrase"
TIMINGS = ROOT / "test-artifacts" / "e2e" / "timings.json"


def record_timing(name: str, seconds: float, note: str = "") -> None:
    TIMINGS.parent.mkdir(parents=True, exist_ok=True)
    data = json.loads(TIMINGS.read_text()) if TIMINGS.exists() else {}
    data[name] = {"seconds": round(seconds, 1), "note": note}
    TIMINGS.write_text(json.dumps(data, indent=2, sort_keys=True))
    print(f"[e2e timing] {name}: {seconds:.1f}s {note}")


class PulumiFailed(AssertionError):
    def __init__(self, args: list[str], result: subprocess.CompletedProcess) -> None:
        self.result = result
        super().__init__(f"pulumi {' '.join(args)} exited {result.returncode}:\n{result.stdout[-6000:]}"
                         f"\n{result.stderr[-3000:]}")


@dataclass
class Workspace:
    """A project copy with its own PULUMI_HOME and file backend."""

    project: Path
    home: Path
    kubeconfig: Path
    logs: Path

    @classmethod
    def create(cls, base: Path, kubeconfig: Path, logs: Path, state: Path | None = None) -> Workspace:
        """`state`: a file backend to share with another Workspace (stack references
        between them work); by default one of its own under `base`."""
        project = base / "project"
        project.mkdir(parents=True)
        for name in PROJECT_FILES:
            shutil.copy2(ROOT / name, project / name)
        for name in PROJECT_DIRS:
            shutil.copytree(ROOT / name, project / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        home = base / "home"
        home.mkdir()
        logs.mkdir(parents=True, exist_ok=True)
        ws = cls(project, home, kubeconfig, logs)
        # The README's `pulumi login --local` is `file://~`, and the CLI takes ~ from the OS user
        # database, not $HOME: it would share /root/.pulumi between runs. Same file backend, own folder.
        if state is None:
            state = base / "state"
        state.mkdir(exist_ok=True)
        ws.run("login", f"file://{state}")
        return ws

    def env(self) -> dict[str, str]:
        env = tools.tool_env()
        env.update({
            "HOME": str(self.home),
            "PULUMI_HOME": str(self.home / ".pulumi"),
            "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
            "KUBECONFIG": str(self.kubeconfig),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            "PULUMI_DIY_BACKEND_NO_LEGACY_WARNING": "true",
            "NO_COLOR": "1",
            "THEATER_PYTHON": sys.executable,  # the language host runs the program in this venv
        })
        env.pop("PULUMI_BACKEND_URL", None)
        env.pop("PULUMI_ACCESS_TOKEN", None)
        return env

    def run(self, *args: str, check: bool = True, timeout: float = 900, label: str = "") -> subprocess.CompletedProcess:
        argv = [tools.locate()["pulumi"] or "pulumi", *args, "--non-interactive"]
        if args and args[0] in ("up", "preview", "destroy", "refresh"):
            argv += ["--color", "never"]
        started = time.monotonic()
        result = subprocess.run(argv, cwd=self.project, env=self.env(), capture_output=True, text=True,
                                timeout=timeout)
        elapsed = time.monotonic() - started
        name = label or "-".join(a.strip("-").replace("/", "_").replace(":", "_") for a in args[:3])
        with (self.logs / f"{name}.log").open("a") as log:
            log.write(f"$ pulumi {' '.join(args)}  ({elapsed:.1f}s, exit {result.returncode})\n")
            log.write(result.stdout)
            log.write(result.stderr)
        if check and result.returncode != 0:
            raise PulumiFailed(list(args), result)
        result.elapsed = elapsed  # type: ignore[attr-defined]
        return result

    def init_stack(self, stack: str, settings: dict[str, str], secrets: dict[str, str]) -> None:
        self.run("stack", "init", stack)
        for key, value in secrets.items():
            self.run("config", "set", "--secret", f"theater-msa:{key}", value, "--stack", stack)
        for key, value in settings.items():
            self.run("config", "set", f"theater-msa:{key}", value, "--stack", stack)

    def up(self, stack: str, check: bool = True, timeout: float = 900) -> subprocess.CompletedProcess:
        return self.run("up", "--stack", stack, "--yes", check=check, timeout=timeout, label=f"up-{stack}")

    def preview_json(self, stack: str, *extra: str) -> dict:
        result = self.run("preview", "--stack", stack, "--json", *extra, label=f"preview-{stack}")
        return json.loads(result.stdout)

    def output(self, stack: str, name: str) -> str:
        return self.run("stack", "output", name, "--stack", stack, "--show-secrets").stdout.strip()
