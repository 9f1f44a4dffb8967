"""Run the Pulumi program under pulumi.runtime mocks (no CLI, no cluster).

Shared by `theater render` (infra/render.py) and tests/infra. The config
comes from Pulumi.yaml's defaults and Pulumi.<stack>.yaml, as the CLI would
merge them, plus overrides. Images get fake digests, secrets a dummy value,
StackReferences the outputs given in `remote_outputs`, and created
service-account-token Secrets a fake token and CA (as the provider waits
for the token controller to fill them).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import hashlib
import json
import runpy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import pulumi
import yaml
from pulumi.runtime import MockCallArgs, MockResourceArgs, Mocks

from infra.config import ConfigError
from infra.setting_objects import PROJECT
from infra.settings import SETTINGS_BY_KEY
from infra.pulumi_wire import is_secret, reveal  # noqa: F401  (is_secret: for tests)
from services import catalog

REPO_ROOT = Path(__file__).resolve().parent.parent
PROGRAM = REPO_ROOT / "infra" / "__main__.py"
DUMMY_SECRET = "dummy-secret-for-mocks"
# The committed stack files hold no domain (each user sets their own; the CLI
# asks for it). Render and the tests pass this one explicitly: a documentation
# address (RFC 5737 TEST-NET-3), nobody's host.
EXAMPLE_DOMAIN = "203.0.113.10.nip.io"


def example(overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """`overrides` plus the example domain (unless they set one)."""
    return {"domain": EXAMPLE_DOMAIN, **(overrides or {})}
# What the mocked token controller writes into a service-account-token Secret.
MOCK_SA_TOKEN = "mock-token"
MOCK_SA_CA = b"mock-ca"


@dataclass
class Declared:
    """One resource the program declared (inputs as the engine sees them: camelCase)."""

    type: str
    name: str
    inputs: dict[str, Any]
    provider: str | None
    id: str | None = None  # set for reads (Resource.get)
    urn: str = ""  # as the engine would name it (type chain of its parents)
    alias_urns: tuple[str, ...] = ()  # the URNs its aliases name: an old state at one of these is this resource

    @property
    def is_kubernetes(self) -> bool:
        return self.type.startswith("kubernetes:")

    @property
    def is_read(self) -> bool:
        return self.id is not None

    @property
    def manifest(self) -> dict[str, Any]:
        """The object as a Kubernetes manifest."""
        return unwrap(self.inputs)

    @property
    def kind(self) -> str:
        return self.inputs.get("kind") or self.type.rsplit(":", 1)[-1]

    @property
    def meta_name(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("name")

    @property
    def namespace(self) -> str | None:
        return (self.inputs.get("metadata") or {}).get("namespace")


@dataclass
class RunResult:
    stack: str
    config: dict[str, str]
    resources: list[Declared]
    outputs: dict[str, Any] = field(default_factory=dict)

    def deleted_by(self, after: RunResult) -> list[str]:
        """The URNs of this run's resources that a `pulumi up` to `after` would
        delete, as the engine matches them: by URN, or by an alias of a
        resource of `after` (reads are not in the state)."""
        kept = {r.urn for r in after.resources} | {a for r in after.resources for a in r.alias_urns}
        return sorted(r.urn for r in self.resources if not r.is_read and r.urn not in kept)

    @property
    def objects(self) -> list[Declared]:
        """Kubernetes objects the stack manages (not providers, not reads)."""
        return [r for r in self.resources if r.is_kubernetes and not r.type.startswith("pulumi:providers") and not r.is_read]

    def find(self, kind: str, name: str | None = None, namespace: str | None = None) -> list[Declared]:
        return [
            r for r in self.objects
            if r.kind == kind and (name is None or r.meta_name == name) and (namespace is None or r.namespace == namespace)
        ]

    def one(self, kind: str, name: str, namespace: str | None = None) -> Declared:
        found = self.find(kind, name, namespace)
        if len(found) != 1:
            raise AssertionError(f"expected one {kind} {namespace}/{name}, found {len(found)}")
        return found[0]

    def of_type(self, type_: str) -> list[Declared]:
        return [r for r in self.resources if r.type == type_]


def unwrap(value: Any) -> Any:
    """Strip secret wrappers and turn integral floats back into ints."""
    if isinstance(value, dict):
        if is_secret(value):
            return unwrap(reveal(value))
        return {k: unwrap(v) for k, v in value.items()}
    if isinstance(value, list):
        return [unwrap(v) for v in value]
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def fake_digest(name: str) -> str:
    return "sha256:" + hashlib.sha256(name.encode()).hexdigest()


def _alias_urn(urn: str, parent: str, alias: Any) -> str | None:
    """The URN an alias names: a full URN, or a spec changing the name or the
    type of `urn` (a spec's own parent or stack is not used by this program)."""
    if alias.urn:
        return alias.urn
    spec = alias.spec
    prefix, qualified_type, name = urn.rsplit("::", 2)
    parent_types = qualified_type.split("$")[:-1] if parent else []
    own_type = spec.type or qualified_type.split("$")[-1]
    return "::".join([prefix, "$".join([*parent_types, own_type]), spec.name or name])


class TheaterMocks(Mocks):
    def __init__(self, remote_outputs: Mapping[str, Mapping[str, Any]] | None = None):
        self.resources: list[Declared] = []
        self.remote_outputs = remote_outputs or {}
        # (type, name) -> (URN, alias URNs), recorded by the monitor (record_urns).
        self.urns: dict[tuple[str, str], tuple[str, tuple[str, ...]]] = {}

    def record_urns(self, monitor: Any) -> None:
        """Wrap the mock monitor's RegisterResource to note each resource's URN and
        its aliases' URNs, which the Mocks interface does not pass on."""
        register = monitor.RegisterResource

        def recording(request: Any) -> Any:
            urn = monitor.make_urn(request.parent, request.type, request.name)
            aliases = tuple(a for a in (_alias_urn(urn, request.parent, alias) for alias in request.aliases) if a)
            self.urns[(request.type, request.name)] = (urn, aliases)
            return register(request)

        monitor.RegisterResource = recording

    def new_resource(self, args: MockResourceArgs):
        inputs = dict(args.inputs)
        urn, aliases = self.urns.get((args.typ, args.name), ("", ()))
        self.resources.append(Declared(args.typ, args.name, inputs, args.provider or None, args.resource_id or None,
                                       urn, aliases))
        state = dict(inputs)
        rid = args.resource_id or f"{args.name}-id"
        if args.typ == "docker:index/image:Image":
            repo = inputs["imageName"].rsplit(":", 1)[0]
            state["repoDigest"] = f"{repo}@{fake_digest(inputs['imageName'])}"
        elif args.typ == "pulumi:pulumi:StackReference":
            name = inputs.get("name", args.name)
            if name not in self.remote_outputs:
                raise RuntimeError(f"stack {name!r} does not exist (mock)")
            state["outputs"] = dict(self.remote_outputs[name])
            state["secretOutputNames"] = list(self.remote_outputs[name])
        elif args.typ == "kubernetes:core/v1:Secret":
            meta = inputs.get("metadata") or {}
            rid = f"{meta.get('namespace', '')}/{meta.get('name', args.name)}".lstrip("/")
            if inputs.get("type") == "kubernetes.io/service-account-token":
                # The provider reports this Secret as created only once the
                # token controller has filled in its data (untilCoreV1SecretInitialized).
                state["data"] = {
                    "token": base64.b64encode(MOCK_SA_TOKEN.encode()).decode(),
                    "ca.crt": base64.b64encode(MOCK_SA_CA).decode(),
                }
        return rid, state

    def call(self, args: MockCallArgs):
        return {}, None


def stack_names(root: Path = REPO_ROOT) -> list[str]:
    """The stacks that have a Pulumi.<stack>.yaml file."""
    return sorted(p.name[len("Pulumi."):-len(".yaml")] for p in root.glob("Pulumi.*.yaml"))


def stack_config(stack: str, overrides: Mapping[str, Any] | None = None, root: Path = REPO_ROOT) -> tuple[dict[str, str], list[str]]:
    """The config the CLI would hand the program: Pulumi.yaml defaults,
    then Pulumi.<stack>.yaml, then overrides (keys with or without `theater-msa:`).
    A stack without its file is an error, as it is for the CLI."""
    stack_file = root / f"Pulumi.{stack}.yaml"
    if not stack_file.is_file():
        raise ConfigError(f"{stack_file.name} does not exist in {root}; stacks: {', '.join(stack_names(root)) or 'none'}")
    project = yaml.safe_load((root / "Pulumi.yaml").read_text())
    merged: dict[str, Any] = {}
    for key, decl in (project.get("config") or {}).items():
        if ":" in key:
            continue
        if isinstance(decl, dict) and "default" in decl:
            merged[f"{PROJECT}:{key}"] = decl["default"]
    for key, value in ((yaml.safe_load(stack_file.read_text()) or {}).get("config") or {}).items():
        merged[key] = value
    for key, value in (overrides or {}).items():
        merged[key if ":" in key else f"{PROJECT}:{key}"] = value
    secret_keys = []
    config: dict[str, str] = {}
    for key, value in merged.items():
        if isinstance(value, dict) and "secure" in value:
            value = DUMMY_SECRET
        if value is None:
            continue
        short = key.split(":", 1)[1] if key.startswith(f"{PROJECT}:") else None
        if short and short in SETTINGS_BY_KEY and SETTINGS_BY_KEY[short].secret:
            secret_keys.append(key)
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, (dict, list)):
            value = json.dumps(value)
        config[key] = str(value)
    # Building needs the registry password; the real one is never in the repo.
    if f"{PROJECT}:harborPassword" not in config:
        config[f"{PROJECT}:harborPassword"] = DUMMY_SECRET
        secret_keys.append(f"{PROJECT}:harborPassword")
    return config, secret_keys


