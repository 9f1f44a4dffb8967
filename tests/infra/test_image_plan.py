"""infra/images.py (the Pulumi program) and `theater images push` (sim/images.py)
build the same images: both read infra/image_plan.py, and this test compares
what each would actually run, so a change to one without the other fails."""

from __future__ import annotations

import json

from services import catalog
from sim import images


def _parse_build(argv: list[str]) -> dict:
    """A `docker build` argument list back into what it builds."""
    assert argv[0] == "build"
    out: dict = {"args": {}, "platform": None}
    i = 1
    while i < len(argv) - 1:
        flag = argv[i]
        if flag in ("-f", "-t", "--platform", "--build-arg", "--network"):
            value = argv[i + 1]
            if flag == "--build-arg":
                key, _, val = value.partition("=")
                out["args"][key] = val
            else:
                out[{"-f": "dockerfile", "-t": "image", "--platform": "platform", "--network": "network"}[flag]] = value
            i += 2
        else:
            i += 1
    out["context"] = argv[-1]
    return out


def test_the_build_step_builds_exactly_what_the_program_declares(run_stack) -> None:
    """Every image ServiceImages would build (all services placed in one cluster,
    v2 there too): same names, tags, context, Dockerfile, build args and platform
    as `theater images push`. Changing either side alone fails this test."""
    registry = "127.0.0.1:5000"
    everything_here = {"placement": json.dumps({name: "ctx1" for name in catalog.SERVICES}),
                       "v2Cluster": "ctx1", "registry": registry, "buildImages": "true"}
    run = run_stack("ctx1", **everything_here)
    declared = {
        img.name: {"image": img.inputs["imageName"], "context": img.inputs["build"]["context"],
                   "dockerfile": img.inputs["build"]["dockerfile"], "args": img.inputs["build"]["args"],
                   "platform": img.inputs["build"]["platform"]}
        for img in run.of_type("docker:index/image:Image")
    }
    assert set(declared) == set(catalog.SERVICES) | {v.name for v in catalog.VERSIONS.values()}

    built = {}
    for build in images.declared_builds():
        parsed = _parse_build(images.build_command(build, f"{registry}/{images.PROJECT}/{build.service}",
                                                   images.PLATFORM))
        assert parsed.pop("network") == "host"  # dockerd runs with --bridge=none
        built[build.key] = parsed
    assert built == declared
