"""The Pulumi stack settings doctor and verify need, read the way
infra/mockrun.py's stack_config reads them: Pulumi.yaml's defaults, then
Pulumi.<stack>.yaml. No Pulumi CLI and no Pulumi SDK import (the commands
stay fast); secrets are never read. `overrides` (the CLI's --set) win.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from infra import setting_objects
from services import catalog

PROJECT = "theater-msa"
REPO_ROOT = Path(__file__).resolve().parent.parent
# A stack setting that tells the program to give pods an imagePullSecret for
# the registry (declared by infra/settings.py when the checkout has it).
PULL_SECRET_KEYS = ("imagePullSecret", "harborPullSecret", "createPullSecret")


class StackError(Exception):
    pass


@dataclass(frozen=True)
class StackSettings:
    stack: str
    values: Mapping[str, str] = field(repr=False)
    declared: frozenset[str] = field(repr=False)  # keys Pulumi.yaml declares

    def text(self, key: str) -> str:
        return str(self.values.get(key) or "").strip()

    @property
    def domain(self) -> str:
        return self.text("domain")

    @property
    def host(self) -> str:
        return f"theater.{self.domain}"

    @property
    def kube_context(self) -> str:
        return self.text("kubeContext") or self.stack

    @property
    def kubeconfig(self) -> str | None:
        return self.text("kubeconfig") or None

    @property
    def cluster(self) -> str:
        return self.text("clusterName") or self.stack

    @property
    def istio_api_version(self) -> str:
        return self.text("istioApiVersion") or "v1beta1"

    @property
    def ingress_cluster(self) -> str:
        return self.text("ingressCluster") or catalog.CLUSTERS[0]

    def namespaced(self, key: str) -> tuple[str, str]:
        value = self.text(key)
        namespace, _, name = value.partition("/")
        if not namespace or not name:
            raise StackError(f"{PROJECT}:{key} must look like namespace/name, got {value!r}")
        return namespace, name

    @property
    def ingress_gateway(self) -> tuple[str, str]:
        return self.namespaced("ingressGateway")

    @property
    def ingress_service_account(self) -> tuple[str, str]:
        return self.namespaced("ingressServiceAccount")

    @property
    def registry(self) -> str:
        return self.text("registry") or f"harbor.{self.domain}"

    @property
    def harbor_project(self) -> str:
        return self.text("harborProject") or PROJECT

    @property
    def pull_secret_setting(self) -> tuple[str, bool] | None:
        """(key, on) of the pull secret setting, or None when this checkout has none."""
        for key in PULL_SECRET_KEYS:
            if key in self.declared:
                value = self.text(key).lower()
                return key, value not in ("", "false", "0", "no")
        return None

    @property
    def placement(self) -> dict[str, str]:
        return self._parsed(setting_objects.parse_placement, self.text("placement"))

    def json_value(self, key: str) -> dict:
        """A JSON-object setting (faults, canary, abTest); {} when unset."""
        return self._parsed(lambda text: setting_objects.json_object(key, text), self.text(key))

    @staticmethod
    def _parsed(parse, text: str):
        try:
            return parse(text)
        except setting_objects.SettingError as exc:
            raise StackError(str(exc)) from None

    @property
    def v2_cluster(self) -> str | None:
        """Lesson v2Cluster: where movie-service v2 runs, or None."""
        return self.text("v2Cluster") or None

    @property
    def failover(self) -> bool:
        return self.text("failover").lower() in ("true", "1", "yes")


def stack_names(root: Path = REPO_ROOT) -> list[str]:
    """The stacks that have a Pulumi.<stack>.yaml file (as infra/mockrun.py lists them for render)."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def read(stack: str, root: Path = REPO_ROOT, overrides: Mapping[str, str] | None = None) -> StackSettings:
    project_file = root / "Pulumi.yaml"
    if not project_file.is_file():
        raise StackError(f"{project_file} not found: run from the repository or pass --project-dir")
    if not (root / f"Pulumi.{stack}.yaml").is_file():
        raise StackError(f"Pulumi.{stack}.yaml does not exist in {root}; stacks: {', '.join(stack_names(root)) or 'none'}")
    project = yaml.safe_load(project_file.read_text()) or {}
    values: dict[str, str] = {}
    declared = set()
    for key, decl in (project.get("config") or {}).items():
        if ":" in key:
            continue
        declared.add(key)
        if isinstance(decl, dict) and "default" in decl:
            values[key] = _text(decl["default"])
    stack_file = root / f"Pulumi.{stack}.yaml"
    if stack_file.is_file():
        for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
            if key.startswith(f"{PROJECT}:") and not (isinstance(value, dict) and "secure" in value):
                values[key.split(":", 1)[1]] = _text(value)
    overrides = {key.removeprefix(f"{PROJECT}:"): value for key, value in (overrides or {}).items()}
    values.update(overrides)
    if overrides:
        check_overrides(stack, values, overrides)
    return StackSettings(stack, values, frozenset(declared))


def check_overrides(stack: str, values: Mapping[str, str], overrides: Mapping[str, str]) -> None:
    """Refuse a --set that `pulumi up` would refuse: an unknown key, or a value
    the program's own validation (infra/settings.py) rejects, the message
    naming the key. Problems of the stack file alone are left to doctor's checks."""
    from infra.settings import SETTINGS, SETTINGS_BY_KEY, StackConfig  # noqa: PLC0415 (pydantic: only when --set is used)

    for key, value in overrides.items():
        if key not in SETTINGS_BY_KEY:
            close = difflib.get_close_matches(key, SETTINGS_BY_KEY, n=1)
            hint = f"did you mean {PROJECT}:{close[0]}?" if close else f"settings: {', '.join(sorted(SETTINGS_BY_KEY))}"
            raise StackError(f"--set {key}={value}: {PROJECT}:{key} is not a setting; {hint}")
    # Secrets are never read here: a stand-in lets the rules that need one pass.
    known = {k: v for k, v in values.items() if k in SETTINGS_BY_KEY}
    known.update({s.key: "stand-in" for s in SETTINGS if (s.secret or s.sensitive) and not known.get(s.key)})
    try:
        StackConfig.from_values(stack, known)
    except setting_objects.SettingError as exc:
        for problem in str(exc).splitlines():
            for key, value in overrides.items():
                if re.search(rf"{PROJECT}:{re.escape(key)}\b", problem):
                    raise StackError(f"--set {key}={value}: {problem}") from None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return "" if value is None else str(value)
