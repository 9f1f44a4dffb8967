"""Container images for the rehearsal, without Docker Hub or ghcr.io.

    theater images build [--build-arg K=V]...   stand-in base images + the service images (local)
    theater images push [--dir .theater/sim]    build, then push to the simulation's registry
                                                (+ the Redis stand-in; digests in <dir>/images.json)
    theater images engine start|stop|status     the Docker engine these commands use

Design and measured times: docs/images.md.

Three steps, each reused when already done:

1. A Docker engine (DockerEngine). The commands use their own dockerd, started
   when none answers on its socket: data root, exec root, pidfile and socket
   under ~/.cache/theater/docker, `--bridge=none --iptables=false` (it never
   touches the machine's network; builds use `--network host`). It keeps
   running, so the next build (CI runs right after) finds its cache.

2. Stand-in base images (StandIns), tagged with exactly the names
   services/Dockerfile and the Redis pod use, so the Dockerfile builds
   unchanged: `python:3.11-slim` from a Debian bookworm rootfs made by
   mmdebstrap (python3 in /usr/local/bin like the official image), the uv
   image from a uv binary of the Dockerfile's uv tag (this machine's, or PyPI's
   uv wheel), and Redis' image from Debian's redis-server. They trust the CA bundle of the building machine
   (/etc/ssl/certs/ca-certificates.crt, SSL_CERT_FILE), so `uv sync` in the
   build reaches the package index this machine reaches. Each carries a label
   with a hash of its recipe; a changed recipe rebuilds it.

3. The service images infra/images.py declares (infra/image_plan.py: same
   context, Dockerfile, build args and tags, v2 included), built with
   `docker build --network host` by the legacy builder (DOCKER_BUILDKIT=0:
   Debian 12's docker.io has no buildx, and BuildKit resolves `FROM` and
   `# syntax=` images on Docker Hub), then pushed with skopeo, which trusts
   the registry's CA from a directory of ours (dockerd reads only
   /etc/docker/certs.d, which is the machine's) and reports the digest. Each
   image is compressed once into an OCI layout under the cache, so the same
   image has the same digest in every simulation's registry.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import fcntl
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Mapping, Sequence

import httpx

from infra.image_plan import DOCKERFILE, ImageBuild, image_builds
from infra.settings import StackConfig
from services import catalog
from sim.commands import need

CACHE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "theater" / "docker"
HOST_CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
SUITE = "bookworm"
MIRRORS = (
    "deb http://deb.debian.org/debian bookworm main",
    "deb http://deb.debian.org/debian bookworm-updates main",
    "deb http://deb.debian.org/debian-security bookworm-security main",
)
ROOTFS_PACKAGES = ("python3", "ca-certificates", "netbase", "tzdata")
ROOTFS_IMAGE = "theater-standin/bookworm-python:rootfs"
RECIPE_LABEL = "org.theater-msa.standin-recipe"
PROJECT = StackConfig.model_fields["harbor_project"].default  # harborProject's default
PLATFORM = StackConfig.model_fields["platform"].default  # the platform setting's default, as the program builds

Say = Callable[[str], None]


class ImageError(RuntimeError):
    """An image step failed; the message says which and what to do."""


def _need(program: str, package: str) -> str:
    return need(program, package, ImageError)


def _stream(argv: Sequence[str], *, env: Mapping[str, str] | None, say: Say, keep: Callable[[str], bool],
            what: str, cwd: Path | None = None) -> str:
    """Run argv, show the lines `keep` selects as they come, return all output; raise with its tail on failure."""
    proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(env) if env is not None else None, cwd=cwd, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    assert proc.stdout is not None
    for line in proc.stdout:
        line = line.rstrip("\n")
        lines.append(line)
        if keep(line):
            say(f"  {line.strip()[:160]}")
    code = proc.wait()
    if code != 0:
        tail = "\n".join(lines[-25:])
        raise ImageError(f"{what} failed (exit {code}):\n{tail}")
    return "\n".join(lines)


# --- 1. the Docker engine ------------------------------------------------------


@dataclass
class DockerEngine:
    """A dockerd of our own under `root` (default ~/.cache/theater/docker)."""

    root: Path = CACHE

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    def env(self) -> dict[str, str]:
        """Environment for the docker CLI: this engine, the legacy builder, a config dir of ours
        (no credential helpers or contexts from ~/.docker)."""
        (self.root / "cli").mkdir(parents=True, exist_ok=True)
        return {**os.environ, "DOCKER_HOST": self.host, "DOCKER_BUILDKIT": "0",
                "DOCKER_CONFIG": str(self.root / "cli"), "DOCKER_CLI_HINTS": "false"}

    def answers(self) -> bool:
        if not self.socket.exists():
            return False
        try:
            with httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), timeout=2, trust_env=False) as c:
                return c.get("http://docker/_ping").text == "OK"
        except httpx.HTTPError:
            return False

    def ensure(self, say: Say = print, timeout: float = 60.0) -> bool:
        """Start dockerd unless it answers. True when this call started it."""
        if self.answers():
            return False
        dockerd = _need("dockerd", "docker.io")
        for d in ("data", "exec"):
            (self.root / d).mkdir(parents=True, exist_ok=True)
        self.socket.unlink(missing_ok=True)
        say(f"starting dockerd (data root {self.root / 'data'}, socket {self.socket})")
        out = self.log.open("ab")
        try:
            proc = subprocess.Popen([
                dockerd, f"--data-root={self.root / 'data'}", f"--exec-root={self.root / 'exec'}",
                f"--pidfile={self.pidfile}", f"--host={self.host}",
                "--bridge=none", "--iptables=false", "--ip-masq=false", "--ip-forward=false",
            ], stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
                cwd=self.root)
        finally:
            out.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-15:])
                raise ImageError(f"dockerd exited (log: {self.log}):\n{tail}")
            if self.answers():
                return True
            time.sleep(0.2)
        raise ImageError(f"dockerd did not answer on {self.socket} within {timeout:.0f}s (log: {self.log})")

    def stop(self, timeout: float = 30.0) -> bool:
        """Stop the dockerd of the pidfile. True when one was running."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return False
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                return True
            time.sleep(0.2)
        os.kill(pid, signal.SIGKILL)
        return True

    @contextlib.contextmanager
    def lock(self, name: str, say: Say = print) -> Iterator[None]:
        """An exclusive lock on <root>/<name>.lock, held by one process at a time."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f"{name}.lock", "w") as handle:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                say(f"waiting for another `theater images` ({self.root / name}.lock)")
                fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def docker(self, *args: str, check: bool = True, input: str | None = None) -> subprocess.CompletedProcess:
        result = subprocess.run([_need("docker", "docker.io"), *args], env=self.env(), capture_output=True,
                                text=True, input=input)
        if check and result.returncode != 0:
            raise ImageError(f"docker {' '.join(args[:3])} failed: {result.stderr.strip()[-2000:]}")
        return result

    def label(self, image: str, label: str) -> str | None:
        """The image's label value; None when the image (or the label) is absent."""
        r = self.docker("image", "inspect", "--format", "{{json .Config.Labels}}", image, check=False)
        if r.returncode != 0:
            return None
        return (json.loads(r.stdout or "null") or {}).get(label)

    def image_id(self, image: str) -> str:
        return self.docker("image", "inspect", "--format", "{{.Id}}", image).stdout.strip()


