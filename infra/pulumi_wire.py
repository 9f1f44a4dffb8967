"""How a secret looks in the inputs the Pulumi engine hands to mocks.

The one place that knows a private detail of the Pulumi SDK: a secret input
arrives in `Mocks.new_resource` as ``{SIG_KEY: SECRET_SIG, "value": ...}``
(pulumi.runtime.rpc's `_special_sig_key` and `_special_secret_sig`, which
the SDK does not document). Everything else in infra/mockrun.py uses the
documented mocks API (pulumi.runtime.set_mocks, pulumi.runtime.test).
tests/infra/test_pulumi_wire.py compares these values with the installed
SDK's and fails by name when an upgrade changes them.
"""

from __future__ import annotations

from typing import Any

SIG_KEY = "4dabf18193072939515e22adb298388d"
SECRET_SIG = "1b47061264138c4ac30d75fd1eb44270"


def is_secret(value: Any) -> bool:
    """Whether `value` is a secret as the engine passes it to mocks."""
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The value inside a secret wrapper; anything else unchanged."""
    return value.get("value") if is_secret(value) else value
