"""The README agrees with the program and reads in the order an instructor
acts: every setting it (or docs/) names exists and docs/settings.md lists
them all, each lesson command targets a stack whose sidecars apply it, the
deployment steps come in the order they are run for both stacks, every
`theater` command it shows is accepted by that command, every link leads
somewhere, and it stays short, numbered in order, with a table of contents."""

from __future__ import annotations

import importlib
import json
import re
import shlex
import tomllib
from pathlib import Path

import pytest

from infra.settings import SETTINGS, SETTINGS_BY_KEY
from infra.istio.traffic import edge_services
from services import catalog

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCS = ROOT / "docs"
# docs/benchmarks.md is written by `python -m bench`, not by hand.
HAND_WRITTEN = [README] + sorted(p for p in DOCS.glob("*.md") if p.name != "benchmarks.md")
LESSON_KEYS = ("faults", "routePolicies", "tightCircuitBreaking")


def section(title_prefix: str, path: Path = README) -> str:
    """From the heading that starts with `title_prefix` to the next heading of its level or higher."""
    text = path.read_text()
    start = text.index(title_prefix)
    level = len(title_prefix) - len(title_prefix.lstrip("#"))
    nxt = re.search(rf"^#{{2,{level}}} ", text[start + len(title_prefix):], re.M)
    return text[start:start + len(title_prefix) + (nxt.start() if nxt else len(text))]


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_setting_named_exists(path: Path):
    named = set(re.findall(r"theater-msa:([A-Za-z][A-Za-z0-9]*)", path.read_text()))
    assert named <= set(SETTINGS_BY_KEY), named - set(SETTINGS_BY_KEY)


def test_settings_table_lists_every_setting():
    table = section("## 설정 키", DOCS / "settings.md")
    listed = {k for row in re.findall(r"^\| (`[^|]+) \|", table, re.M) for k in re.findall(r"`([A-Za-z][A-Za-z0-9]*)`", row)}
    assert listed == {s.key for s in SETTINGS}


def clients(service: str, stack: str) -> set[str]:
    """Whose sidecars in `stack`'s cluster call `service` (default placement)."""
    placement = catalog.default_placement()
    out = {s.name for s in catalog.SERVICES.values() if service in s.calls and placement[s.name] == stack}
    if stack == SETTINGS_BY_KEY["ingressCluster"].default and service in edge_services():
        out.add("istio-ingressgateway")
    return out


def lesson_commands() -> list[tuple[str, list[str], str]]:
    """(key, services, stack) of every `pulumi config set` of a lesson in §5.1."""
    found = []
    for line in section("### 5.1").splitlines():
        if not line.startswith("pulumi config set"):
            continue
        words = shlex.split(line.split(" && ")[0])
        stack = words[words.index("--stack") + 1]
        key_word = next(w for w in words if w.startswith("theater-msa:"))
        key = re.match(r"theater-msa:([A-Za-z][A-Za-z0-9]*)", key_word).group(1)
        if key not in LESSON_KEYS:
            continue
        value = words[words.index(key_word) + 1]
        services = [value] if "[" in key_word else list(json.loads(value))
        found.append((key, services, stack))
    return found


def test_lessons_go_on_the_stack_whose_sidecars_apply_them():
    commands = lesson_commands()
    assert {key for key, _, _ in commands} == set(LESSON_KEYS)
    for key, services, stack in commands:
        for service in services:
            assert clients(service, stack), f"{key} for {service} on --stack {stack}: no caller of {service} runs there"


def test_the_checker_knows_where_callers_run():
    assert clients("movie-service", "ctx2") == {"booking-service"}
    assert clients("booking-service", "ctx2") == set()
    assert clients("booking-service", "ctx1") == {"api-gateway", "istio-ingressgateway"}


@pytest.mark.parametrize("needle", [
    "PULUMI_CONFIG_PASSPHRASE",           # pulumi login --local needs a passphrase
    "encryptionsalt",                     # ... and writes it into the stack files
    "pulumi stack output url",
    "<내 조직>/theater-msa/ctx2",          # Pulumi Cloud: the user's own org
    "organization/theater-msa/ctx2",      # local backend
    "nip.io",
    "모든 사용자가 두 스택 모두에",          # every user sets their own domain
    "/etc/docker/certs.d/",               # Harbor with its own certificate
    "pullPassword",
    "imagePullSecret false",
    "PULUMI_K8S_ENABLE_PATCH_FORCE=true",
    "ingressServiceAccount",
])
def test_deploy_steps_mention(needle):
    assert needle in section("## 3.")


