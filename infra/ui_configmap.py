"""The web UI as a ConfigMap, built from the same files the local run serves.

The files are `catalog.UI_FILES` under `catalog.UI_DIR`. `checksum` goes into
the api-gateway pod template, so a change to a UI file rolls the gateway.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from infra.config import ConfigError
from infra.k8sutil import child, meta
from services import catalog

UI_CONFIGMAP = "theater-ui"
CHECKSUM_ANNOTATION = "theater-msa/ui-checksum"


def read_ui_files(ui_dir: Path | None = None, files: tuple[str, ...] | None = None) -> dict[str, str]:
    ui_dir = Path(ui_dir or catalog.UI_DIR)
    files = files or catalog.UI_FILES
    missing = [f for f in files if not (ui_dir / f).is_file()]
    if missing:
        raise ConfigError(f"UI files missing under {ui_dir}: {', '.join(missing)} (the api-gateway serves catalog.UI_FILES)")
    return {f: (ui_dir / f).read_text(encoding="utf-8") for f in files}


def checksum(files: dict[str, str]) -> str:
    h = hashlib.sha256()
    for name in sorted(files):
        h.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    return h.hexdigest()


@dataclass(frozen=True)
class UiConfigMapArgs:
    files: dict[str, str]


class UiConfigMap(pulumi.ComponentResource):
    def __init__(self, name: str, args: UiConfigMapArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:UiConfigMap", name, None, opts)
        self.checksum = checksum(args.files)
        self.config_map = k8s.core.v1.ConfigMap(
            UI_CONFIGMAP,
            metadata=meta(UI_CONFIGMAP, labels=catalog.labels(catalog.GATEWAY.name) | {"app.kubernetes.io/component": "ui"}),
            data=dict(args.files),
            opts=child(self),
        )
        self.name = UI_CONFIGMAP
        self.register_outputs({"checksum": self.checksum})
