"""`theater images` builds what the Pulumi program declares, from base images
that stand in for exactly the names the Dockerfile and the Redis pod use.
(The real builds and pushes: tests/e2e/test_images.py.)"""

from __future__ import annotations

import json

import pytest

from services import catalog
from sim import images


def test_extra_build_args_come_after_the_declared_ones() -> None:
    from tests.infra.test_image_plan import _parse_build

    build = images.declared_builds()[0]
    parsed = _parse_build(images.build_command(build, "r/p/x", None, {"PACKAGE_INDEX": "https://mirror/simple"}))
    assert parsed["args"] == {**build.build_args, "PACKAGE_INDEX": "https://mirror/simple"}
    assert parsed["platform"] is None


def test_stand_ins_carry_exactly_the_names_the_dockerfile_and_redis_use() -> None:
    wanted = images.dockerfile_base_images()
    assert set(wanted) == {"python", "uv"}, wanted  # nothing else is pulled
    names = [s.image for s in images.StandIns(images.DockerEngine()).recipes()]
    assert sorted(names) == sorted([wanted["python"], wanted["uv"], catalog.REDIS.image])
    # Each stand-in is built FROM one of ours, never from a registry.
    recipes = {s.image: s.dockerfile for s in images.StandIns(images.DockerEngine()).recipes()}
    assert recipes[wanted["python"]].startswith(f"FROM {images.ROOTFS_IMAGE}\n")
    assert recipes[wanted["uv"]].startswith("FROM scratch\n")
    assert recipes[catalog.REDIS.image].startswith(f"FROM {wanted['python']}\n")


def test_stand_in_redis_does_not_add_protected_mode_itself() -> None:
    """The official image's entrypoint adds `--protected-mode no`; the pod must
    pass it itself, so the stand-in must not hide its absence."""
    recipe = {s.image: s.dockerfile for s in images.StandIns(images.DockerEngine()).recipes()}[catalog.REDIS.image]
    assert "protected-mode" not in recipe.replace("`--protected-mode no`", "") and "ENTRYPOINT" not in recipe


def test_the_uv_stand_in_has_the_dockerfile_uv_tag_whatever_uv_this_machine_runs(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The uv image is ghcr.io/astral-sh/uv:0.13: its stand-in holds a uv 0.13.x,
    from PyPI's uv wheel when this machine runs another version."""
    real_path, real_version = images.host_uv()
    assert images.uv_binary(real_version.rsplit(".", 1)[0]) == (real_path, real_version)
    monkeypatch.setattr(images, "host_uv", lambda: (real_path, "0.99.1"))
    tag = images.dockerfile_base_images()["uv"].rsplit(":", 1)[1]
    path, version = images.uv_binary(tag)
    assert version.startswith(tag + ".")
    assert path.read_bytes()[:4] == b"\x7fELF"
    with pytest.raises(images.ImageError, match="uv==0.0.\\*"):
        images.uv_binary("0.0")


@pytest.mark.parametrize("bad", ["NOEQUALS", "=value", "1X=2", "A B=c"])
def test_bad_build_arg_is_refused(bad: str) -> None:
    with pytest.raises(images.ImageError, match="KEY=VALUE"):
        images._extra_args([bad])


def run_cli(*argv: str) -> tuple[int, str]:
    import contextlib
    import io

    from services import cli

    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        code = cli.main(["images", *argv])
    return code, err.getvalue()


def test_push_without_a_simulation_says_how_to_start_one(tmp_path) -> None:
    code, err = run_cli("push", "--dir", str(tmp_path / "nothing"))
    assert code == 1 and "theater sim up" in err


def test_push_to_a_simulation_without_registry_or_with_a_dead_one(tmp_path) -> None:
    (tmp_path / "state.json").write_text(json.dumps({"istio": "current", "planes": []}))
    code, err = run_cli("push", "--dir", str(tmp_path))
    assert code == 1 and "has no registry" in err
    dead = {"directory": str(tmp_path / "reg"), "port": 1, "pid": 2 ** 22 + 12345, "project": "theater-msa",
            "ca": None, "admin": {"username": "admin", "password": "x"}, "robot": None}
    (tmp_path / "state.json").write_text(json.dumps({"registry": dead}))
    code, err = run_cli("push", "--dir", str(tmp_path))
    assert code == 1 and "not running" in err


def test_the_engine_lock_admits_one_process_at_a_time(tmp_path) -> None:
    """Two test runs on one machine share the engine: stand-ins and the OCI
    layout are written by one process at a time."""
    import subprocess
    import sys
    import time

    engine = images.DockerEngine(tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", (
        "import sys, time; from pathlib import Path; from sim.images import DockerEngine\n"
        f"with DockerEngine(Path({str(tmp_path)!r})).lock('oci', lambda m: None):\n"
        "    print('held', flush=True); time.sleep(1.5)\n")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        said: list[str] = []
        started = time.monotonic()
        with engine.lock("oci", said.append):
            waited = time.monotonic() - started
    finally:
        holder.wait(10)
    assert waited > 0.5 and said and "waiting" in said[0]