def test_dashboard_api_server_is_in_the_steps():
    steps = section("### 3.2")
    assert "dashboardApiServer" in steps and "pulumi up --stack ctx2` 전에" in steps


def test_versions_match_what_is_tested():
    prerequisites = section("### 3.1")
    assert "3.139 이상" in prerequisites  # toolchain: uv came with Pulumi 3.139
    kube = tomllib.loads((ROOT / "sim" / "versions.toml").read_text())["kubernetes"]["version"]
    minor = ".".join(kube.lstrip("v").split(".")[:2])
    assert f"Kubernetes {minor}" in prerequisites
    oldest = sorted(p.stem.removeprefix("crds-") for p in (ROOT / "sim" / "istio").glob("crds-1.*.yaml"))[0]
    assert f"Istio {'.'.join(oldest.split('.')[:2])} 이상" in prerequisites


# --- the deployment order (README 3.2) ---------------------------------------

def commands(text: str) -> list[str]:
    """The command lines of the ```bash blocks of `text`, comments and prompts removed, in order."""
    out = []
    for block in re.findall(r"```bash\n(.*?)```", text, re.S):
        joined = block.replace("\\\n", " ")
        for line in joined.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                out.append(line)
    return out


def first(lines: list[str], prefix: str) -> int:
    return next(i for i, line in enumerate(lines) if line.startswith(prefix))


def test_deploy_commands_come_in_the_order_they_are_run():
    """login, then stack init, then the settings, then doctor, then up (the old 5.2 set config before login)."""
    lines = commands(section("### 3.2"))
    order = [first(lines, p) for p in ("pulumi login", "pulumi stack init", "pulumi config set", "uv run theater doctor",
                                        "pulumi up --stack ctx1", "pulumi up --stack ctx2")]
    assert order == sorted(order), list(zip(order, lines))
    assert first(lines, "pulumi stack init ctx2") < first(lines, "pulumi config set")
    # the status link (remoteStatusStack) comes after ctx2 is up, then ctx1 is updated once more
    remote = first(lines, "pulumi config set theater-msa:remoteStatusStack")
    assert first(lines, "pulumi up --stack ctx2") < remote < max(i for i, l in enumerate(lines) if l == "pulumi up --stack ctx1")
    assert lines[-1].startswith("uv run theater verify")


# Settings that belong to one stack only: the status link is read by ctx1 (where the page runs),
# the API server address is exported by ctx2.
ONE_STACK = {"remoteStatusStack": "ctx1", "dashboardApiServer": "ctx2"}


def test_every_setting_of_the_deploy_is_set_on_both_stacks():
    sets: dict[str, set[str]] = {}
    for line in commands(section("### 3.2")):
        if line.startswith("pulumi config set"):
            words = shlex.split(line)
            key = next(w for w in words if w.startswith("theater-msa:")).split(":")[1]
            sets.setdefault(key, set()).add(words[words.index("--stack") + 1])
    assert {"domain", "registry", "harborPassword", "pullUsername", "pullPassword"} <= set(sets)
    for key, stacks in sets.items():
        assert stacks == ({ONE_STACK[key]} if key in ONE_STACK else {"ctx1", "ctx2"}), (key, stacks)


@pytest.mark.parametrize("needle", [
    "https://istio.io/latest/docs/setup/install/multicluster/multi-primary_multi-network/",
    "kiali", "jaeger", "prometheus",
    "samples/addons",
])
def test_the_prerequisites_point_to_the_istio_install_and_addons(needle):
    assert needle in section("### 3.1").lower()


def test_nip_io_says_to_set_the_registry():
    step = section("### 3.2")
    assert "nip.io" in step and "pulumi config set theater-msa:registry" in step and "Istio 인그레스" in step


# --- structure ----------------------------------------------------------------

