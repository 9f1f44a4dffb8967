"""Why listing a resource failed: a reason code and an English sentence
(403s name the RBAC permission that is missing)."""

from __future__ import annotations

import httpx2
from lightkube import ConfigError
from lightkube.core.exceptions import ApiError as KubeApiError


def _forbidden_message(resource: str, namespaced: bool, namespace: str, server_message: str) -> str:
    where = f"in namespace {namespace} (Role + RoleBinding)" if namespaced else "at cluster scope (ClusterRole + ClusterRoleBinding)"
    group = "apps" if resource == "deployments" else '"" (core)'
    return f"RBAC: missing permission to list {resource} (API group {group}) {where}. Kubernetes said: {server_message}"


def classify(exc: BaseException, resource: str, namespaced: bool, namespace: str) -> tuple[str, str, bool]:
    """(reason, message, answered) for a failed list call; `answered` means
    the API server sent an HTTP response (so it is reachable)."""
    if isinstance(exc, KubeApiError):
        code = exc.status.code if exc.status and exc.status.code else exc.response.status_code
        message = (exc.status.message if exc.status else None) or str(exc)
        if code == 403:
            return "forbidden", _forbidden_message(resource, namespaced, namespace, message), True
        if code == 401:
            return "unauthorized", f"the API server rejected the credentials (401): {message}", True
        return "error", f"listing {resource} failed with HTTP {code}: {message}", True
    if isinstance(exc, httpx2.HTTPStatusError):
        code = exc.response.status_code
        if code == 403:
            return "forbidden", _forbidden_message(resource, namespaced, namespace, exc.response.text[:200]), True
        return "error", f"listing {resource} failed with HTTP {code}", True
    if isinstance(exc, (TimeoutError, httpx2.TimeoutException)):
        return "timeout", "the API server did not answer in time", False
    if isinstance(exc, httpx2.TransportError):
        return "unreachable", f"cannot connect to the API server ({type(exc).__name__}: {exc})", False
    if isinstance(exc, ConfigError):
        return "config_error", f"kubeconfig problem: {exc}", False
    return "error", f"{type(exc).__name__}: {exc}", False
