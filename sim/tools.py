"""Build the simulation and deploy tools from their Go modules, once.

    theater tools build     build whatever is missing (idempotent, shows progress)
    theater tools status    where each binary comes from, and its version
    theater tools env       `export PATH=...` for a shell that should use them

Versions are pinned in sim/versions.toml. Each tool is built with the local Go
toolchain into ~/.cache/theater/tools/<tool>-<version>/ (THEATER_TOOLS_DIR
overrides the root), so a second run, or CI right after a working session,
reuses it. A binary already on PATH (an official build) is used as it is.

Modules with `replace` directives (k8s.io/kubernetes, etcd's server, Pulumi's
pkg) are built through a wrapper module that requires them and repeats each
replace with a published version. The Kubernetes provider needs its schema
embedded first (its `go:generate` step), so its module is copied out of the
module cache, the embed files are written, and it is built in place.

The Python language host is not served by the Go module proxy
(github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3 answers 403
for every version), so `pulumi-language-python` here is a small launcher for
the Python SDK's own in-process language runtime (sim/language_host.py).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import stat
import subprocess
import sys
import time
import tomllib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

VERSIONS_FILE = Path(__file__).with_name("versions.toml")
LANGUAGE_HOST = "pulumi-language-python"


class ToolError(RuntimeError):
    """A tool could not be found or built; the message says what to do."""


@dataclass(frozen=True)
class Tool:
    name: str
    module: str
    version: str
    binaries: tuple[str, ...]
    replace: tuple[str, ...] = ()
    extra: dict = field(default_factory=dict, hash=False, compare=False)

    @property
    def key(self) -> str:
        return f"{self.name}-{self.version}"


def load_versions(path: Path = VERSIONS_FILE) -> dict[str, Tool]:
    data = tomllib.loads(path.read_text())
    tools = {}
    for name, spec in data.items():
        known = {"module", "version", "binaries", "replace"}
        tools[name] = Tool(
            name=name,
            module=spec["module"],
            version=spec["version"],
            binaries=tuple(spec["binaries"]),
            replace=tuple(spec.get("replace", ())),
            extra={k: v for k, v in spec.items() if k not in known},
        )
    return tools


def versions_hash(path: Path = VERSIONS_FILE) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()[:12]


def tools_root() -> Path:
    root = os.environ.get("THEATER_TOOLS_DIR")
    if root:
        return Path(root).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "theater" / "tools"


def tool_dir(tool: Tool) -> Path:
    return tools_root() / tool.key


def _complete(tool: Tool) -> bool:
    d = tool_dir(tool)
    return (d / ".complete").is_file() and all((d / b).is_file() for b in tool.binaries)


def _on_path(binary: str) -> str | None:
    """A binary on PATH that is not one of our own cache's."""
    root = str(tools_root())
    for entry in os.environ.get("PATH", "").split(os.pathsep):
        if not entry or entry.startswith(root):
            continue
        candidate = Path(entry) / binary
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return None


def locate(tools: dict[str, Tool] | None = None) -> dict[str, str | None]:
    """Binary name -> path: our build first, else PATH, else None."""
    tools = tools or load_versions()
    found: dict[str, str | None] = {}
    for tool in tools.values():
        built = _complete(tool)
        for binary in tool.binaries:
            found[binary] = str(tool_dir(tool) / binary) if built else _on_path(binary)
    host = tool_dir(tools["pulumi"]) / LANGUAGE_HOST
    found[LANGUAGE_HOST] = str(host) if host.is_file() else _on_path(LANGUAGE_HOST)
    return found


def missing(tools: dict[str, Tool] | None = None) -> list[str]:
    return [name for name, path in locate(tools).items() if path is None]


def bin_dirs(tools: dict[str, Tool] | None = None) -> list[str]:
    """Directories to put first on PATH so every tool resolves to what locate() found."""
    dirs: list[str] = []
    for path in locate(tools).values():
        if path and (d := str(Path(path).parent)) not in dirs:
            dirs.append(d)
    return dirs


