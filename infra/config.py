"""Read this stack's settings from Pulumi, once (the settings themselves are
declared in infra/settings.py).

`load()` hands every `theater-msa:*` value Pulumi holds to StackConfig, which
validates them all and fails early with a message naming each bad key.
"""

from __future__ import annotations

import os
from pathlib import Path

import pulumi
import yaml

from infra.setting_objects import PROJECT, SettingError, qkey
from infra.settings import SETTINGS, StackConfig


class ConfigError(pulumi.RunError):
    """A missing or invalid setting; the message names the key."""


def load(stack: str | None = None, cfg: pulumi.Config | None = None) -> StackConfig:
    """Read and validate every setting once."""
    stack = stack or pulumi.get_stack()
    cfg = cfg or pulumi.Config(PROJECT)
    values = {}
    for s in SETTINGS:
        text = cfg.get(s.key)
        # A secret is read as one whether or not it was set with --secret.
        values[s.key] = cfg.get_secret(s.key) if text and s.sensitive else text
    try:
        return StackConfig.from_values(stack, values)
    except SettingError as exc:
        raise ConfigError(str(exc)) from None


def kubeconfig_server(context: str, kubeconfig: str | None) -> str | None:
    """The API server URL of `context` in the kubeconfig file, or None."""
    paths = [kubeconfig] if kubeconfig else (os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")).split(os.pathsep)
    for path in paths:
        try:
            doc = yaml.safe_load(Path(path).expanduser().read_text()) or {}
        except (OSError, yaml.YAMLError):
            continue
        ctx = next((c.get("context", {}) for c in doc.get("contexts") or [] if c.get("name") == context), None)
        if ctx is None:
            continue
        cluster = next((c.get("cluster", {}) for c in doc.get("clusters") or [] if c.get("name") == ctx.get("cluster")), {})
        if cluster.get("server"):
            return str(cluster["server"])
    return None


__all__ = ["ConfigError", "kubeconfig_server", "load", "qkey"]