# --- 2. stand-in base images ----------------------------------------------------


def dockerfile_base_images(dockerfile: Path = DOCKERFILE) -> dict[str, str]:
    """Images the Dockerfile pulls, by role: {"python": "python:3.11-slim", "uv": "ghcr.io/astral-sh/uv:0.13"}.

    Read from its FROM lines, with ARG defaults substituted (the uv image is ARG UV_IMAGE)."""
    args: dict[str, str] = {}
    stages: set[str] = set()
    found: dict[str, str] = {}
    for raw in dockerfile.read_text().splitlines():
        line = raw.strip()
        m = re.match(r"(?i)ARG\s+(\w+)=(\S+)", line)
        if m:
            args.setdefault(m.group(1), m.group(2).strip("\"'"))
            continue
        m = re.match(r"(?i)FROM\s+(?:--\S+\s+)?(\S+)(?:\s+AS\s+(\S+))?", line)
        if m:
            image = re.sub(r"\$\{?(\w+)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            if m.group(2):
                stages.add(m.group(2).lower())
            if image.lower() in stages or image == "scratch":
                continue
            role = "uv" if "/uv" in image.split(":")[0] else "python" if image.startswith("python") else image
            found[role] = image
        m = re.match(r"(?i)COPY\s+--from=(\S+)", line)
        if m and m.group(1).lower() not in stages and not m.group(1).isdigit():
            image = re.sub(r"\$\{?(\w+)\}?", lambda v: args.get(v.group(1), v.group(0)), m.group(1))
            found["uv" if "/uv" in image else image] = image
    return found


def _uv_version(path: Path) -> str:
    out = subprocess.run([str(path), "--version"], capture_output=True, text=True).stdout.split()
    return out[1] if len(out) > 1 else ""


def host_uv() -> tuple[Path, str]:
    """The uv binary this machine runs and its version. `uv run` sets $UV to it;
    a shim on PATH (pyenv) is asked through `uv run`."""
    for candidate in (os.environ.get("UV"), shutil.which("uv")):
        if not candidate:
            continue
        path = Path(candidate).resolve()
        if path.is_file() and path.read_bytes()[:4] == b"\x7fELF":
            return path, _uv_version(path)
        r = subprocess.run([candidate, "run", "--no-project", "--no-sync", "python", "-c",
                            "import os; print(os.environ['UV'])"], capture_output=True, text=True)
        if r.returncode == 0 and r.stdout.strip():
            path = Path(r.stdout.strip()).resolve()
            return path, _uv_version(path)
    raise ImageError("uv is not on PATH (pip install uv)")


def uv_binary(tag: str) -> tuple[Path, str]:
    """A static uv binary of version `tag` (0.13 -> any 0.13.x) for the uv stand-in:
    this machine's own when it matches, else the one in PyPI's uv wheel (fetched by uv)."""
    path, version = host_uv()
    if version == tag or version.startswith(tag + "."):
        return path, version
    r = subprocess.run([str(path), "run", "--no-project", "--isolated", "--with", f"uv=={tag}.*", "python", "-c",
                        "import uv; print(uv.find_uv_bin())"], capture_output=True, text=True, timeout=600)
    if r.returncode != 0 or not r.stdout.strip():
        raise ImageError(f"this machine runs uv {version}, the Dockerfile's uv image is {tag}: fetching uv=={tag}.* "
                         f"from the package index failed: {r.stderr.strip()[-500:]}")
    fetched = Path(r.stdout.strip().splitlines()[-1]).resolve()
    found = _uv_version(fetched)
    if not (found == tag or found.startswith(tag + ".")):
        raise ImageError(f"uv=={tag}.* from the package index reports version {found!r}")
    return fetched, found


@dataclass(frozen=True)
class StandIn:
    image: str  # the exact name it stands in for
    dockerfile: str  # its recipe (FROM one of ours)
    files: Mapping[str, Path]  # build context: name -> source file


def _python_dockerfile() -> str:
    return f"""FROM {ROOTFS_IMAGE}
# Like the official image: python and python3 in /usr/local/bin, UTF-8 locale.
RUN ln -s /usr/bin/python3 /usr/local/bin/python && ln -s /usr/bin/python3 /usr/local/bin/python3
# The building machine's CA bundle: uv (rustls) trusts SSL_CERT_FILE, so `uv sync`
# reaches the package index this machine reaches (also through a TLS-inspecting proxy).
COPY ca-certificates.crt /etc/ssl/certs/ca-certificates.crt
ENV LANG=C.UTF-8 SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt
CMD ["python3"]
"""


UV_DOCKERFILE = """FROM scratch
# Like ghcr.io/astral-sh/uv: the static uv binary at /uv.
COPY uv /uv
ENTRYPOINT ["/uv"]
"""


def _redis_dockerfile(python_image: str) -> str:
    # No entrypoint that adds `--protected-mode no` (the official image's does):
    # the pod's own args must carry it, or other pods cannot connect.
    return f"""FROM {python_image}
RUN apt-get update && apt-get install -y --no-install-recommends redis-server redis-tools \\
    && rm -rf /var/lib/apt/lists/* && mkdir /data && chown 999:1000 /data
WORKDIR /data
EXPOSE 6379
CMD ["redis-server"]
"""


class StandIns:
    """Builds the stand-in base images into an engine, once per recipe."""

    def __init__(self, engine: DockerEngine, say: Say = print) -> None:
        self.engine = engine
        self.say = say

    def recipes(self) -> list[StandIn]:
        wanted = dockerfile_base_images()
        uv_image = wanted.get("uv")
        if uv_image:
            uv_path, _ = uv_binary(uv_image.rsplit(":", 1)[-1])
        python_image = wanted.get("python", "python:3.11-slim")
        bundle = HOST_CA_BUNDLE
        if not bundle.is_file():
            raise ImageError(f"no CA bundle at {bundle} (apt-get install ca-certificates)")
        out = [StandIn(python_image, _python_dockerfile(), {"ca-certificates.crt": bundle})]
        if uv_image:
            out.append(StandIn(uv_image, UV_DOCKERFILE, {"uv": uv_path}))
        out.append(StandIn(catalog.REDIS.image, _redis_dockerfile(python_image), {}))
        return out

    @staticmethod
    def recipe_hash(standin: StandIn, base_id: str) -> str:
        h = hashlib.sha256(standin.dockerfile.encode() + base_id.encode())
        for name, path in sorted(standin.files.items()):
            h.update(name.encode() + hashlib.sha256(path.read_bytes()).digest())
        return h.hexdigest()[:16]

    def rootfs(self) -> str:
        """The Debian rootfs image (mmdebstrap, ~2 min once); returns its image id."""
        recipe = hashlib.sha256(repr((SUITE, MIRRORS, ROOTFS_PACKAGES)).encode()).hexdigest()[:16]
        if self.engine.label(ROOTFS_IMAGE, RECIPE_LABEL) == recipe:
            return self.engine.image_id(ROOTFS_IMAGE)
        mmdebstrap = _need("mmdebstrap", "mmdebstrap")
        started = time.monotonic()
        self.say(f"Debian {SUITE} rootfs with {', '.join(ROOTFS_PACKAGES)} (mmdebstrap, about 2 minutes once)")
        with tempfile.TemporaryDirectory(prefix="theater-rootfs-", dir=self.engine.root) as tmp:
            tar = Path(tmp) / "rootfs.tar"
            _stream([mmdebstrap, "--variant=minbase", f"--include={','.join(ROOTFS_PACKAGES)}",
                     "--format=tar", "--aptopt=Acquire::Retries \"3\"", SUITE, str(tar), *MIRRORS],
                    env=None, say=self.say, keep=lambda line: line.startswith("I: ") and "tempdir" not in line,
                    what="mmdebstrap")
            self.engine.docker("image", "import", "--change", f"LABEL {RECIPE_LABEL}={recipe}",
                               "--change", 'CMD ["/bin/bash"]', str(tar), ROOTFS_IMAGE)
        self.say(f"rootfs imported as {ROOTFS_IMAGE} in {time.monotonic() - started:.0f}s")
        return self.engine.image_id(ROOTFS_IMAGE)

    def ensure(self) -> dict[str, str]:
        """Every stand-in present and current; returns {name: image id}. One process
        at a time per engine (two test runs would otherwise both run mmdebstrap)."""
        with self.engine.lock("standins", self.say):
            return self._ensure()

    def _ensure(self) -> dict[str, str]:
        recipes = self.recipes()  # checks uv and the CA bundle before the long step
        base_id = self.rootfs()
        ids: dict[str, str] = {}
        for standin in recipes:
            # Each recipe hashes the image it is FROM, so a new rootfs or python rebuilds what is on top.
            parent = standin.dockerfile.split()[1]
            parent_id = base_id if parent == ROOTFS_IMAGE else ids.get(parent, "")
            recipe = self.recipe_hash(standin, parent_id)
            if self.engine.label(standin.image, RECIPE_LABEL) == recipe:
                ids[standin.image] = self.engine.image_id(standin.image)
                continue
            started = time.monotonic()
            self.say(f"stand-in {standin.image}")
            with tempfile.TemporaryDirectory(prefix="theater-standin-", dir=self.engine.root) as tmp:
                ctx = Path(tmp)
                for name, src in standin.files.items():
                    shutil.copyfile(src, ctx / name)
                    if os.access(src, os.X_OK):
                        (ctx / name).chmod(0o755)
                (ctx / "Dockerfile").write_text(standin.dockerfile + f"LABEL {RECIPE_LABEL}={recipe}\n")
                _stream([_need("docker", "docker.io"), "build", "--network", "host", "--pull=false", "--force-rm",
                         "-t", standin.image, str(ctx)], env=self.engine.env(), say=self.say,
                        keep=_build_progress, what=f"building the stand-in {standin.image}")
            self.say(f"stand-in {standin.image} built in {time.monotonic() - started:.0f}s")
            ids[standin.image] = self.engine.image_id(standin.image)
        return ids


def _build_progress(line: str) -> bool:
    return line.startswith("Step ") or line.startswith("Successfully tagged")


# --- 3. the declared service images -----------------------------------------------


def declared_builds(image_tag: str = catalog.DEFAULT_VERSION,
                    v2_image_tag: str = catalog.MOVIE_V2.version) -> list[ImageBuild]:
    """Every image a stack may build: all services and every second version (infra/image_plan.py)."""
    return image_builds(catalog.SERVICES, list(catalog.VERSIONS.values()), image_tag, v2_image_tag)


def build_command(build: ImageBuild, repository: str, platform: str | None = None,
                  extra_args: Mapping[str, str] | None = None) -> list[str]:
    """The docker CLI arguments that build `build` as repository:tag."""
    argv = ["build", "--network", "host", "--pull=false", "--force-rm", "-f", str(build.dockerfile),
            "-t", f"{repository}:{build.tag}"]
    if platform:
        argv += ["--platform", platform]
    for key, value in {**build.build_args, **(extra_args or {})}.items():
        argv += ["--build-arg", f"{key}={value}"]
    return [*argv, str(build.context)]


@dataclass(frozen=True)
class Pushed:
    key: str
    reference: str  # repository:tag
    digest: str  # sha256:...
    image_id: str  # the local image (its config digest)

    @property
    def by_digest(self) -> str:
        return f"{self.reference.rsplit(':', 1)[0]}@{self.digest}"


def build_images(engine: DockerEngine, builds: Iterable[ImageBuild], repository: Callable[[str], str],
                 say: Say = print, platform: str | None = PLATFORM,
                 extra_args: Mapping[str, str] | None = None) -> dict[str, str]:
    """Build each image; returns {key: repository:tag}."""
    tags: dict[str, str] = {}
    builds = list(builds)
    for n, build in enumerate(builds, 1):
        started = time.monotonic()
        repo = repository(build.service)
        say(f"[{n}/{len(builds)}] docker build {build.key} -> {repo}:{build.tag}")
        _stream([_need("docker", "docker.io"), *build_command(build, repo, platform, extra_args)],
                env=engine.env(), say=say, keep=_build_progress, what=f"building {build.key}")
        say(f"[{n}/{len(builds)}] {build.key} built in {time.monotonic() - started:.1f}s")
        tags[build.key] = f"{repo}:{build.tag}"
    return tags


def _oci_layout_has(layout: Path, name: str) -> bool:
    try:
        index = json.loads((layout / "index.json").read_text())
    except (OSError, ValueError):
        return False
    return any((m.get("annotations") or {}).get("org.opencontainers.image.ref.name") == name
               for m in index.get("manifests", []))


def export_oci(engine: DockerEngine, ref: str, say: Say = print) -> str:
    """The image `ref` as an OCI layout entry under the engine's cache, its layers
    compressed once per image id (the slow part of a push); returns the skopeo reference."""
    skopeo = _need("skopeo", "skopeo")
    layout = engine.root / "oci"
    name = engine.image_id(ref).split(":", 1)[1][:32]
    oci_ref = f"oci:{layout}:{name}"
    with engine.lock("oci", say):  # one writer of the layout's index.json at a time
        if not _oci_layout_has(layout, name):
            _export(engine, skopeo, ref, layout, oci_ref, say)
    return oci_ref


def _export(engine: DockerEngine, skopeo: str, ref: str, layout: Path, oci_ref: str, say: Say) -> None:
    started = time.monotonic()
    layout.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="theater-export-", dir=engine.root) as tmp:
        _stream([skopeo, "copy", "--quiet", f"--src-daemon-host={engine.host}", f"docker-daemon:{ref}", oci_ref],
                env={**os.environ, "TMPDIR": tmp}, say=say, keep=lambda line: False, what=f"exporting {ref}")
    say(f"  {ref}: layers compressed in {time.monotonic() - started:.1f}s (cached for the next push)")