def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to '-'."""
    text = heading.strip().lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def headings(text: str) -> list[tuple[int, str]]:
    body = re.sub(r"```.*?```", "", text, flags=re.S)
    return [(len(m.group(1)), m.group(2)) for m in re.finditer(r"^(#{1,6}) (.+)$", body, re.M)]


def test_the_readme_is_short():
    lines = README.read_text().count("\n")
    assert lines < 400, f"README has {lines} lines; move internals to docs/"


def test_the_table_of_contents_lists_every_chapter_and_its_links_resolve():
    text = README.read_text()
    toc = section("## 목차")
    anchors = {slug(title) for _, title in headings(text)}
    links = re.findall(r"\]\(#([^)]+)\)", toc)
    chapters = [title for level, title in headings(text) if level == 2 and re.match(r"\d+\. ", title)]
    assert len(links) == len(chapters) >= 8
    assert [slug(c) for c in chapters] == links
    for link in re.findall(r"\]\(#([^)]+)\)", text):
        assert link in anchors, link


def test_sections_are_numbered_in_order():
    """Chapters 1, 2, 3 … and within each, N.1, N.2 … (the old chapter 3 ran 3.3, 3.4, 3.5, 3.2, 3.1)."""
    numbers = [tuple(int(n) for n in m.group(1).split("."))
               for _, title in headings(README.read_text()) if (m := re.match(r"(\d+(?:\.\d+)*)\.? ", title))]
    chapters = [n[0] for n in numbers if len(n) == 1]
    assert chapters == list(range(1, len(chapters) + 1))
    for chapter in chapters:
        subs = [n[1] for n in numbers if len(n) == 2 and n[0] == chapter]
        assert subs == list(range(1, len(subs) + 1)), (chapter, subs)
        assert all(n[0] in chapters for n in numbers)


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_no_internal_or_missing_references(path: Path):
    text = path.read_text()
    for word in ("이슈 16", "issue 16", "원래 가이드"):
        assert word not in text, f"{path.name}: {word!r} means nothing to a reader"


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_local_link_exists(path: Path):
    for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text()):
        if re.match(r"[a-z]+:", target):
            continue  # https:, mailto:
        assert (path.parent / target).exists(), f"{path.name} links {target}, which does not exist"


def test_the_readme_links_every_document_in_docs():
    linked = set(re.findall(r"\(docs/([^)#]+)\)", README.read_text()))
    assert {p.name for p in DOCS.glob("*.md")} <= linked


def test_readme_1_says_what_the_full_test_suite_needs():
    first_chapter = section("## 1.")
    for needle in ("Go 1.24", "uv run theater tools build", "30", "chromium", "docker.io", "bash .ci/run"):
        assert needle in first_chapter, needle
    # How long the whole suite takes, in minutes (measured, so the figure itself is not pinned here).
    assert re.search(r"테스트 전체[^.]*\*\*약? ?\d+(–\d+)?분\*\*", first_chapter), "README 1 must say how long `uv run pytest` takes"


# --- every `theater` command shown is one the CLI accepts ----------------------

def theater_commands(text: str) -> list[str]:
    found = []
    for match in re.finditer(r"uv run theater ([^`\n#|;&)\"]*)", text):
        found.append(match.group(1).strip())
    return found


def parse(argv: list[str]) -> None:
    from services import cli

    name = argv[0]
    if name == "render":
        importlib.import_module("infra.render").build_parser().parse_args(argv[1:])
    elif name in cli.CHECKLIST:
        cli.checklist_parser(name).parse_args(argv[1:])
    else:
        cli.build_parser().parse_args(argv)


@pytest.mark.parametrize("path", HAND_WRITTEN, ids=lambda p: p.name)
def test_every_theater_command_shown_is_accepted(path: Path, capsys):
    shown = theater_commands(path.read_text())
    if path == README:
        assert len(shown) >= 10
    for command in shown:
        argv = [w for w in shlex.split(command) if not w.startswith("<")]
        if "<" in command or "…" in command:
            continue  # a placeholder (`--url <URL>`), not a command to copy
        try:
            parse(argv)
        except SystemExit as exc:
            if exc.code == 0:  # --help
                continue
            pytest.fail(f"{path.name}: `uv run theater {command}` is refused: {capsys.readouterr().err.strip()} ({exc.code})")


def test_the_readme_shows_every_theater_command():
    from services import cli

    shown = {c.split()[0] for c in theater_commands(README.read_text()) if c}
    assert set(cli.build_parser()._subparsers._group_actions[0].choices) <= shown
