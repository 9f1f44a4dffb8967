"""Every label value the stacks declare is one the API server accepts
(at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends), for
every allowed input, including image references and versions the user types."""

from __future__ import annotations

import re
from typing import Any, Iterator

import pytest

from infra import mockrun
from infra import names
from services import catalog

LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
DIGEST = "sha256:" + "0123456789abcdef" * 4


def label_maps(manifest: dict[str, Any]) -> Iterator[tuple[str, dict]]:
    """Every map of label values in a manifest, with where it was found."""
    def walk(node: Any, path: str) -> Iterator[tuple[str, dict]]:
        if isinstance(node, dict):
            for key, value in node.items():
                here = f"{path}.{key}"
                if key in ("labels", "matchLabels") and isinstance(value, dict):
                    yield here, value
                else:
                    yield from walk(value, here)
        elif isinstance(node, list):
            for i, value in enumerate(node):
                yield from walk(value, f"{path}[{i}]")
    yield from walk(manifest, "")


def bad_label_values(run: mockrun.RunResult) -> list[str]:
    bad = []
    for obj in run.objects:
        for where, labels in label_maps(obj.manifest):
            for key, value in labels.items():
                if not isinstance(value, str) or len(value) > 63 or not LABEL_VALUE.match(value):
                    bad.append(f"{obj.kind} {obj.meta_name} {where}.{key}={value!r}")
    return bad


@pytest.mark.parametrize("overrides", [
    {},
    {"redisImage": f"redis@{DIGEST}"},
    {"redisImage": "harbor.example.test:5000/library/redis"},
    {"redisImage": f"harbor.example.test:5000/library/redis:7.4-alpine@{DIGEST}"},
    {"serviceVersion": "Release 2024/11+build.7_" + "x" * 60},
    {"serviceVersion": "-v1-"},
], ids=["default", "digest", "host-port-no-tag", "tag-and-digest", "long-version-with-slash", "dashes"])
@pytest.mark.parametrize("stack", catalog.CLUSTERS)
def test_every_label_value_is_valid(run_stack, stack, overrides):
    run = run_stack(stack, **overrides)
    assert run.find("Deployment")
    assert bad_label_values(run) == []


def test_the_checker_sees_a_bad_label():
    obj = mockrun.Declared("kubernetes:apps/v1:Deployment", "x", {
        "kind": "Deployment", "metadata": {"name": "x", "labels": {"version": "a/b"}},
        "spec": {"template": {"metadata": {"labels": {"version": "x" * 64}}}}}, None)
    run = mockrun.RunResult("ctx1", {}, [obj])
    assert len(bad_label_values(run)) == 2


@pytest.mark.parametrize("ref,expected", [
    ("redis:7.4-alpine", "7.4-alpine"),
    (f"redis@{DIGEST}", "sha256-0123456789ab"),
    ("harbor.example.test:5000/library/redis", "latest"),
    (f"harbor.example.test:5000/library/redis:7.4@{DIGEST}", "7.4"),
    ("redis", "latest"),
])
def test_image_version(ref, expected):
    assert names.image_version(ref) == expected


@pytest.mark.parametrize("text,expected", [
    ("v1", "v1"),
    ("Release 2024/11+b", "Release-2024-11-b"),
    ("-v1-", "v1"),
    ("x" * 70, "x" * 63),
    ("a" * 62 + "/b", "a" * 62),
    ("///", "unknown"),
])
def test_label_value(text, expected):
    assert names.label_value(text) == expected
    assert LABEL_VALUE.match(names.label_value(text))


def test_redis_version_label_from_the_tag(run_stack):
    run = run_stack("ctx1", redisImage=f"redis@{DIGEST}")
    labels = run.one("Deployment", "redis", catalog.NAMESPACE).manifest["spec"]["template"]["metadata"]["labels"]
    assert labels["version"] == "sha256-0123456789ab"


def test_service_version_env_keeps_the_raw_value(run_stack):
    run = run_stack("ctx2", serviceVersion="2024/11")
    dep = run.one("Deployment", "movie-service", catalog.NAMESPACE).manifest
    assert dep["spec"]["template"]["metadata"]["labels"]["version"] == "2024-11"
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert env["SERVICE_VERSION"] == "2024/11"


@pytest.mark.parametrize("revision", ["1.24/canary", "canary-", "x" * 64])
def test_istio_revision_must_be_a_label_value(ui_dir, revision):
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as err:
        mockrun.run("ctx1", mockrun.example({"istioRevision": revision}), ui_dir=ui_dir)
    assert "theater-msa:istioRevision" in str(err.value)
