"""services/Dockerfile builds where Docker Hub and ghcr.io are out of reach
(issue 22). The real builds, and what runs in the image: tests/e2e/test_images.py."""

from __future__ import annotations

import re
from pathlib import Path

DOCKERFILE = Path(__file__).resolve().parents[2] / "services" / "Dockerfile"


def instructions(text: str) -> list[str]:
    """Instructions with continuation lines joined, comments dropped."""
    out: list[str] = []
    buf = ""
    for line in text.splitlines():
        if not buf and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            buf += line.rstrip()[:-1] + " "
            continue
        out.append(" ".join((buf + line).split()))
        buf = ""
    return out


def stages(text: str) -> tuple[list[str], list[tuple[str, str | None, list[str]]]]:
    """(global ARGs, [(FROM image, stage name, instructions)])."""
    head: list[str] = []
    result: list[tuple[str, str | None, list[str]]] = []
    for ins in instructions(text):
        m = re.match(r"(?i)FROM\s+(\S+)(?:\s+AS\s+(\S+))?$", ins)
        if m:
            result.append((m.group(1), m.group(2), []))
        elif result:
            result[-1][2].append(ins)
        else:
            head.append(ins)
    return head, result


TEXT = DOCKERFILE.read_text()


def test_no_syntax_directive() -> None:
    """`# syntax=docker/dockerfile:1` makes BuildKit pull the frontend from Docker Hub; nothing needs it."""
    assert not re.search(r"(?im)^#\s*syntax\s*=", TEXT)


def test_every_copy_from_names_a_stage_not_an_image() -> None:
    """`COPY --from=ghcr.io/...` cannot be redirected to a proxy cache; a stage FROM an ARG can."""
    _, st = stages(TEXT)
    names: set[str] = set()
    for _, name, body in st:
        for ins in body:
            m = re.match(r"(?i)COPY\s+--from=(\S+)", ins)
            if m:
                assert m.group(1) in names, f"COPY --from={m.group(1)} is not an earlier stage"
        if name:
            names.add(name)


def test_base_images_are_build_args_with_the_usual_defaults() -> None:
    head, st = stages(TEXT)
    defaults = dict(re.match(r"ARG\s+(\w+)=(\S+)", a).groups() for a in head if "=" in a)
    assert defaults.get("UV_IMAGE") == "ghcr.io/astral-sh/uv:0.13"
    assert defaults.get("PYTHON_IMAGE") == "python:3.11-slim"
    froms = {name: image for image, name, _ in st}
    assert froms.get("uv") == "${UV_IMAGE}"
    assert all(image.startswith("${") for image, _, _ in st), "every FROM is a build argument"


def test_uv_stays_out_of_the_runtime_image() -> None:
    """uv (~38 MB) is needed to build the environment, not to run it."""
    _, st = stages(TEXT)
    final = st[-1][2]
    assert not any(re.match(r"(?i)COPY\s+--from=uv\b", ins) for ins in final)
    assert not any("uv " in ins or "/uv" in ins for ins in final if ins.upper().startswith(("RUN", "COPY"))), final
    assert any(re.match(r"(?i)COPY\s+--from=\w+\s+/app/\.venv\s", ins) for ins in final)
    assert "USER 10001:10001" in final


def test_an_extra_ca_and_a_package_index_can_be_given() -> None:
    """Classes behind a TLS-inspecting proxy: EXTRA_CA_PEM is trusted by uv
    while packages install; PACKAGE_INDEX serves the locked versions, hashes checked."""
    _, st = stages(TEXT)
    builder = next(body for _, name, body in st if name == "build")
    assert "ARG EXTRA_CA_PEM=\"\"" in builder and "ARG PACKAGE_INDEX=\"\"" in builder
    run = next(ins for ins in builder if ins.startswith("RUN") and "uv sync" in ins)
    assert "SSL_CERT_FILE" in run and "$EXTRA_CA_PEM" in run
    assert "--index-url \"$PACKAGE_INDEX\"" in run and "--require-hashes" in run
    assert "uv sync --frozen" in run  # without PACKAGE_INDEX: the lockfile's own URLs
