"""The registry's HTTP API (Harbor REST API v2.0): is it up, does the
project exist, is it public. Paths and fields as in Harbor's swagger
(api/v2.0/swagger.yaml in goharbor/harbor): GET /api/v2.0/ping answers
"Pong"; GET /api/v2.0/projects/{project_name_or_id} with the header
X-Is-Resource-Name: true answers the Project, whose metadata.public is the
string "true" or "false".
"""

from __future__ import annotations

from dataclasses import dataclass

import httpx


@dataclass
class ProjectState:
    reachable: bool
    error: str | None = None  # why the registry could not be asked (Korean)
    exists: bool = False
    public: bool = False
    unauthorized: bool = False  # a private project hidden from anonymous readers


def inspect(base_url: str, project: str, timeout: float = 5.0) -> ProjectState:
    base = base_url.rstrip("/")
    try:
        with httpx.Client(timeout=timeout, trust_env=False, follow_redirects=True) as client:
            ping = client.get(f"{base}/api/v2.0/ping")
            if ping.status_code != 200:
                return ProjectState(False, f"{base}/api/v2.0/ping 이 HTTP {ping.status_code} 로 답했습니다 (Harbor 가 아닌가요?)")
            r = client.get(f"{base}/api/v2.0/projects/{project}", headers={"X-Is-Resource-Name": "true"})
    except httpx.HTTPError as exc:
        return ProjectState(False, f"{base} 에 연결할 수 없습니다 ({type(exc).__name__}: {exc})")
    if r.status_code == 404:
        return ProjectState(True, exists=False)
    if r.status_code in (401, 403):
        # Anonymous readers see public projects only; a hidden one exists but is private.
        return ProjectState(True, exists=True, public=False, unauthorized=True)
    if r.status_code != 200:
        return ProjectState(False, f"프로젝트 조회가 HTTP {r.status_code} 로 실패했습니다")
    metadata = (r.json() or {}).get("metadata") or {}
    return ProjectState(True, exists=True, public=str(metadata.get("public", "false")).lower() == "true")