def push_images(engine: DockerEngine, tags: Mapping[str, str], registry, say: Say = print) -> list[Pushed]:  # noqa: ANN001
    """Push each repository:tag from the engine to `registry` (sim.registry.Registry) as its admin.

    Layers are compressed once per image (export_oci), so pushing the same image to
    a new simulation's registry only uploads, and gives the same digest."""
    skopeo = _need("skopeo", "skopeo")
    pushed = []
    with tempfile.TemporaryDirectory(prefix="theater-push-") as tmp:
        certs = Path(tmp) / "certs"
        certs.mkdir()
        shutil.copyfile(registry.ca_crt, certs / "ca.crt")
        # The admin's password in a file of ours (mode 0600), not on a command line `ps` shows.
        authfile = Path(tmp) / "auth.json"
        authfile.touch(mode=0o600)
        token = base64.b64encode(f"{registry.admin.username}:{registry.admin.password}".encode()).decode()
        authfile.write_text(json.dumps({"auths": {registry.address: {"auth": token}}}))
        for n, (key, ref) in enumerate(tags.items(), 1):
            started = time.monotonic()
            source = export_oci(engine, ref, say)
            digest_file = Path(tmp) / f"{key}.digest"
            _stream([skopeo, "copy", "--quiet", f"--dest-cert-dir={certs}", f"--dest-authfile={authfile}",
                     f"--digestfile={digest_file}", "--retry-times=2", source, f"docker://{ref}"],
                    env={**os.environ, "TMPDIR": tmp}, say=say, keep=lambda line: False, what=f"pushing {ref}")
            item = Pushed(key, ref, digest_file.read_text().strip(), engine.image_id(ref))
            say(f"[{n}/{len(tags)}] pushed {item.by_digest} in {time.monotonic() - started:.1f}s")
            pushed.append(item)
    return pushed


