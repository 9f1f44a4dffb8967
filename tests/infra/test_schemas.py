"""Every object the stacks declare passes the Kubernetes 1.30 OpenAPI schema
(kubernetes-validate, strict) or Istio's CRD schema with unknown fields
rejected (vendored in tests/infra/schemas/)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest

from infra import mockrun
from services import catalog

SCHEMAS = Path(__file__).resolve().parent / "schemas"


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


def load_istio_schemas() -> dict[tuple[str, str], Any]:
    out = {}
    for path in SCHEMAS.glob("istio-*.json"):
        doc = json.loads(path.read_text())
        assert "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c" in doc["origin"]
        schema = closed(copy.deepcopy(doc["openAPIV3Schema"]))
        out[(doc["apiVersion"], doc["kind"])] = schema
    return out


ISTIO = load_istio_schemas()


def test_vendored_schemas_present():
    kinds = {k for _, k in ISTIO}
    assert kinds == {"VirtualService", "DestinationRule", "PeerAuthentication", "AuthorizationPolicy"}


def validate_istio(manifest: dict) -> None:
    key = (manifest["apiVersion"], manifest["kind"])
    assert key in ISTIO, f"no vendored schema for {key}"
    assert set(manifest) <= {"apiVersion", "kind", "metadata", "spec"}
    assert manifest["metadata"]["name"] and manifest["metadata"]["namespace"]
    jsonschema.validate({"spec": manifest.get("spec", {})}, ISTIO[key], cls=jsonschema.Draft7Validator)


def test_istio_validator_rejects_unknown_and_bad_fields():
    good = {"apiVersion": "networking.istio.io/v1", "kind": "DestinationRule",
            "metadata": {"name": "x", "namespace": "y"}, "spec": {"host": "x"}}
    validate_istio(good)
    with pytest.raises(jsonschema.ValidationError):
        validate_istio({**good, "spec": {"host": "x", "trafficPolicy": {"conectionPool": {}}}})
    with pytest.raises(jsonschema.ValidationError):
        validate_istio({**good, "spec": {"host": "x", "trafficPolicy": {"loadBalancer": {"simple": "FASTEST"}}}})


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
]


@pytest.mark.parametrize("stack,overrides", VARIANTS, ids=lambda v: v if isinstance(v, str) else ",".join(v) or "default")
def test_every_object_validates(run_stack, stack, overrides):
    remote = {"organization/theater-msa/ctx2": {"dashboardKubeconfig": "apiVersion: v1\n"}} if "remoteStatusStack" in overrides else None
    run = run_stack(stack, remote_outputs=remote, **overrides)
    assert len(run.objects) > 20
    checked = 0
    for obj in run.objects:
        manifest = obj.manifest
        if obj.type.split(":")[1].endswith("istio.io/v1"):
            validate_istio(manifest)
        else:
            kubernetes_validate.validate(manifest, "1.30", strict=True)
        checked += 1
    assert checked == len(run.objects)


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
