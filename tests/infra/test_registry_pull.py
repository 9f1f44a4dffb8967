"""Private Harbor projects: the pods pull with a kubernetes.io/dockerconfigjson
Secret made from the registry credentials, attached to every ServiceAccount
that runs a pod; a setting turns it off for public projects."""

from __future__ import annotations

import base64
import json

import pytest

from infra import mockrun
from infra.config import ConfigError
from services import catalog

NS = catalog.NAMESPACE
REGISTRY = "harbor.203.0.113.10.nip.io"


def pod_accounts(run: mockrun.RunResult) -> set[str]:
    return {d.manifest["spec"]["template"]["spec"]["serviceAccountName"] for d in run.find("Deployment")}


def dockerconfig(run: mockrun.RunResult) -> dict:
    secret = run.one("Secret", "registry-pull", NS)
    assert secret.manifest["type"] == "kubernetes.io/dockerconfigjson"
    assert mockrun.is_secret(secret.inputs["stringData"]), "the credentials are not a Pulumi secret"
    return json.loads(secret.manifest["stringData"][".dockerconfigjson"])


def test_pull_secret_from_the_registry_credentials(each_stack):
    auths = dockerconfig(each_stack)["auths"]
    assert set(auths) == {REGISTRY}
    entry = auths[REGISTRY]
    assert entry["username"] == "admin" and entry["password"] == mockrun.DUMMY_SECRET
    assert base64.b64decode(entry["auth"]).decode() == f"admin:{mockrun.DUMMY_SECRET}"
    accounts = {sa.meta_name: sa.manifest for sa in each_stack.find("ServiceAccount")}
    used = pod_accounts(each_stack)
    assert "redis" in used and len(used) >= 3
    for name in used:
        assert accounts[name]["imagePullSecrets"] == [{"name": "registry-pull"}], name
    # The dashboard account runs no pod and needs no registry access.
    for name in set(accounts) - used:
        assert "imagePullSecrets" not in accounts[name]


def test_pull_only_robot_account(run_stack):
    run = run_stack("ctx2", pullUsername="robot$theater-msa+pull", pullPassword="robot-token", registry="registry.example.test")
    entry = dockerconfig(run)["auths"]["registry.example.test"]
    assert entry["username"] == "robot$theater-msa+pull" and entry["password"] == "robot-token"
    assert base64.b64decode(entry["auth"]).decode() == "robot$theater-msa+pull:robot-token"


def test_public_project_needs_no_pull_secret(run_stack):
    run = run_stack("ctx1", imagePullSecret="false")
    assert run.find("Secret", "registry-pull") == []
    assert all("imagePullSecrets" not in sa.manifest for sa in run.find("ServiceAccount"))


def test_pull_secret_needs_a_password(ui_dir, no_harbor_password):
    with pytest.raises(ConfigError) as err:
        mockrun.run("ctx1", mockrun.example({"buildImages": "false"}), ui_dir=ui_dir)
    assert "theater-msa:pullPassword" in str(err.value) and "theater-msa:imagePullSecret" in str(err.value)
    run = mockrun.run("ctx1", mockrun.example({"buildImages": "false", "pullPassword": "robot-token"}), ui_dir=ui_dir)
    assert run.find("Secret", "registry-pull")
    run = mockrun.run("ctx1", mockrun.example({"buildImages": "false", "imagePullSecret": "false"}), ui_dir=ui_dir)
    assert run.find("Secret", "registry-pull") == []
