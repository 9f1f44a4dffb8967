"""Label values the API server accepts, for any input (no Pulumi import:
infra/settings.py and the checklist use it too)."""

from __future__ import annotations

import re

# A label value: at most 63 characters of [A-Za-z0-9._-], alphanumeric at both ends.
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_IN_LABEL = re.compile(r"[^A-Za-z0-9._-]+")


def label_value(text: str) -> str:
    """`text` made into a label value the API server accepts: characters it
    rejects become '-', at most 63 characters, alphanumeric at both ends."""
    value = _NOT_IN_LABEL.sub("-", text)[:63]
    value = re.sub(r"^[^A-Za-z0-9]+|[^A-Za-z0-9]+$", "", value)
    return value or "unknown"


def image_version(ref: str) -> str:
    """A version label for an image reference: its tag; for a digest-only
    reference `sha256-<12 hex>`; for neither `latest` (what Docker pulls)."""
    name, _, digest = ref.partition("@")
    last = name.rsplit("/", 1)[-1]  # a registry's :port is not a tag
    tag = last.split(":", 1)[1] if ":" in last else ""
    if tag:
        return label_value(tag)
    if digest:
        algorithm, _, hexdigest = digest.partition(":")
        return label_value(f"{algorithm}-{hexdigest[:12]}")
    return "latest"
