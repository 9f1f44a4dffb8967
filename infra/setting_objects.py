"""The settings that are JSON objects (placement, faults, routePolicies,
tightCircuitBreaking, canary, abTest): their models and parsers, and the
error and key naming every setting uses. infra/settings.py declares the
settings themselves.

Pulumi.yaml's `config:` block has no object type, so these are JSON strings:
`pulumi config set` them with single quotes, e.g.::

    pulumi config set theater-msa:placement '{"movie-service": "ctx1"}'

No Pulumi import (the checklist uses these parsers too).
"""

from __future__ import annotations

import json
import re
from typing import Annotated, Any, Sequence, TypeVar

import pydantic

from services import catalog
PROJECT = "theater-msa"

M = TypeVar("M", bound=pydantic.BaseModel)


class SettingError(ValueError):
    """A missing or invalid setting; the message names the key (`theater-msa:<key>`)."""


def qkey(key: str) -> str:
    return f"{PROJECT}:{key}"


# --- the JSON object settings ------------------------------------------------

# Default timeout and retries on every route (edge and mesh); `routePolicies` overrides per service.
DEFAULT_ROUTE_POLICY: dict[str, Any] = {
    "timeout": "10s",
    "attempts": 2,
    "perTryTimeout": "4s",
    "retryOn": "gateway-error,connect-failure,refused-stream",
}
_DURATION = re.compile(r"^(\d+(\.\d+)?(ms|s|m|h))+$")
Duration = Annotated[str, pydantic.StringConstraints(pattern=_DURATION.pattern)]


class _Strict(pydantic.BaseModel):
    """A JSON object setting: unknown fields are errors, nothing is coerced."""

    model_config = pydantic.ConfigDict(extra="forbid", frozen=True, strict=True)


class Fault(_Strict):
    """One service's entry of `faults`: a delay, an abort, or both."""

    delay: Duration | None = None
    abort: Annotated[int, pydantic.Field(ge=200, le=599)] | None = None
    percent: Annotated[float, pydantic.Field(gt=0, le=100)] = 100.0

    @pydantic.field_validator("percent", mode="before")
    @classmethod
    def _number(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError("must be a number")
        return float(value)

    @pydantic.model_validator(mode="after")
    def _something(self) -> Fault:
        if self.delay is None and self.abort is None:
            raise ValueError('needs delay (e.g. "3s") or abort (e.g. 503)')
        return self


class RoutePolicy(_Strict):
    """One service's entry of `routePolicies`; unset fields keep DEFAULT_ROUTE_POLICY."""

    timeout: Duration = DEFAULT_ROUTE_POLICY["timeout"]
    attempts: Annotated[int, pydantic.Field(ge=0)] = DEFAULT_ROUTE_POLICY["attempts"]
    per_try_timeout: Duration = pydantic.Field(DEFAULT_ROUTE_POLICY["perTryTimeout"], alias="perTryTimeout")
    retry_on: str = pydantic.Field(DEFAULT_ROUTE_POLICY["retryOn"], alias="retryOn")

    @pydantic.field_validator("attempts", mode="before")
    @classmethod
    def _whole(cls, value: Any) -> Any:
        # JSON has one number type: 2.0 is the whole number 2.
        return int(value) if isinstance(value, float) and value.is_integer() else value


_HEADER_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]{0,62}[a-z0-9])?$")
_MATCH_VALUE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class AbTest(_Strict):
    """Lesson abTest: the header (or cookie) and value that send a request to v2."""

    header: str | None = None
    cookie: str | None = None
    value: str | None = None

    @pydantic.model_validator(mode="after")
    def _one_match(self) -> AbTest:
        if (self.header is None) == (self.cookie is None):
            raise ValueError('needs either header or cookie (not both), e.g. {"header": "x-theater-group", "value": "beta"}')
        kind, name = ("header", self.header) if self.header is not None else ("cookie", self.cookie)
        if not _HEADER_NAME.match(name) or (kind == "header" and name.startswith(("x-envoy", "x-forwarded"))):
            raise ValueError(f"{kind} must be a lower-case name of letters, digits and '-' "
                             f"(not x-envoy-*/x-forwarded-*), got {name!r}")
        if self.value is None or not _MATCH_VALUE.match(self.value):
            raise ValueError(f"value must be 1-64 letters, digits, '.', '_' or '-', got {self.value!r}")
        return self


# The subsets of movie-service's two versions (catalog.DEFAULT_VERSION, catalog.MOVIE_V2.version).
CANARY_SUBSETS = (catalog.DEFAULT_VERSION, catalog.MOVIE_V2.version)


