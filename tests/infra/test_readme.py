"""README §5 (deploy) agrees with the program: every setting it names exists
and the settings table lists them all, each lesson command targets a stack
whose sidecars apply it, and the steps a first deploy needs are there."""

from __future__ import annotations

import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from infra.settings import SETTINGS, SETTINGS_BY_KEY
from infra.istio.traffic import edge_services
from services import catalog

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
LESSON_KEYS = ("faults", "routePolicies", "tightCircuitBreaking")


def section(title_prefix: str) -> str:
    """From the heading that starts with `title_prefix` to the next heading of its level or higher."""
    text = README.read_text()
    start = text.index(title_prefix)
    level = len(title_prefix) - len(title_prefix.lstrip("#"))
    nxt = re.search(rf"^#{{2,{level}}} ", text[start + len(title_prefix):], re.M)
    return text[start:start + len(title_prefix) + (nxt.start() if nxt else len(text))]


def test_every_setting_named_in_the_readme_exists():
    named = set(re.findall(r"theater-msa:([A-Za-z][A-Za-z0-9]*)", README.read_text()))
    assert named and named <= set(SETTINGS_BY_KEY), named - set(SETTINGS_BY_KEY)


def test_settings_table_lists_every_setting():
    table = section("### 5.5")
    listed = {k for row in re.findall(r"^\| (`[^|]+) \|", table, re.M) for k in re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", row)}
    assert listed == {s.key for s in SETTINGS}


def clients(service: str, stack: str) -> set[str]:
    """Whose sidecars in `stack`'s cluster call `service` (default placement)."""
    placement = catalog.default_placement()
    out = {s.name for s in catalog.SERVICES.values() if service in s.calls and placement[s.name] == stack}
    if stack == SETTINGS_BY_KEY["ingressCluster"].default and service in edge_services():
        out.add("istio-ingressgateway")
    return out


def lesson_commands() -> list[tuple[str, list[str], str]]:
    """(key, services, stack) of every `pulumi config set` of a lesson in §5.6."""
    found = []
    for line in section("### 5.6").splitlines():
        if not line.startswith("pulumi config set"):
            continue
        words = shlex.split(line.split(" && ")[0])
        stack = words[words.index("--stack") + 1]
        key_word = next(w for w in words if w.startswith("theater-msa:"))
        key = re.match(r"theater-msa:([A-Za-z][A-Za-z0-9]*)", key_word).group(1)
        if key not in LESSON_KEYS:
            continue
        value = words[words.index(key_word) + 1]
        services = [value] if "[" in key_word else list(json.loads(value))
        found.append((key, services, stack))
    return found


def test_lessons_go_on_the_stack_whose_sidecars_apply_them():
    commands = lesson_commands()
    assert {key for key, _, _ in commands} == set(LESSON_KEYS)
    for key, services, stack in commands:
        for service in services:
            assert clients(service, stack), f"{key} for {service} on --stack {stack}: no caller of {service} runs there"


def test_the_checker_knows_where_callers_run():
    assert clients("movie-service", "ctx2") == {"booking-service"}
    assert clients("booking-service", "ctx2") == set()
    assert clients("booking-service", "ctx1") == {"api-gateway", "istio-ingressgateway"}


@pytest.mark.parametrize("needle", [
    "PULUMI_CONFIG_PASSPHRASE",           # pulumi login --local needs a passphrase
    "encryptionsalt",                     # ... and writes it into the stack files
    "pulumi stack output url",
    "<내 조직>/theater-msa/ctx2",          # Pulumi Cloud: the user's own org
    "organization/theater-msa/ctx2",      # local backend
    "nip.io",
    "모든 사용자가 두 스택 모두에",          # every user sets their own domain
    "/etc/docker/certs.d/",               # Harbor with its own certificate
    "pullPassword",
    "imagePullSecret false",
    "PULUMI_K8S_ENABLE_PATCH_FORCE=true",
    "ingressServiceAccount",
])
def test_deploy_steps_mention(needle):
    assert needle in section("## 5.")


def test_dashboard_api_server_is_in_the_steps():
    steps = section("### 5.2")
    assert "dashboardApiServer" in steps and "pulumi up --stack ctx2` 전에" in steps


def test_versions_match_what_is_tested():
    prerequisites = section("### 5.1")
    assert "3.139 이상" in prerequisites  # toolchain: uv came with Pulumi 3.139
    kube = tomllib.loads((ROOT / "sim" / "versions.toml").read_text())["kubernetes"]["version"]
    minor = ".".join(kube.lstrip("v").split(".")[:2])
    assert f"Kubernetes {minor}" in prerequisites
    oldest = sorted(p.stem.removeprefix("crds-") for p in (ROOT / "sim" / "istio").glob("crds-1.*.yaml"))[0]
    assert f"Istio {'.'.join(oldest.split('.')[:2])} 이상" in prerequisites