def run(stack: str, overrides: Mapping[str, Any] | None = None, *,
        remote_outputs: Mapping[str, Mapping[str, Any]] | None = None,
        program: Path = PROGRAM, ui_dir: Path | None = None) -> RunResult:
    """Run the program for `stack` under mocks; raises what the program raises.

    `ui_dir` temporarily replaces catalog.UI_DIR (tests use it so that they
    create nothing under services/ui)."""
    config, secret_keys = stack_config(stack, overrides)
    mocks = TheaterMocks(remote_outputs)

    def body() -> RunResult:
        # Pulumi's sync helpers use the thread's current event loop; code that
        # ran before (asyncio.run in a test, say) may have closed or unset it.
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False)
            from pulumi.runtime.settings import get_monitor

            mocks.record_urns(get_monitor())
            pulumi.runtime.set_all_config(config, secret_keys)
            outputs: dict[str, Any] = {}

            @pulumi.runtime.test  # runs the program and waits for everything it declared
            def program_run() -> pulumi.Output:
                runpy.run_path(str(program), run_name="__main__")
                exported = dict(pulumi.runtime.get_root_resource().outputs)
                return pulumi.Output.from_input(exported).apply(outputs.update)

            program_run()
            return RunResult(stack, config, mocks.resources, outputs)
        finally:
            # Closed here, not left to the garbage collector (which complained
            # at interpreter exit after `theater render`).
            asyncio.set_event_loop(None)
            loop.close()

    # A fresh context per run: the Pulumi runtime keeps its settings, root
    # stack and config in context variables.
    saved = catalog.UI_DIR
    if ui_dir is not None:
        catalog.UI_DIR = Path(ui_dir)
    try:
        return contextvars.Context().run(body)
    finally:
        catalog.UI_DIR = saved
