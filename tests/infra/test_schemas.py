"""Every object the stacks declare passes the Kubernetes 1.30 OpenAPI schema
(kubernetes-validate, strict) or, for Istio objects, the CRD schema of the
version it names, with unknown fields rejected, in an old and a current Istio
release: the version must be served by both. The CRDs are Istio's own
crd-all.gen.yaml files vendored in sim/istio/ (the simulated clusters install
the same files)."""

from __future__ import annotations

import copy
import functools
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml

from infra import mockrun
from services import catalog

ROOT = Path(__file__).resolve().parents[2]
# Release -> Istio's crd-all.gen.yaml of that release.
ISTIO_RELEASES = {
    "1.20.0": ROOT / "sim" / "istio" / "crds-1.20.0.yaml",
    "current": ROOT / "sim" / "istio" / "crds-current.yaml",
}
ISTIO_KINDS = {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}


class NotServed(AssertionError):
    """The release has no served version of this apiVersion and kind."""


def closed(schema: Any) -> Any:
    """Add additionalProperties: false to every object schema that declares
    properties and does not preserve unknown fields."""
    if isinstance(schema, dict):
        out = {k: closed(v) for k, v in schema.items()}
        if "properties" in schema and not schema.get("x-kubernetes-preserve-unknown-fields") and "additionalProperties" not in schema:
            out["additionalProperties"] = False
        return out
    if isinstance(schema, list):
        return [closed(v) for v in schema]
    return schema


@functools.cache
def istio_crds(release: str) -> dict[tuple[str, str], dict[str, Any]]:
    """(group, kind) -> {version name: the CRD's version entry} for one release."""
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for doc in yaml.load_all(ISTIO_RELEASES[release].read_text(), Loader=yaml.CSafeLoader):
        if doc and doc.get("kind") == "CustomResourceDefinition":
            spec = doc["spec"]
            out[(spec["group"], spec["names"]["kind"])] = {v["name"]: v for v in spec["versions"]}
    return out


@functools.cache
def served_schema(release: str, api_version: str, kind: str) -> dict:
    group, _, version = api_version.partition("/")
    versions = istio_crds(release).get((group, kind))
    if versions is None:
        raise NotServed(f"Istio {release} has no CRD for {kind} in {group}")
    entry = versions.get(version)
    if entry is None or not entry.get("served"):
        served = sorted(v for v, e in versions.items() if e.get("served"))
        raise NotServed(f"Istio {release} does not serve {kind} {api_version} (serves {', '.join(served)})")
    return closed(copy.deepcopy(entry["schema"]["openAPIV3Schema"]))


def test_istio_releases_vendored():
    for release in ISTIO_RELEASES:
        crds = istio_crds(release)
        assert {kind for (group, kind) in crds if group.endswith(".istio.io")} >= ISTIO_KINDS
    # The old release really is old: VirtualService v1 came with 1.22.
    assert "v1" not in istio_crds("1.20.0")[("networking.istio.io", "VirtualService")]
    assert istio_crds("current")[("networking.istio.io", "VirtualService")]["v1"]["served"]


def validate_istio(manifest: dict, release: str) -> None:
    schema = served_schema(release, manifest["apiVersion"], manifest["kind"])
    assert set(manifest) <= {"apiVersion", "kind", "metadata", "spec"}
    assert manifest["metadata"]["name"] and manifest["metadata"]["namespace"]
    jsonschema.validate({"spec": manifest.get("spec", {})}, schema, cls=jsonschema.Draft7Validator)


@pytest.mark.parametrize("release", ISTIO_RELEASES)
def test_istio_validator_rejects_unknown_and_bad_fields(release):
    good = {"apiVersion": "networking.istio.io/v1beta1", "kind": "DestinationRule",
            "metadata": {"name": "x", "namespace": "y"}, "spec": {"host": "x"}}
    validate_istio(good, release)
    with pytest.raises(jsonschema.ValidationError):
        validate_istio({**good, "spec": {"host": "x", "trafficPolicy": {"conectionPool": {}}}}, release)
    with pytest.raises(jsonschema.ValidationError):
        validate_istio({**good, "spec": {"host": "x", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}}, release)