def untag(engine: DockerEngine, refs: Iterable[str]) -> None:
    """Drop tags made for one registry (127.0.0.1:<port>/...): the images stay
    while another tag holds them, and the engine's tag list does not grow with
    every simulation."""
    refs = list(refs)
    if refs:
        engine.docker("image", "rm", "--no-prune", *refs, check=False)


def redis_reference(registry) -> str:  # noqa: ANN001
    """Where the Redis stand-in goes in the registry, as a Harbor copy would
    (the stack's redisImage: <registry>/library/redis:7.4-alpine)."""
    return f"{registry.address}/library/{catalog.REDIS.image.rsplit('/', 1)[-1]}"


def push_redis(engine: DockerEngine, registry, say: Say = print) -> Pushed:  # noqa: ANN001
    """Tag the Redis stand-in for the registry and push it; key "redis"."""
    ref = redis_reference(registry)
    engine.docker("tag", catalog.REDIS.image, ref)
    return push_images(engine, {"redis": ref}, registry, say)[0]


# --- the command -------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", required=True)
    b = sub.add_parser("build", help="대역 베이스 이미지와 서비스 이미지를 로컬 엔진에 빌드")
    p = sub.add_parser("push", help="빌드한 뒤 시뮬레이션의 레지스트리에 푸시")
    p.add_argument("--dir", type=Path, default=Path(".theater") / "sim", help="시뮬레이션 디렉터리 (기본 %(default)s)")
    for s in (b, p):
        s.add_argument("--tag", default=catalog.DEFAULT_VERSION, help="imageTag (기본 %(default)s)")
        s.add_argument("--v2-tag", default=catalog.MOVIE_V2.version, help="v2ImageTag (기본 %(default)s)")
        s.add_argument("--build-arg", action="append", default=[], metavar="KEY=VALUE",
                       help="추가 빌드 인자 (PYTHON_IMAGE, UV_IMAGE, EXTRA_CA_PEM, PACKAGE_INDEX: services/Dockerfile 참고)")
    e = sub.add_parser("engine", help="이미지 명령이 쓰는 Docker 엔진")
    e.add_argument("what", choices=["start", "stop", "status"])


