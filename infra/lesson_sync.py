"""Settings both stacks must agree on, compared (no Pulumi import: the
preflight and `theater doctor` use it).

The two stacks program two clusters' sidecars and gateways. Placement and the
version lessons (`v2Cluster`, `canary`, `abTest`, `failover`) shape routes
that cross clusters: set on ctx1 alone, ctx2's east-west gateway has no
cluster for the v1 subset that ctx1's sidecars and ingress route to (ctx2's
movie-service DestinationRule declares no subsets), so those requests end in
503 ("no healthy upstream"), about 80% of /movies with canary 80/20. So each
stack is refused while the other's file says otherwise, with the commands
that make them equal.

Values are compared parsed, so `{"v1":80,"v2":20}` equals `{"v1": 80, "v2": 20}`.
Lessons a single stack owns (faults, routePolicies, tightCircuitBreaking: the
sidecars of the calling cluster apply them) are not compared.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any, Callable, Mapping

import yaml

from infra.setting_objects import PROJECT, SettingError, parse_ab_test, parse_canary, parse_placement, qkey


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _ab(value: Any) -> Any:
    parsed = parse_ab_test(value)
    return None if parsed is None else parsed.model_dump()


# key -> the value as the program sees it (unset and empty are the same).
SHARED: dict[str, Callable[[Any], Any]] = {
    "placement": parse_placement,
    "v2Cluster": lambda value: _text(value) or None,
    "canary": parse_canary,
    "abTest": _ab,
    "failover": lambda value: _text(value).lower() == "true" if not isinstance(value, bool) else value,
}


def _parsed(key: str, value: Any) -> Any:
    try:
        return SHARED[key](value)
    except SettingError:
        return ("invalid", _text(value))  # unequal to any valid value; its own stack reports it


def differences(mine: Mapping[str, Any], theirs: Mapping[str, Any]) -> list[str]:
    """Keys of SHARED whose values differ between two stacks' settings (`key` -> raw value)."""
    return [key for key in SHARED if _parsed(key, mine.get(key)) != _parsed(key, theirs.get(key))]


def _shown(value: Any) -> str:
    return _text(value) or "(없음/unset)"


def mismatch_problem(stack: str, mine: Mapping[str, Any], other: str, theirs: Mapping[str, Any]) -> str | None:
    """Why these two stacks would break each other's routes, with the commands
    that give `other` this stack's values, or None when they agree."""
    keys = differences(mine, theirs)
    if not keys:
        return None
    lines = [f"    {qkey(key)}: {stack}={_shown(mine.get(key))}, {other}={_shown(theirs.get(key))}" for key in keys]
    fixes = []
    for key in keys:
        value = _text(mine.get(key))
        fixes.append(f"    pulumi config set {qkey(key)} {shlex.quote(value)} --stack {other}" if value
                     else f"    pulumi config rm {qkey(key)} --stack {other}")
    return (
        f"stacks {stack} and {other} must agree on placement and the version lessons, and they differ:\n"
        + "\n".join(lines) + "\n"
        f"Each cluster's sidecars and east-west gateway route by these: set on one stack only, the other cluster "
        f"has no route for the subsets or copies this one sends it to, and those requests answer 503 "
        f"(no healthy upstream). Give {other} the same values, then run pulumi up on both:\n"
        + "\n".join(fixes) + "\n"
        f"    pulumi up --stack {other} && pulumi up --stack {stack}\n"
        f"(or undo the change here, on {stack}, with the same commands and --stack {stack})"
    )


def stack_file_values(root: Path, stack: str) -> dict[str, Any] | None:
    """The `theater-msa:*` values of Pulumi.<stack>.yaml (short keys), or None
    when the stack has no file yet (not initialised)."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.is_file():
        return None
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    out: dict[str, Any] = {}
    for key, value in config.items():
        if key.startswith(f"{PROJECT}:") and not (isinstance(value, dict) and "secure" in value):
            out[key.split(":", 1)[1]] = json.dumps(value) if isinstance(value, (dict, list)) else value
    return out
