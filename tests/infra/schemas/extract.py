"""Regenerate istio-*.json from Istio's crd-all.gen.yaml (a development tool;
the tests only read the JSON files next to this script).

    uv run python tests/infra/schemas/extract.py path/to/crd-all.gen.yaml
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import yaml

ORIGIN = (
    "istio/istio manifests/charts/base/files/crd-all.gen.yaml at commit "
    "86c9f01fd735fb01d8192f5bcaf0d424afb7f14c (Apache-2.0)"
)
WANTED = {
    "virtualservices.networking.istio.io": "v1",
    "destinationrules.networking.istio.io": "v1",
    "peerauthentications.security.istio.io": "v1",
    "authorizationpolicies.security.istio.io": "v1",
}


def main(src: str) -> None:
    out = Path(__file__).resolve().parent
    for doc in yaml.safe_load_all(Path(src).read_text()):
        if not doc or doc.get("metadata", {}).get("name") not in WANTED:
            continue
        name = doc["metadata"]["name"]
        version = next(v for v in doc["spec"]["versions"] if v["name"] == WANTED[name])
        assert version["served"], name
        group, kind = doc["spec"]["group"], doc["spec"]["names"]["kind"]
        payload = {
            "origin": ORIGIN,
            "apiVersion": f"{group}/{version['name']}",
            "kind": kind,
            "openAPIV3Schema": version["schema"]["openAPIV3Schema"],
        }
        path = out / f"istio-{kind.lower()}-{version['name']}.json"
        path.write_text(json.dumps(payload, indent=1, sort_keys=True) + "\n")
        print("wrote", path.name)


if __name__ == "__main__":
    main(sys.argv[1])
