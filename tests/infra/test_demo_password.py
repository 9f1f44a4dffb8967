"""theater-msa:demoPassword: the gateway's pod reads the shared demo password
from a Secret the stack creates; without the setting the app stays open and
nothing about a password is declared."""

from __future__ import annotations

from infra import mockrun
from services import catalog

NS = catalog.NAMESPACE


def gateway_env(run: mockrun.RunResult) -> dict[str, dict]:
    deploy = run.one("Deployment", catalog.GATEWAY.name, NS)
    container = next(c for c in deploy.manifest["spec"]["template"]["spec"]["containers"]
                     if c["name"] == catalog.GATEWAY.name)
    return {e["name"]: e for e in container.get("env", [])}


def test_the_password_reaches_the_gateway_through_a_secret(run_stack):
    run = run_stack("ctx1", demoPassword="class-2026")
    secret = run.one("Secret", "demo-password", NS)
    assert secret.manifest["stringData"]["password"] == "class-2026"
    assert mockrun.is_secret(secret.inputs["stringData"]), "the password is not a Pulumi secret"
    ref = gateway_env(run)["DEMO_PASSWORD"]
    assert "value" not in ref  # never in the pod spec itself
    assert ref["valueFrom"]["secretKeyRef"] == {"name": "demo-password", "key": "password"}


def test_without_the_setting_the_app_is_open(run_stack):
    run = run_stack("ctx1")
    assert run.find("Secret", "demo-password") == []
    assert "DEMO_PASSWORD" not in gateway_env(run)
