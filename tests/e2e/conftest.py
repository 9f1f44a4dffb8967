"""The real engines: the Pulumi CLI and Kubernetes provider against the two
simulated control planes of `theater sim` (marker `e2e`).

Locally, these tests skip with a one-line reason when the tools are not built
(`uv run theater tools build`). In CI a missing tool is a failure.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from sim import tools
from tests.e2e.stack import Workspace, record_timing

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "e2e"


# The deploy tests drive `pulumi up` end to end and need every tool.
DEPLOY_MODULES = ("test_deploy.py", "test_deploy_variants.py", "test_realpods.py")


# What the other e2e tests (doctor, verify against `theater sim`) need.
SIM_TOOLS = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok", "pulumi")


# Modules that need none of the Go-built tools (Docker, Debian's registry).
NO_TOOLS_MODULES = ("test_images.py",)


def needed_missing(item: pytest.Item) -> list[str]:
    absent = tools.missing()
    if Path(item.fspath).name in DEPLOY_MODULES:
        return absent
    if Path(item.fspath).name in NO_TOOLS_MODULES:
        return []
    return [name for name in absent if name in SIM_TOOLS]


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here not in Path(item.fspath).parents:
            continue
        absent = needed_missing(item)
        item.add_marker(pytest.mark.e2e)
        item.add_marker(pytest.mark.timeout(1800))  # a module's deployment is set up inside its first test
        if absent and os.environ.get("CI") != "true":
            item.add_marker(pytest.mark.skip(reason=f"e2e tools not built ({', '.join(absent)}): "
                                                    "uv run theater tools build"))


@pytest.fixture(autouse=True)
def _tools_present(request: pytest.FixtureRequest) -> None:
    """In CI a missing tool fails the test instead of skipping it."""
    absent = needed_missing(request.node)
    if absent and os.environ.get("CI") == "true":
        pytest.fail(f"CI: e2e tools missing ({', '.join(absent)}); .ci/run must build them", pytrace=False)


@pytest.fixture(scope="session")
def pulumi_version() -> str:
    import subprocess

    path = tools.locate()["pulumi"]
    assert path, "pulumi is not built"
    out = subprocess.run([path, "version"], capture_output=True, text=True, env=tools.tool_env(), timeout=60)
    version = out.stdout.strip()
    print(f"\n[e2e] pulumi CLI {version} ({path})")
    print(f"[e2e] pulumi-resource-kubernetes: {tools.locate()['pulumi-resource-kubernetes']}")
    record_timing("pulumi-version", 0.0, note=version)
    return version


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return ARTIFACTS


@pytest.fixture
def workspace_factory(tmp_path_factory: pytest.TempPathFactory, artifacts: Path,
                      pulumi_version: str) -> Iterator:
    made: list[Workspace] = []

    def make(name: str, kubeconfig: Path) -> Workspace:
        ws = Workspace.create(tmp_path_factory.mktemp(f"pulumi-{name}"), kubeconfig, artifacts / name)
        made.append(ws)
        return ws

    yield make