def test_istio_validator_rejects_a_version_the_release_does_not_serve():
    manifest = {"apiVersion": "networking.istio.io/v1", "kind": "VirtualService",
                "metadata": {"name": "x", "namespace": "y"}, "spec": {"hosts": ["x"]}}
    validate_istio(manifest, "current")
    with pytest.raises(NotServed, match="does not serve VirtualService networking.istio.io/v1"):
        validate_istio(manifest, "1.20.0")


def test_kubernetes_validator_is_strict():
    bad = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"ports": [{"port": 1, "nmae": "x"}]}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, "1.30", strict=True)


VARIANTS = [
    ("ctx1", {}),
    ("ctx2", {}),
    ("ctx2", {"redisStorageClass": "local-path", "istioRevision": "1-24"}),
    ("ctx1", {"faults": '{"movie-service": {"delay": "3s", "percent": 50}, "booking-service": {"abort": 503}}',
              "tightCircuitBreaking": '["user-service"]', "buildImages": "false",
              "remoteStatusStack": "organization/theater-msa/ctx2"}),
    # The canary, A/B and failover lessons: subsets, weights, header and cookie matches,
    # localityLbSetting, the Redis sourceLabels route, the v2 Deployment.
    ("ctx1", {"v2Cluster": "ctx1", "canary": '{"v1": 80, "v2": 20}', "failover": "true",
              "abTest": '{"header": "x-theater-group", "value": "beta"}'}),
    ("ctx2", {"v2Cluster": "ctx1", "abTest": '{"cookie": "theater-group", "value": "beta"}', "failover": "true"}),
    ("ctx2", {"v2Cluster": "ctx2", "canary": '{"v1": 0, "v2": 100}'}),
]


@pytest.mark.parametrize("release", ISTIO_RELEASES)
@pytest.mark.parametrize("stack,overrides", VARIANTS, ids=lambda v: v if isinstance(v, str) else ",".join(v) or "default")
def test_every_object_validates(run_stack, stack, overrides, release):
    remote = {"organization/theater-msa/ctx2": {"dashboardKubeconfig": "apiVersion: v1\n"}} if "remoteStatusStack" in overrides else None
    run = run_stack(stack, remote_outputs=remote, **overrides)
    assert len(run.objects) > 20
    istio = 0
    for obj in run.objects:
        manifest = obj.manifest
        if manifest["apiVersion"].split("/")[0].endswith(".istio.io"):
            validate_istio(manifest, release)
            istio += 1
        else:
            kubernetes_validate.validate(manifest, "1.30", strict=True)
    assert istio == len(run.find("VirtualService") + run.find("DestinationRule")
                        + run.find("PeerAuthentication") + run.find("AuthorizationPolicy")) > 10


def test_v1_objects_need_istio_1_22(run_stack):
    """With istioApiVersion v1 the objects validate against today's Istio,
    and the 1.20 release refuses them as not served."""
    run = run_stack("ctx1", istioApiVersion="v1")
    vs = run.one("VirtualService", "theater-msa", "istio-system").manifest
    validate_istio(vs, "current")
    with pytest.raises(NotServed):
        validate_istio(vs, "1.20.0")


def test_no_latest_tags_and_no_uid_1337(each_stack):
    for dep in each_stack.find("Deployment"):
        pod = dep.manifest["spec"]["template"]["spec"]
        for c in pod["containers"]:
            assert not c["image"].endswith(":latest") and ":" in c["image"].split("/")[-1] or "@sha256:" in c["image"]
            assert c["securityContext"]["runAsUser"] != 1337
        for port in (p["containerPort"] for c in pod["containers"] for p in c["ports"]):
            assert port not in {15000, 15001, 15004, 15006, 15008, 15009, 15020, 15021, 15053, 15090}


def test_mocks_see_camel_case(ctx1):
    dep = ctx1.one("Deployment", catalog.GATEWAY.name, catalog.NAMESPACE).manifest
    text = json.dumps(dep)
    assert "match_labels" not in text and "matchLabels" in text
    assert mockrun.unwrap({"a": 2.0}) == {"a": 2}