def _say(started: float) -> Say:
    return lambda m: print(f"[images {time.monotonic() - started:6.1f}s] {m}", flush=True)


def _extra_args(items: Sequence[str]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key):
            raise ImageError(f"--build-arg {item!r}: expected KEY=VALUE")
        out[key] = value
    return out


def main(args: argparse.Namespace) -> int:
    say = _say(time.monotonic())
    engine = DockerEngine()
    try:
        if args.action == "engine":
            if args.what == "start":
                say("dockerd started" if engine.ensure(say) else f"dockerd already answers on {engine.socket}")
            elif args.what == "stop":
                say("dockerd stopped" if engine.stop() else "no dockerd of ours was running")
            else:
                say(f"dockerd on {engine.socket}: {'answers' if engine.answers() else 'not running'}")
            return 0
        registry, slot = None, None
        if args.action == "push":
            registry, slot = _sim_registry(args.dir)
        extra = _extra_args(args.build_arg)
        engine.ensure(say)
        StandIns(engine, say).ensure()
        builds = declared_builds(args.tag, args.v2_tag)
        if registry is None:
            tags = build_images(engine, builds, lambda s: f"{PROJECT}/{s}", say, extra_args=extra)
            say("built: " + ", ".join(tags.values()))
            return 0
        tags = build_images(engine, builds, registry.repository, say, extra_args=extra)
        pushed = push_images(engine, tags, registry, say) + [push_redis(engine, registry, say)]
        out = args.dir / "images.json"
        out.write_text(json.dumps({p.key: {"reference": p.reference, "digest": p.digest, "image": p.by_digest}
                                   for p in pushed}, indent=2))
        say(f"digests written to {out}")
        redis = pushed[-1]
        print(stack_commands(registry, slot, f"{redis.reference}@{redis.digest}", pushed[:-1], (args.tag, args.v2_tag)))
        return 0
    except ImageError as exc:
        print(f"theater images: {exc}", file=sys.stderr)
        return 1


