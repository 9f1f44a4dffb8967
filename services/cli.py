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
CHECKLIST = {"doctor": "before deploying: check both clusters (read-only)",
             "verify": "after deploying: the demo checklist with evidence",
             "load": "bounded demo traffic with live counts"}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="theater", description="Theater MSA teaching kit")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    run_local = commands.add_parser(
        "local", help="run Redis and every service on this machine", description=local.__doc__.splitlines()[0]
    )
    local.add_arguments(run_local)
    from sim import images, simulation, tools  # noqa: PLC0415 (keeps `theater local` free of sim imports)

    tools.add_arguments(commands.add_parser("tools", help="build the deploy and simulation tools (Go)",
                                            description=tools.__doc__.splitlines()[0]))
    simulation.add_arguments(commands.add_parser("sim", help="two simulated clusters ctx1, ctx2",
                                                 description=simulation.__doc__.splitlines()[0]))
    images.add_arguments(commands.add_parser("images", help="build and push the images (no Docker Hub needed)",
                                             description=images.__doc__.splitlines()[0]))
    for name, text in CHECKLIST.items():  # they parse their own options (checklist/<name>.py)
        commands.add_parser(name, help=f"{text} (options: theater {name} --help)", add_help=False)
    commands.add_parser(
        "render",
        help="render the Kubernetes manifests (options: theater render --help)",
        add_help=False,
    )
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


def checklist(name: str, argv: list[str]) -> int:
    module = importlib.import_module(f"checklist.{name}")
    parser = argparse.ArgumentParser(prog=f"theater {name}", description=module.__doc__.splitlines()[0])
    module.add_arguments(parser)
    return module.main(parser.parse_args(argv))


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
