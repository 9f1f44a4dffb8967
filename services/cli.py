"""The `theater` command.

    theater local    run the whole app on this machine (services/local.py)
    theater render   render the Kubernetes manifests (infra/render.py)
    theater tools    build the deploy and simulation tools from Go modules (sim/tools.py)
    theater sim      two simulated clusters to rehearse a deployment (sim/simulation.py)
    theater images   build the images without Docker Hub, push them to the sim (sim/images.py)
    theater doctor   before deploying: what the clusters still miss (checklist/doctor.py)
    theater verify   after deploying: the demo checklist, item by item (checklist/verify.py)
    theater load     during the demo: bounded traffic with live counts (checklist/load.py)
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from services import local


# Subcommands in checklist/, imported only when run (lightkube and httpx2 would slow `theater local`'s start).
CHECKLIST = {"doctor": "배포 전: 두 클러스터에 아직 없는 것을 점검 (읽기만)",
             "verify": "배포 후: 데모 점검표를 항목마다 근거와 함께",
             "load": "시연 중: 정해진 양의 데모 트래픽과 실시간 건수"}


class KoreanHelp(argparse.HelpFormatter):
    def add_usage(self, usage, actions, groups, prefix=None):  # noqa: ANN001 (argparse's signature)
        return super().add_usage(usage, actions, groups, "사용법: " if prefix is None else prefix)


def korean(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """argparse's own words in Korean too (the option help is Korean; flag names stay English)."""
    parser.formatter_class = KoreanHelp
    parser._optionals.title = "옵션"
    parser._positionals.title = "명령"
    for action in parser._actions:
        if isinstance(action, argparse._HelpAction):
            action.help = "이 도움말을 보여 주고 끝냄"
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = korean(argparse.ArgumentParser(
        prog="theater", description="Theater MSA 교육 키트: 멀티 클러스터 Istio 실습용 영화 예매 앱과 도구",
        epilog="명령마다 옵션: theater <명령> --help"))
    commands = parser.add_subparsers(dest="command", metavar="명령", required=True)
    run_local = korean(commands.add_parser("local", help="Redis 와 모든 서비스를 이 컴퓨터에서 실행",
                                           description=local.DESCRIPTION))
    local.add_arguments(run_local)
    from sim import images, simulation, tools  # noqa: PLC0415 (keeps `theater local` free of sim imports)

    tools.add_arguments(commands.add_parser("tools", help="배포·시뮬레이션 도구를 Go 모듈에서 빌드",
                                            description=tools.__doc__.splitlines()[0]))
    simulation.add_arguments(commands.add_parser("sim", help="모의 클러스터 두 개(ctx1, ctx2)로 배포 리허설",
                                                 description=simulation.__doc__.splitlines()[0]))
    images.add_arguments(commands.add_parser("images", help="이미지 빌드·푸시 (Docker Hub 불필요)",
                                             description=images.__doc__.splitlines()[0]))
    for name, text in CHECKLIST.items():  # they parse their own options (checklist/<name>.py)
        commands.add_parser(name, help=text, add_help=False)
    commands.add_parser("render", help="Kubernetes 매니페스트를 YAML 파일로 (클러스터 필요 없음)", add_help=False)
    return parser


def render(argv: list[str]) -> int:
    try:
        module = importlib.import_module("infra.render")
    except ModuleNotFoundError as exc:
        if exc.name not in ("infra", "infra.render"):
            raise
        print("theater render: infra/render.py is not available in this checkout", file=sys.stderr)
        return 2
    result = module.main(argv)
    return result if isinstance(result, int) else 0


def checklist_parser(name: str) -> argparse.ArgumentParser:
    module = importlib.import_module(f"checklist.{name}")
    parser = korean(argparse.ArgumentParser(prog=f"theater {name}", description=CHECKLIST[name]))
    module.add_arguments(parser)
    return parser


def checklist(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"checklist.{name}")
    return module.main(checklist_parser(name).parse_args(argv))


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv and argv[0] == "render":
        return render(argv[1:])  # infra/render.py parses its own options
    if argv and argv[0] in CHECKLIST:
        return checklist(argv[0], argv[1:])
    args = build_parser().parse_args(argv)
    if args.command == "local":
        return local.main(args)
    if args.command in ("tools", "sim", "images"):
        from sim import images, simulation, tools  # noqa: PLC0415

        return {"tools": tools, "sim": simulation, "images": images}[args.command].main(args)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())
