"""Fixtures for the infra tests: the Pulumi program run once per stack
under mocks (infra/mockrun.py), with fake UI files and a fake kubeconfig so
that nothing outside the repo and nothing under services/ui is needed."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

import pytest
import yaml

from infra import mockrun
from services import catalog

TEST_API_SERVER = "https://ctx2.example.test:6443"


@pytest.fixture(scope="session")
def ui_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("ui")
    for name in catalog.UI_FILES:
        (d / name).write_text(f"/* test copy of {name} */\n")
    return d


@pytest.fixture(scope="session", autouse=True)
def fake_kubeconfig(tmp_path_factory: pytest.TempPathFactory):
    """A kubeconfig with contexts ctx1/ctx2, so the ctx2 stack finds its API server."""
    path = tmp_path_factory.mktemp("kube") / "config"
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": f"cl-{c}", "cluster": {"server": TEST_API_SERVER if c == "ctx2" else "https://ctx1.example.test:6443"}}
                     for c in catalog.CLUSTERS],
        "contexts": [{"name": c, "context": {"cluster": f"cl-{c}", "user": "u"}} for c in catalog.CLUSTERS],
        "users": [{"name": "u", "user": {"token": "t"}}],
    }))
    mp = pytest.MonkeyPatch()
    mp.setenv("KUBECONFIG", str(path))
    yield path
    mp.undo()


Runner = Callable[..., mockrun.RunResult]


@pytest.fixture(scope="session")
def run_stack(ui_dir: Path, fake_kubeconfig: Path) -> Runner:
    """run_stack(stack, **overrides): cached per (stack, overrides)."""
    cache: dict[str, mockrun.RunResult] = {}

    def run(stack: str, remote_outputs: dict[str, dict[str, Any]] | None = None, **overrides: Any) -> mockrun.RunResult:
        key = json.dumps([stack, remote_outputs, overrides], sort_keys=True, default=str)
        if key not in cache:
            cache[key] = mockrun.run(stack, mockrun.example(overrides), remote_outputs=remote_outputs, ui_dir=ui_dir)
        return cache[key]

    return run


@pytest.fixture(scope="session")
def ctx1(run_stack: Runner) -> mockrun.RunResult:
    return run_stack("ctx1")


@pytest.fixture(scope="session")
def ctx2(run_stack: Runner) -> mockrun.RunResult:
    return run_stack("ctx2")


@pytest.fixture(scope="session", params=list(catalog.CLUSTERS))
def each_stack(request: pytest.FixtureRequest, run_stack: Runner) -> mockrun.RunResult:
    return run_stack(request.param)


@pytest.fixture
def no_harbor_password(monkeypatch: pytest.MonkeyPatch) -> None:
    """Stacks without theater-msa:harborPassword (mockrun otherwise sets a dummy one)."""
    real = mockrun.stack_config

    def without_password(stack, overrides=None, root=mockrun.REPO_ROOT):
        config, secret = real(stack, overrides, root)
        config.pop("theater-msa:harborPassword")
        return config, secret

    monkeypatch.setattr(mockrun, "stack_config", without_password)

