"""Reading a cluster through the kubeconfig: lightkube parses the kubeconfig
and builds the authenticated HTTP client (client certificates, tokens, exec
plugins), and the checks read plain JSON paths with it, so discovery
(/version, /apis/<group>) and Istio's custom resources read the same way as
nodes and pods. Read-only: only GET is used.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
from lightkube import ConfigError, KubeConfig
from lightkube.config.client_adapter import Client as http_client
from lightkube.config.client_adapter import ConnectionParams


class KubeError(Exception):
    """A read that failed; the message is Korean and says why."""


def kubeconfig_path(explicit: str | os.PathLike | None = None) -> Path:
    """--kubeconfig, else the first file of $KUBECONFIG, else ~/.kube/config (as kubectl picks)."""
    if explicit:
        return Path(explicit).expanduser()
    env = os.environ.get("KUBECONFIG")
    if env:
        return Path(env.split(os.pathsep)[0]).expanduser()
    return Path.home() / ".kube" / "config"


def load(path: Path) -> KubeConfig:
    if not path.is_file():
        raise KubeError(f"kubeconfig 파일이 없습니다: {path}")
    try:
        return KubeConfig.from_file(path)
    except (ConfigError, OSError, ValueError) as exc:
        raise KubeError(f"kubeconfig 를 읽을 수 없습니다 ({path}): {exc}") from None


@dataclass
class Cluster:
    """One context of the kubeconfig."""

    name: str  # ctx1 / ctx2 (the cluster's name in the kit)
    context: str  # kubeconfig context
    server: str
    http: httpx2.Client

    @classmethod
    def open(cls, config: KubeConfig, name: str, context: str, timeout: float = 5.0) -> Cluster:
        if context not in config.contexts:
            raise KubeError(f"kubeconfig 에 컨텍스트 {context!r} 가 없습니다 (있는 것: {', '.join(sorted(config.contexts)) or '없음'})")
        try:
            single = config.get(context_name=context)
            client = http_client(single, ConnectionParams(timeout=httpx2.Timeout(timeout), trust_env=False))
        except (ConfigError, OSError, ValueError, AssertionError) as exc:
            raise KubeError(f"컨텍스트 {context!r} 설정을 쓸 수 없습니다: {exc}") from None
        return cls(name, context, single.cluster.server, client)

    def get(self, path: str) -> Any | None:
        """The JSON at path; None for 404. Other failures raise KubeError."""
        try:
            r = self.http.get(path)
        except httpx2.TimeoutException:
            raise KubeError(f"{self.name}: API 서버({self.server})가 제시간에 답하지 않습니다") from None
        except httpx2.TransportError as exc:
            raise KubeError(f"{self.name}: API 서버({self.server})에 연결할 수 없습니다 ({type(exc).__name__}: {exc})") from None
        if r.status_code == 404:
            return None
        if r.status_code in (401, 403):
            raise KubeError(f"{self.name}: {path} 를 읽을 권한이 없습니다 (HTTP {r.status_code})")
        if r.status_code >= 300:
            raise KubeError(f"{self.name}: {path} 읽기 실패 (HTTP {r.status_code}: {r.text[:200]})")
        return r.json()

    def items(self, path: str, **params: str) -> list[dict]:
        if params:
            path += "?" + "&".join(f"{k}={v}" for k, v in params.items())
        body = self.get(path)
        return (body or {}).get("items") or []

    def close(self) -> None:
        self.http.close()

