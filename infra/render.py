"""`theater render --stack ctx1 [--out DIR] [--set KEY=VALUE ...]`

Runs the Pulumi program for a stack under mocks (infra/mockrun.py: no
cluster, no Pulumi CLI) and writes every Kubernetes/Istio object it declares
as one YAML file, for `kubectl diff -f DIR` or
`kubectl apply --dry-run=server -f DIR`. Images get fake digests and secrets
dummy values, so the files show structure, not the exact deployed images.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml

from infra import mockrun
from infra.config import ConfigError, kubeconfig_server, qkey
from infra.setting_objects import SettingError, parse_overrides

DESCRIPTION = ("스택 하나의 Kubernetes·Istio 매니페스트를 YAML 파일로 씁니다 (Pulumi CLI·클러스터 필요 없음; "
               "이미지 digest 와 비밀 값은 가짜). kubectl diff -f DIR 로 비교하세요.")
PLACEHOLDER_API_SERVER = "https://api-server.invalid:6443"

# Apply order when someone runs `kubectl apply -f DIR` (files sort by name).
KIND_ORDER = [
    "Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding",
    "Secret", "ConfigMap", "PersistentVolumeClaim", "Service", "Deployment",
    "PeerAuthentication", "AuthorizationPolicy", "DestinationRule", "VirtualService",
]


def _sorted(value: Any) -> Any:
    """Mapping keys in sorted order at every depth (list order kept): the
    program's inputs arrive in no stable order, and a rerun of render must
    write the same files byte for byte."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def manifest(obj: mockrun.Declared) -> dict[str, Any]:
    """apiVersion, kind and metadata first, as kubectl writes them; the rest sorted."""
    m = _sorted(obj.manifest)
    out = {"apiVersion": m.get("apiVersion"), "kind": m.get("kind")}
    if "metadata" in m:
        out["metadata"] = m["metadata"]
    out.update({k: v for k, v in m.items() if k not in out})
    return out


def file_name(obj: mockrun.Declared) -> str:
    kind = obj.kind
    order = KIND_ORDER.index(kind) if kind in KIND_ORDER else len(KIND_ORDER)
    ns = obj.namespace or "cluster"
    return f"{order:02d}-{kind.lower()}-{ns}-{obj.meta_name}.yaml"


def render(stack: str, out_dir: str | Path, overrides: Mapping[str, Any] | None = None,
           *, quiet: bool = False, **run_kwargs: Any) -> list[Path]:
    """Write one YAML per object the stack declares; return the paths."""
    say = (lambda *a: None) if quiet else (lambda *a: print(*a, flush=True))
    started = time.monotonic()
    say(f"rendering stack {stack} (Pulumi program under mocks; no cluster, no CLI) ...")
    overrides = dict(overrides or {})
    config, _ = mockrun.stack_config(stack, overrides)
    if not config.get(qkey("domain")):
        # Each user sets theirs on the stack; the files only show structure.
        overrides["domain"] = mockrun.EXAMPLE_DOMAIN
        say(f"  {qkey('domain')} is not set on stack {stack}: using the example {mockrun.EXAMPLE_DOMAIN} "
            f"(--config domain=<yours>.nip.io to render yours)")
    if not config.get(qkey("dashboardApiServer")) and not kubeconfig_server(
        config.get(qkey("kubeContext"), stack), config.get(qkey("kubeconfig")) or None
    ):
        # Only the (secret) dashboardKubeconfig output uses it; no manifest does.
        overrides["dashboardApiServer"] = PLACEHOLDER_API_SERVER
    result = mockrun.run(stack, overrides, **run_kwargs)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.yaml"):
        old.unlink()
    written: list[Path] = []
    counts: dict[str, int] = {}
    for obj in result.objects:
        path = out / file_name(obj)
        path.write_text(yaml.safe_dump(manifest(obj), sort_keys=False, width=1000))
        written.append(path)
        counts[obj.kind] = counts.get(obj.kind, 0) + 1
        say(f"  wrote {path}")
    images = result.outputs.get("images") or {}
    # Built images get fake digests under mocks; pre-pushed ones keep the references the settings give.
    built = "fake digests" if result.of_type("docker:index/image:Image") else "pre-pushed"
    say(f"{len(written)} objects for stack {stack} in {out} ({time.monotonic() - started:.1f}s): "
        + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())))
    say(f"runs here: {', '.join((result.outputs.get('placement') or {}).get('here', [])) or 'no app'}; "
        f"images ({built}): {', '.join(images) or 'none'}")
    return written


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="theater render", description=DESCRIPTION)
    parser.add_argument("--stack", required=True, help="스택 이름, 예: ctx1 (Pulumi.<stack>.yaml 을 읽음)")
    parser.add_argument("--out", help="YAML 을 쓸 디렉터리, 그 안의 *.yaml 은 바뀜 (기본: rendered/<stack>)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="이번 실행에만 스택 설정을 바꿈, 예: --set faults='{\"movie-service\":{\"delay\":\"2s\"}}' "
                             "(doctor·verify·load 와 같은 옵션)")
    parser.add_argument("--config", action="append", default=[], metavar="KEY=VALUE", dest="old_overrides",
                        help="--set 의 예전 이름 (곧 없어짐)")
    parser.add_argument("--quiet", action="store_true", help="진행 줄을 출력하지 않음 (오류만)")
    try:  # argparse's own words in Korean, as for the other commands
        from services.cli import korean  # noqa: PLC0415
    except ImportError:  # pragma: no cover - infra/ without services/ (pulumi up installs infra/ only)
        return parser
    return korean(parser)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.old_overrides:
        print("theater render: --config 는 --set 으로 바뀌었습니다 (--config is deprecated: use --set, "
              "as doctor, verify and load do)", file=sys.stderr)
    out = args.out or str(Path("rendered") / args.stack)
    try:
        render(args.stack, out, parse_overrides(args.old_overrides + args.overrides, "--set"), quiet=args.quiet)
    except (ConfigError, SettingError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
