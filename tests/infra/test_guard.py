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


def test_every_kubernetes_resource_has_the_explicit_provider(each_stack):
    (provider,) = each_stack.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["context"] == each_stack.stack
    assert provider.inputs["clusterIdentifier"] == each_stack.stack
    k8s = [r for r in each_stack.resources if r.is_kubernetes]
    assert len(k8s) > 20
    missing = [f"{r.type} {r.name}" for r in k8s if not (r.provider or "").startswith("urn:") or "::k8s-" not in r.provider]
    assert missing == []
    assert {r.provider.split("::")[-2] for r in k8s} == {f"k8s-{each_stack.stack}"}


def test_guard_catches_a_missing_provider():
    """The guard's predicate flags a resource registered without a provider."""
    bare = mockrun.Declared("kubernetes:core/v1:ConfigMap", "x", {}, None)
    assert not (bare.provider or "").startswith("urn:")


def test_kubeconfig_setting_reaches_provider(run_stack, fake_kubeconfig):
    run = run_stack("ctx2", kubeconfig=str(fake_kubeconfig))
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    assert provider.inputs["kubeconfig"] == str(fake_kubeconfig)