def stack_commands(registry, slot: int | None, redis_reference: str,  # noqa: ANN001
                   pushed: Sequence[Pushed] = (), tags: tuple[str, str] | None = None) -> str:
    """The `pulumi config set` lines that point both stacks at what was just pushed:
    the sim's registry and its accounts, the tags and the digest of each `pushed`
    service image (imageDigests: the Deployments pull by digest), the Redis
    stand-in, and (with real nodes, the sim's `slot`) the address the other
    cluster's pods dial for each cluster's API."""
    from sim import node as node_mod  # noqa: PLC0415

    digests = json.dumps({p.key: p.digest for p in pushed}, separators=(",", ":"))
    lines = ["", "# 두 스택을 이 레지스트리로, 이미지는 push 된 digest 로 (docs/rehearsal.md):"]
    for cluster in catalog.CLUSTERS:
        flag = f"--stack {cluster}"
        if tags is not None:
            lines += [f"pulumi config set theater-msa:imageTag {shlex.quote(tags[0])} {flag}",
                      f"pulumi config set theater-msa:v2ImageTag {shlex.quote(tags[1])} {flag}"]
        if pushed:
            lines.append(f"pulumi config set theater-msa:imageDigests {shlex.quote(digests)} {flag}")
        lines += [
            f"pulumi config set theater-msa:buildImages false {flag}",
            f"pulumi config set theater-msa:registry {registry.address} {flag}",
            f"pulumi config set theater-msa:harborProject {registry.project} {flag}",
            f"pulumi config set theater-msa:harborUsername {registry.admin.username} {flag}",
            f"pulumi config set --secret theater-msa:harborPassword '{registry.admin.password}' {flag}",
            f"pulumi config set theater-msa:pullUsername '{registry.robot.username}' {flag}",
            f"pulumi config set --secret theater-msa:pullPassword '{registry.robot.password}' {flag}",
            f"pulumi config set theater-msa:redisImage {redis_reference} {flag}",
        ]
        if slot is not None:  # real nodes: what the other cluster's pods dial for this cluster's API
            lines.append(f"pulumi config set theater-msa:dashboardApiServer {node_mod.api_url(slot, cluster)} {flag}")
    return "\n".join(lines)


def _sim_registry(directory: Path):  # noqa: ANN202
    """The simulation's running registry, and its slot (None without real nodes)."""
    from sim.registry import Registry  # noqa: PLC0415

    state = directory / "state.json"
    try:
        data = json.loads(state.read_text())
    except (OSError, ValueError) as exc:
        raise ImageError(f"no simulation in {directory} ({exc}): start one with `theater sim up`") from None
    if not data.get("registry"):
        raise ImageError(f"the simulation in {directory} has no registry (its state.json has no 'registry')")
    registry = Registry.from_state(data["registry"])
    if not registry.alive():
        raise ImageError(f"the simulation's registry (pid {registry.pid}) is not running: `theater sim down` and up")
    return registry, data.get("slot")
