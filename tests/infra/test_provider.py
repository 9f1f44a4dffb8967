"""The stack's Kubernetes provider adopts objects that already exist (a
pre-created namespace, what the seed's kubectl deployment left behind)
instead of failing the first `pulumi up` with AlreadyExists, unless
`theater-msa:adoptExistingObjects` is false; and it does so with the
pulumi-kubernetes SDK it finds installed."""

from __future__ import annotations

import inspect

import pulumi_kubernetes as k8s

from infra import provider as provider_mod


def provider_inputs(run) -> dict:
    (provider,) = run.of_type("pulumi:providers:kubernetes")
    return provider.inputs


def truthy(value) -> bool:
    return value in (True, "true")


def test_adopts_existing_objects_by_default(each_stack):
    """With the installed SDK: every adoption argument it has is set. 4.25.0
    has none (it upserts with server-side apply anyway); >= 4.29 has both."""
    inputs = provider_inputs(each_stack)
    if provider_mod.provider_accepts("upsert_existing_objects"):
        assert truthy(inputs["upsertExistingObjects"])  # pulumi-kubernetes >= 4.29 needs it
    if provider_mod.provider_accepts("enable_patch_force"):
        assert truthy(inputs["enablePatchForce"])  # take over fields kubectl's field manager owns
    assert truthy(inputs["enableServerSideApply"])


def test_adoption_can_be_turned_off(run_stack):
    inputs = provider_inputs(run_stack("ctx1", adoptExistingObjects="false"))
    assert not truthy(inputs.get("enablePatchForce"))
    assert not truthy(inputs.get("upsertExistingObjects"))


def test_installed_sdk_has_the_argument_it_is_given():
    accepts = "upsert_existing_objects" in inspect.signature(k8s.ProviderArgs.__init__).parameters
    assert provider_mod.provider_accepts("upsert_existing_objects") is accepts


def test_an_sdk_without_upsert_gets_no_upsert_argument():
    """pulumi-kubernetes before 4.29 has no upsertExistingObjects (it upserts
    with server-side apply anyway); passing it would raise TypeError."""
    class OldProviderArgs:  # 4.25.0
        def __init__(self, *, context=None, kubeconfig=None, cluster_identifier=None, enable_server_side_apply=None):
            pass

    class NewProviderArgs(OldProviderArgs):  # >= 4.29
        def __init__(self, *, upsert_existing_objects=None, enable_patch_force=None, **kwargs):
            super().__init__(**kwargs)

    old = provider_mod.adoption_args(True, args_class=OldProviderArgs)
    assert old == {}
    OldProviderArgs(**old)
    new = provider_mod.adoption_args(True, args_class=NewProviderArgs)
    assert new == {"enable_patch_force": True, "upsert_existing_objects": True}
    NewProviderArgs(**new)
    assert provider_mod.adoption_args(False, args_class=NewProviderArgs) == {"enable_patch_force": False, "upsert_existing_objects": False}