class Canary(_Strict):
    """Lesson canary: the weight of each of movie-service's subsets."""

    v1: int
    v2: int

    @pydantic.model_validator(mode="before")
    @classmethod
    def _both(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and set(raw) != set(CANARY_SUBSETS):
            raise ValueError(f"needs exactly the weights {' and '.join(CANARY_SUBSETS)}, e.g. "
                             f'{{"v1": 80, "v2": 20}}; got {sorted(raw)}')
        return raw

    @pydantic.field_validator("v1", "v2", mode="before")
    @classmethod
    def _weight(cls, value: Any) -> Any:
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100:
            raise ValueError(f"must be a whole number from 0 to 100, got {value!r}")
        return value

    @pydantic.model_validator(mode="after")
    def _whole(self) -> Canary:
        if self.v1 + self.v2 != 100:
            raise ValueError(f"the weights must add up to 100, got {self.v1} + {self.v2}")
        return self

    def weights(self) -> dict[str, int]:
        return {"v1": self.v1, "v2": self.v2}


assert tuple(Canary.model_fields) == CANARY_SUBSETS, "Canary's fields are the catalog's version names"


def _validated(model: type[M], key: str, raw: Any, service: str = "") -> M:
    """`raw` as `model`; a SettingError naming the key, the service (for a
    per-service entry) and each bad field."""
    if not isinstance(raw, dict):
        raise SettingError(f"{qkey(key)}: {service} needs an object")
    try:
        return model.model_validate(raw)
    except pydantic.ValidationError as exc:
        problems = []
        prefix = f"{service}." if service else ""
        for err in exc.errors(include_url=False):
            where = ".".join(str(p) for p in err["loc"])
            message = err["msg"].removeprefix("Value error, ")
            if err["type"] == "extra_forbidden":
                allowed = ", ".join(f.alias or n for n, f in model.model_fields.items())
                problems.append(f"unknown field {where!r}{' for ' + service if service else ''}; allowed: {allowed}")
            elif err["type"] == "string_pattern_mismatch":
                problems.append(f"{prefix}{where} must be a duration like 3s or 500ms, got {err['input']!r}")
            elif where and err["type"] == "value_error":
                problems.append(f"{prefix}{where} {message}")
            elif where:
                problems.append(f"{prefix}{where}: {message}, got {err['input']!r}")
            else:
                problems.append(f"{service} {message}".strip())
        raise SettingError(f"{qkey(key)}: " + "; ".join(problems)) from None


def parse_overrides(items: Sequence[str], option: str) -> dict[str, str]:
    """`KEY=VALUE` setting overrides from a command line (`option` names the flag in the error)."""
    overrides: dict[str, str] = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise SettingError(f"{option} takes KEY=VALUE (e.g. domain=1.2.3.4.nip.io), got {item!r}")
        overrides[key.removeprefix(f"{PROJECT}:")] = value
    return overrides


def json_object(key: str, value: Any) -> dict[str, Any]:
    """A JSON object setting as a dict; {} when unset or empty."""
    if value in (None, ""):
        return {}
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError as exc:
            raise SettingError(f"{qkey(key)} is not valid JSON ({exc}); "
                               f"set it with `pulumi config set {qkey(key)} '{{...}}'`") from None
    if not isinstance(value, dict):
        raise SettingError(f"{qkey(key)} must be a JSON object, got {type(value).__name__}")
    return value


def _check_service(key: str, name: str) -> None:
    if name not in catalog.SERVICES:
        raise SettingError(f"{qkey(key)}: unknown service {name!r}; known services: {', '.join(catalog.SERVICES)}")


def parse_placement(value: Any) -> dict[str, str]:
    placement = catalog.default_placement()
    for service, cluster in json_object("placement", value).items():
        _check_service("placement", service)
        if cluster not in catalog.CLUSTERS:
            raise SettingError(
                f"{qkey('placement')}: unknown cluster {cluster!r} for {service}; known clusters: {', '.join(catalog.CLUSTERS)}"
            )
        placement[service] = cluster
    return placement


def parse_faults(value: Any) -> dict[str, Fault]:
    faults: dict[str, Fault] = {}
    for service, raw in json_object("faults", value).items():
        _check_service("faults", service)
        if raw == {}:
            raise SettingError(f"{qkey('faults')}: {service} needs an object with delay or abort")
        faults[service] = _validated(Fault, "faults", raw, service)
    return faults


def parse_route_policies(value: Any) -> dict[str, RoutePolicy]:
    policies: dict[str, RoutePolicy] = {}
    for service, raw in json_object("routePolicies", value).items():
        _check_service("routePolicies", service)
        policies[service] = _validated(RoutePolicy, "routePolicies", raw, service)
    return policies


IMAGE_DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def image_keys() -> tuple[str, ...]:
    """The images a stack may deploy: every service and every second version (movie-service-v2)."""
    return (*catalog.SERVICES, *(v.name for v in catalog.VERSIONS.values()))


def parse_image_digests(value: Any) -> dict[str, str]:
    """`imageDigests`: the pushed digest per image, {"user-service": "sha256:<64 hex>", ...}."""
    digests: dict[str, str] = {}
    for image, digest in json_object("imageDigests", value).items():
        if image not in image_keys():
            raise SettingError(f"{qkey('imageDigests')}: unknown image {image!r}; known images: {', '.join(image_keys())}")
        if not isinstance(digest, str) or not IMAGE_DIGEST.match(digest):
            raise SettingError(f"{qkey('imageDigests')}: the digest of {image} must be sha256: and 64 lowercase hex "
                               f"digits (what `docker push` or `theater images push` prints), got {digest!r}")
        digests[image] = digest
    return digests


def parse_service_list(key: str, value: Any) -> frozenset[str]:
    if value in (None, ""):
        return frozenset()
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            value = [v.strip() for v in value.split(",") if v.strip()]
    if not isinstance(value, list):
        raise SettingError(f"{qkey(key)} must be a list of service names")
    for name in value:
        _check_service(key, name)
    return frozenset(value)


def parse_canary(value: Any) -> dict[str, int]:
    raw = json_object("canary", value)
    return _validated(Canary, "canary", raw).weights() if raw else {}


def parse_ab_test(value: Any) -> AbTest | None:
    raw = json_object("abTest", value)
    return _validated(AbTest, "abTest", raw) if raw else None
