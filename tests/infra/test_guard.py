"""Every Kubernetes resource uses the stack's explicit provider, and the
default provider is disabled in Pulumi.yaml."""

from __future__ import annotations

from pathlib import Path

import yaml

from infra import mockrun

ROOT = Path(__file__).resolve().parents[2]


def test_default_kubernetes_provider_disabled():
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["config"]["pulumi:disable-default-providers"]["value"] == ["kubernetes"]


def without_explicit_provider(run: mockrun.RunResult) -> list[str]:
    """The guard: Kubernetes resources not registered with the stack's k8s-<stack> provider."""
    k8s = [r for r in run.resources if r.is_kubernetes]
    return [f"{r.type} {r.name}" for r in k8s if not (r.provider or "").startswith("urn:") or "::k8s-" not in r.provider]


def test_every_kubernetes_resource_has_the_explicit_provider(each_stack):
    (provider,) = each_stack.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == each_stack.stack
    assert provider.inputs["clusterIdentifier"] == each_stack.stack
    k8s = [r for r in each_stack.resources if r.is_kubernetes]
    assert len(k8s) > 20
    missing = without_explicit_provider(each_stack)
    assert missing == []
    assert {r.provider.split("::")[-2] for r in k8s} == {f"k8s-{each_stack.stack}"}


BARE_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

explicit = k8s.Provider("k8s-ctx1", context="ctx1")
k8s.core.v1.ConfigMap("with-provider", data={"a": "b"}, opts=pulumi.ResourceOptions(provider=explicit))
k8s.core.v1.ConfigMap("bare", data={"a": "b"})
another = k8s.Provider("another", context="ctx1")
k8s.core.v1.ConfigMap("another-provider", data={"a": "b"}, opts=pulumi.ResourceOptions(provider=another))
"""


def test_guard_catches_a_missing_provider(tmp_path):
    """The guard, run on a real program under the same mocks, flags the
    resource declared without a provider and the one declared with some
    other provider, and only those."""
    program = tmp_path / "bare.py"
    program.write_text(BARE_PROGRAM)
    run = mockrun.run("ctx1", program=program)
    # Sorted: the two register concurrently, in either order.
    assert sorted(without_explicit_provider(run)) == [
        "kubernetes:core/v1:ConfigMap another-provider", "kubernetes:core/v1:ConfigMap bare"]


def test_kubeconfig_setting_reaches_provider(run_stack, fake_kubeconfig):
    run = run_stack("ctx2", kubeconfig=str(fake_kubeconfig))
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == str(fake_kubeconfig)