def tool_env(base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for running pulumi and the cluster processes."""
    env = dict(os.environ if base is None else base)
    env["PATH"] = os.pathsep.join([*bin_dirs(), env.get("PATH", "")])
    env.setdefault("PULUMI_SKIP_UPDATE_CHECK", "true")
    env.setdefault("PULUMI_DIY_BACKEND_NO_LEGACY_WARNING", "true")
    return env


# --- building ----------------------------------------------------------------


class Progress:
    def __init__(self, total: int) -> None:
        self.total = total
        self.step = 0
        self.started = time.monotonic()

    def __call__(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        print(f"[tools {self.step}/{self.total} {elapsed:6.0f}s] {message}", flush=True)

    def background(self, message: str) -> None:
        """A line from the download thread, which runs ahead of the numbered steps."""
        print(f"[tools {'':>3} {time.monotonic() - self.started:6.0f}s] {message}", flush=True)


def _go(args: list[str], cwd: Path, log: Path, env: dict[str, str], *, quiet: bool = False) -> None:
    """Run go, appending its output to log (only its errors when quiet)."""
    with log.open("a") as out:
        out.write(f"\n$ go {' '.join(args)}\n")
        out.flush()
        result = subprocess.run(["go", *args], cwd=cwd, stdout=subprocess.DEVNULL if quiet else out, stderr=out, env=env)
    if result.returncode != 0:
        tail = log.read_text().splitlines()[-15:]
        raise ToolError(f"go {' '.join(args[:2])} failed in {cwd} (log: {log}):\n" + "\n".join(tail))


def go_env() -> dict[str, str]:
    if shutil.which("go") is None:
        raise ToolError("the Go toolchain is not on PATH: install Go 1.24 or newer (https://go.dev/dl/)")
    env = dict(os.environ)
    env.setdefault("GOFLAGS", "-buildvcs=false")
    # The compiler and linker collect garbage less often: ~10% less CPU for
    # the same build (etcd: 171 -> 154 CPU-s), ~10% more memory per process.
    env.setdefault("GOGC", "400")
    env["CGO_ENABLED"] = "0"
    return env


def module_dir(module: str, version: str, cwd: Path, log: Path, env: dict[str, str]) -> dict:
    with log.open("a") as out:
        result = subprocess.run(
            ["go", "mod", "download", "-json", f"{module}@{version}"],
            cwd=cwd, stdout=subprocess.PIPE, stderr=out, env=env, text=True,
        )
    info = json.loads(result.stdout or "{}")
    if result.returncode != 0 or "Error" in info:
        raise ToolError(f"the Go module proxy does not serve {module}@{version}: {info.get('Error', 'see ' + str(log))}")
    return info


def _replace_lines(replace: tuple[str, ...]) -> list[str]:
    lines = []
    for spec in replace:
        old, _, new = spec.partition("=")
        if not new:  # "mod@v": the same module at a published version
            mod, _, ver = old.partition("@")
            lines.append(f"replace {mod} => {mod} {ver}")
        else:
            mod, _, ver = new.partition("@")
            lines.append(f"replace {old} => {mod} {ver}")
    return lines


def _staging_replaces(tool: Tool, cwd: Path, log: Path, env: dict[str, str]) -> tuple[str, ...]:
    """k8s.io/kubernetes replaces every k8s.io/<staging> module with ./staging/...:
    repeat them with the published v0.<minor>.<patch>."""
    info = module_dir(tool.module, tool.version, cwd, log, env)
    staging = tool.extra["staging_version"]
    mods = []
    for line in Path(info["GoMod"]).read_text().splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[1] == "=>" and parts[2].startswith("./staging/"):
            mods.append(f"{parts[0]}@{staging}")
    if not mods:
        raise ToolError(f"found no staging replaces in {tool.module}@{tool.version}'s go.mod")
    return tuple(mods)


def _packages(tool: Tool) -> list[str]:
    if tool.name == "coredns":
        return [f"{tool.module}/coremain", *(f"{tool.module}/plugin/{p}" for p in tool.extra["plugins"])]
    return {
        "kubernetes": [f"k8s.io/kubernetes/cmd/{b}" for b in tool.binaries],
        "etcd": ["go.etcd.io/etcd/server/v3"],
        "kwok": ["sigs.k8s.io/kwok/cmd/kwok"],
        "pulumi": ["github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"],
    }[tool.name]


def _ldflags(tool: Tool) -> str:
    if tool.name == "kubernetes":
        major, minor = tool.version.lstrip("v").split(".")[:2]
        base = "k8s.io/component-base/version"
        return (
            f"-s -w -X {base}.gitVersion={tool.version} -X {base}.gitMajor={major} -X {base}.gitMinor={minor}"
            f" -X {base}.gitTreeState=clean"
        )
    if tool.name == "pulumi":
        return f"-s -w -X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version={tool.version}"
    if tool.name == "kwok":
        return f"-s -w -X sigs.k8s.io/kwok/pkg/consts.Version={tool.version}"
    if tool.name == "etcd":
        return "-s -w"
    if tool.name == "coredns":
        return f"-s -w -X github.com/coredns/coredns/coremain.GitCommit={tool.version}"
    if tool.name == "pulumi-kubernetes":
        return f"-s -w -X github.com/pulumi/pulumi-kubernetes/provider/v4/pkg/version.Version={tool.extra['release']}"
    raise ToolError(f"no build recipe for {tool.name}")


def _prepare_wrapped(tool: Tool, work: Path, log: Path, env: dict[str, str]) -> list[str]:
    """Write the wrapper module and download every module it needs. Returns the `go build` arguments."""
    replace = tool.replace
    if tool.name == "kubernetes":
        replace = _staging_replaces(tool, work, log, env)
    go_mod = [f"module theater.local/tools/{tool.name}", "", "go 1.22", "", f"require {tool.module} {tool.version}", ""]
    go_mod += _replace_lines(replace)
    (work / "go.mod").write_text("\n".join(go_mod) + "\n")
    packages = _packages(tool)
    out = tool_dir(tool)
    if tool.name == "coredns":
        # CoreDNS' own main.go with a chosen plugin set: coremain plus the plugins'
        # packages (each registers itself in init); dnsserver.Directives keeps the order.
        (work / "tools.go").unlink(missing_ok=True)
        (work / "main.go").write_text(_coredns_main(packages))
        _go(["mod", "tidy"], work, log, env)
        return ["build", "-trimpath", "-ldflags", _ldflags(tool), "-o", str(out / "coredns"), "."]
    imports = "\n".join(f'\t_ "{p}"' for p in packages)
    (work / "tools.go").write_text(f"//go:build tools\n\npackage tools\n\nimport (\n{imports}\n)\n")
    _go(["mod", "tidy"], work, log, env)
    # One package: name the binary (etcd's package is its module root, .../server/v3).
    target = str(out / tool.binaries[0]) if len(packages) == 1 else str(out) + "/"
    return ["build", "-trimpath", "-ldflags", _ldflags(tool), "-o", target, *packages]


def _coredns_main(packages: list[str]) -> str:
    coremain, plugins = packages[0], packages[1:]
    imports = "\n".join(f'\t_ "{p}"' for p in plugins)
    return (f"// CoreDNS with the plugins sim/versions.toml lists (theater tools build).\npackage main\n\n"
            f'import (\n\t"{coremain}"\n{imports}\n)\n\nfunc main() {{\n\tcoremain.Run()\n}}\n')


def _prepare_provider(tool: Tool, work: Path, log: Path, env: dict[str, str]) -> list[str]:
    """Copy the provider's module out of the cache, write its embed files and download its dependencies.
    Returns the `go build` arguments (run in work/src)."""
    info = module_dir(tool.module, tool.version, work, log, env)
    src = work / "src"
    if src.exists():
        shutil.rmtree(src, onerror=lambda f, p, e: (os.chmod(p, stat.S_IWRITE | stat.S_IREAD | stat.S_IEXEC), f(p)))
    shutil.copytree(info["Dir"], src)
    for path in [src, *src.rglob("*")]:
        path.chmod(path.stat().st_mode | stat.S_IWUSR)
    sdk_mod, _, sdk_version = tool.extra["sdk_replace"].partition("@")
    go_mod = (src / "go.mod").read_text().replace(f"{sdk_mod} => ../sdk", f"{sdk_mod} => {sdk_mod} {sdk_version}")
    (src / "go.mod").write_text(go_mod)
    # The module's go:generate step (cmd/pulumi-resource-kubernetes/generate.go):
    # the schema with its version set, and the terraform mapping, re-serialized.
    cmd = src / "cmd" / "pulumi-resource-kubernetes"
    schema = json.loads((cmd / "schema.json").read_text())
    schema["version"] = tool.extra["release"]
    (cmd / "schema-embed.json").write_text(json.dumps(schema, separators=(",", ":")))
    mapping = json.loads((cmd / "terraform-mapping.json").read_text())
    (cmd / "terraform-mapping-embed.json").write_text(json.dumps(mapping, separators=(",", ":")))
    # -mod=mod: the replaced sdk module's checksums are not in the copied go.sum yet.
    # `go list -deps` downloads exactly the modules the build will compile.
    _go(["list", "-mod=mod", "-deps", "./cmd/pulumi-resource-kubernetes"], src, log, env, quiet=True)
    return ["build", "-mod=mod", "-trimpath", "-ldflags", _ldflags(tool),
            "-o", str(tool_dir(tool) / "pulumi-resource-kubernetes"), "./cmd/pulumi-resource-kubernetes"]


def write_language_host(directory: Path) -> Path:
    """`pulumi-language-python`: the Python SDK's in-process language runtime,
    run by the first python3 on PATH (the project's venv under `uv run`), or
    by $THEATER_PYTHON."""
    path = directory / LANGUAGE_HOST
    path.write_text(
        "#!/bin/sh\n"
        "# Launcher for the Python SDK's language runtime (sim/language_host.py, theater-msa).\n"
        'exec "${THEATER_PYTHON:-python3}" -m sim.language_host "$@"\n'
    )
    path.chmod(0o755)
    return path


def _workdir(tool: Tool) -> tuple[Path, Path]:
    work = tools_root() / "build" / tool.key
    return work, work / "build.log"


def _prepare(tool: Tool, env: dict[str, str], progress: Progress) -> list[str] | None:
    """Fetch what tool's build needs; None when it is complete already."""
    if _complete(tool):
        return None
    work, log = _workdir(tool)
    work.mkdir(parents=True, exist_ok=True)
    tool_dir(tool).mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    progress.background(f"downloading {tool.key}'s modules from {tool.module}; log: {log}")
    prepare = _prepare_provider if tool.name == "pulumi-kubernetes" else _prepare_wrapped
    args = prepare(tool, work, log, env)
    progress.background(f"downloaded {tool.key}'s modules in {time.monotonic() - started:.0f}s")
    return args


def build(tools: dict[str, Tool] | None = None, *, only: list[str] | None = None) -> list[str]:
    """Build every tool whose binaries are neither built nor on PATH. Returns what was built."""
    tools = tools or load_versions()
    wanted = [t for t in tools.values() if not only or t.name in only]
    todo = [
        t for t in wanted
        if not _complete(t) and any(_on_path(b) is None for b in t.binaries)
    ]
    progress = Progress(len(todo))
    for tool in wanted:
        if tool not in todo:
            where = tool_dir(tool) if _complete(tool) else "PATH"
            print(f"[tools] {tool.key}: ready ({where})", flush=True)
    env = go_env() if todo else {}
    # Downloads are network-bound and compiling is CPU-bound: a background
    # thread fetches each tool's modules, in order, while the tools before
    # it compile. The module cache takes concurrent go commands (it locks).
    downloads = ThreadPoolExecutor(max_workers=1, thread_name_prefix="go-download")
    prepared = {tool.key: downloads.submit(_prepare, tool, env, progress) for tool in todo}
    try:
        for tool in todo:
            progress.step += 1
            args = prepared[tool.key].result()
            if args is None:  # built meanwhile by another `theater tools build`
                progress(f"{tool.key}: ready ({tool_dir(tool)})")
                continue
            work, log = _workdir(tool)
            progress(f"compiling {tool.key} ({', '.join(tool.binaries)}); log: {log}")
            cwd = work / "src" if tool.name == "pulumi-kubernetes" else work
            _go(args, cwd, log, env)
            for binary in tool.binaries:
                if not (tool_dir(tool) / binary).is_file():
                    raise ToolError(f"{tool.key}: the build did not produce {binary} (log: {log})")
            (tool_dir(tool) / ".complete").write_text(f"{tool.module}@{tool.version}\n")
            progress(f"built {tool.key}")
    finally:
        downloads.shutdown(wait=False, cancel_futures=True)
    pulumi_dir = tool_dir(tools["pulumi"])
    if _complete(tools["pulumi"]) and (only is None or "pulumi" in only):
        write_language_host(pulumi_dir)
    return [t.key for t in todo]


def version_of(binary: str, path: str) -> str:
    args = {
        "pulumi": ["version"],
        "etcd": ["--version"],
        "kwok": ["--version"],
        "coredns": ["-version"],
        LANGUAGE_HOST: None,
        "pulumi-resource-kubernetes": None,
    }.get(binary, ["--version"])
    if args is None:
        return "-"
    try:
        result = subprocess.run([path, *args], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"error: {exc}"
    return (result.stdout or result.stderr).strip().splitlines()[0] if (result.stdout or result.stderr) else "-"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="없는 것만 빌드")
    b.add_argument("--only", action="append", choices=sorted(load_versions()), help="이 도구만 빌드")
    sub.add_parser("status", help="각 바이너리의 위치와 버전")
    sub.add_parser("env", help="export PATH 줄 출력")


def main(args: argparse.Namespace) -> int:
    try:
        if args.action == "build":
            started = time.monotonic()
            built = build(only=args.only)
            print(f"[tools] done in {time.monotonic() - started:.0f}s; built: {', '.join(built) or 'nothing'}")
            print(f"[tools] cache: {tools_root()} (versions {versions_hash()})")
            return 0
        if args.action == "env":
            print(f'export PATH="{os.pathsep.join(bin_dirs())}:$PATH"')
            return 0
        for binary, path in locate().items():
            print(f"{binary:28} {path or 'MISSING (uv run theater tools build)'}")
            if path:
                print(f"{'':28} {version_of(binary, path)}")
        return 1 if missing() else 0
    except ToolError as exc:
        print(f"theater tools: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    parser = argparse.ArgumentParser(prog="theater tools", description=__doc__.splitlines()[0])
    add_arguments(parser)
    sys.exit(main(parser.parse_args()))
