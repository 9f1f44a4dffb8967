"""The images, for real (issue 22): stand-in bases from Debian (mmdebstrap),
every image infra/images.py declares built by Docker from services/Dockerfile,
pushed to the simulation's registry (Debian's docker-registry, TLS + htpasswd),
pulled back by digest with the robot account, and run the way the
Deployments run them: read-only root, uid 10001, every capability dropped,
no privilege escalation, no network but the pod's own loopback."""

from __future__ import annotations

import hashlib
import json
import os
import shlex
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from infra.setting_objects import parse_image_digests
from services import catalog
from sim import images
from sim.registry import Registry
from tests.e2e.stack import record_timing

PROGRAMS = {"dockerd": "docker.io", "docker": "docker.io", "mmdebstrap": "mmdebstrap",
            "docker-registry": "docker-registry", "skopeo": "skopeo", "htpasswd": "apache2-utils"}


def say(message: str) -> None:
    print(f"[e2e images] {message}", flush=True)


@pytest.fixture(scope="module")
def engine() -> images.DockerEngine:
    absent = [f"{p} ({pkg})" for p, pkg in PROGRAMS.items() if shutil.which(p) is None]
    if absent and os.environ.get("CI") == "true":
        pytest.fail(f"CI: missing {', '.join(absent)}; .ci/run installs them", pytrace=False)
    if absent:
        pytest.skip(f"missing {', '.join(absent)} (apt-get install the packages in parentheses)")
    engine = images.DockerEngine()
    engine.ensure(say)
    return engine


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    reg = Registry(tmp_path_factory.mktemp("registry"))
    reg.prepare()
    reg.start()
    yield reg
    reg.stop()


@pytest.fixture(scope="module")
def pushed(engine: images.DockerEngine, registry: Registry) -> Iterator[dict[str, images.Pushed]]:
    started = time.monotonic()
    images.StandIns(engine, say).ensure()
    record_timing("images-stand-ins", time.monotonic() - started, "mmdebstrap rootfs + python, uv, redis (cached: seconds)")
    started = time.monotonic()
    tags = images.build_images(engine, images.declared_builds(), registry.repository, say)
    record_timing("images-build", time.monotonic() - started, f"{len(tags)} images")
    started = time.monotonic()
    result = images.push_images(engine, tags, registry, say)
    record_timing("images-push", time.monotonic() - started, f"{len(result)} images to a fresh registry")
    yield {p.key: p for p in result}
    images.untag(engine, [*tags.values(), images.redis_reference(registry)])


def test_the_redis_stand_in_is_pushed_where_a_harbor_copy_would_be(
        pushed: dict[str, images.Pushed], engine: images.DockerEngine, registry: Registry, tmp_path: Path) -> None:
    item = images.push_redis(engine, registry, say)
    assert item.reference == f"{registry.address}/library/redis:7.4-alpine" == images.redis_reference(registry)
    robot = f"{registry.robot.username}:{registry.robot.password}"
    r = skopeo(registry, tmp_path, "inspect", "--config", f"docker://{item.by_digest}", creds=robot)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["config"]["Cmd"] == ["redis-server"]


def skopeo(registry: Registry, tmp: Path, *args: str, creds: str | None) -> subprocess.CompletedProcess:
    certs = tmp / "certs"
    certs.mkdir(exist_ok=True)
    shutil.copyfile(registry.ca_crt, certs / "ca.crt")
    sub, rest = args[0], args[1:]
    prefix = "src-" if sub == "copy" else ""  # copy names the source's options --src-*
    auth = [f"--{prefix}creds={creds}"] if creds else [f"--{prefix}no-creds"]
    return subprocess.run(["skopeo", sub, f"--{prefix}cert-dir={certs}", *auth, *rest],
                          capture_output=True, text=True, timeout=300)


def test_every_declared_image_is_pushed_and_pulls_by_digest_as_the_robot(
        pushed: dict[str, images.Pushed], registry: Registry, engine: images.DockerEngine, tmp_path: Path) -> None:
    assert set(pushed) == set(catalog.SERVICES) | {v.name for v in catalog.VERSIONS.values()}
    robot = f"{registry.robot.username}:{registry.robot.password}"
    for item in pushed.values():
        r = skopeo(registry, tmp_path, "inspect", "--raw", f"docker://{item.by_digest}", creds=robot)
        assert r.returncode == 0, r.stderr
        manifest = r.stdout.encode()
        assert "sha256:" + hashlib.sha256(manifest).hexdigest() == item.digest
        # The image in the registry is the one Docker built: the same layers, uncompressed digests.
        r = skopeo(registry, tmp_path, "inspect", "--config", f"docker://{item.by_digest}", creds=robot)
        assert r.returncode == 0, r.stderr
        built = json.loads(docker(engine, "image", "inspect", "--format", "{{json .RootFS.Layers}}",
                                  item.reference).stdout)
        assert json.loads(r.stdout)["rootfs"]["diff_ids"] == built
    # One image pulled whole, every blob checked against its digest.
    item = pushed["api-gateway"]
    r = skopeo(registry, tmp_path, "copy", "--quiet", f"docker://{item.by_digest}", f"dir:{tmp_path / 'pulled'}",
               creds=robot)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "pulled" / "manifest.json").is_file()


def test_pull_without_credentials_is_refused(pushed: dict[str, images.Pushed], registry: Registry,
                                             tmp_path: Path) -> None:
    r = skopeo(registry, tmp_path, "inspect", "--raw", f"docker://{pushed['user-service'].by_digest}", creds=None)
    assert r.returncode != 0, r.stdout
    assert "authentication required" in r.stderr.lower() or "unauthorized" in r.stderr.lower(), r.stderr


POD = ["--read-only", "--user", "10001:10001", "--cap-drop", "ALL",
       "--security-opt", "no-new-privileges", "--tmpfs", "/tmp:size=64m,mode=1777", "--memory", "256m"]


def docker(engine: images.DockerEngine, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return engine.docker(*args, check=check)


def http_in(engine: images.DockerEngine, container: str, port: int, path: str, timeout: float = 60) -> dict:
    """GET http://127.0.0.1:port/path from inside the container's network namespace (its loopback)."""
    code = ("import json,sys,urllib.request;"
            f"r=urllib.request.urlopen('http://127.0.0.1:{port}{path}',timeout=3);"
            "print(json.dumps({'status':r.status,'body':json.loads(r.read())}))")
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        r = docker(engine, "exec", container, "python", "-c", code, check=False)
        if r.returncode == 0:
            return json.loads(r.stdout)
        last = r.stderr[-400:]
        time.sleep(0.5)
    logs = docker(engine, "logs", "--tail", "30", container, check=False)
    raise AssertionError(f"{container}: {path} did not answer within {timeout}s: {last}\n{logs.stdout}{logs.stderr}")


def test_images_run_as_the_pods_declare_them(pushed: dict[str, images.Pushed], engine: images.DockerEngine,
                                            tmp_path: Path) -> None:
    """Redis and the five app images in one private network namespace (as
    in a pod network with only loopback), each restricted like its pod:
    every service answers /healthz, and /readyz (it reaches Redis)."""
    run = uuid.uuid4().hex[:8]
    redis = f"theater-e2e-redis-{run}"
    started_containers = [redis]
    data = tmp_path / "redis-data"  # like an emptyDir: a directory of the node, writable by the pod
    data.mkdir()
    data.chmod(0o777)
    try:
        docker(engine, "run", "-d", "--name", redis, "--network", "none", "--read-only", "--user", "999:1000",
               "--cap-drop", "ALL", "--security-opt", "no-new-privileges", "-v", f"{data}:/data",
               "--tmpfs", "/tmp:mode=1777", catalog.REDIS.image, "redis-server", "--appendonly", "yes",
               "--appendfsync", "everysec", "--dir", "/data", "--port", str(catalog.REDIS.port),
               "--protected-mode", "no")
        deadline = time.monotonic() + 30
        while docker(engine, "exec", redis, "redis-cli", "-p", str(catalog.REDIS.port), "ping",
                     check=False).stdout.strip() != "PONG":
            assert time.monotonic() < deadline, docker(engine, "logs", redis, check=False).stdout
            time.sleep(0.3)
        started = time.monotonic()
        ports: dict[str, int] = {}
        uses_redis: dict[str, bool] = {}
        for key, item in pushed.items():
            name = f"theater-e2e-{key}-{run}"
            versions = {v.name: v for v in catalog.VERSIONS.values()}
            port = catalog.SERVICES[key].port if key in catalog.SERVICES else versions[key].local_port
            ports[name] = port
            uses_redis[name] = catalog.SERVICES[pushed[key].reference.rsplit("/", 1)[1].split(":")[0]].uses_redis
            docker(engine, "run", "-d", "--name", name, *POD, "--network", f"container:{redis}",
                   "-e", f"PORT={port}", "-e", f"REDIS_URL=redis://127.0.0.1:{catalog.REDIS.port}/0",
                   "-e", "CLUSTER_NAME=ctx1", "-e", f"POD_NAME={name}", "-e", "NODE_NAME=e2e",
                   item.reference)
            started_containers.append(name)
        for name, port in ports.items():
            health = http_in(engine, name, port, "/healthz")
            assert health["status"] == 200, health
            ready = http_in(engine, name, port, "/readyz")
            assert ready["status"] == 200, ready
            assert ready["body"]["checks"] == ({"redis": "ok"} if uses_redis[name] else {}), ready
        record_timing("images-run-healthy", time.monotonic() - started, f"{len(ports)} containers, restricted")
        for name in ports:
            status = docker(engine, "exec", name, "cat", "/proc/1/status").stdout
            fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
            assert fields["Uid"].split()[:2] == ["10001", "10001"], fields["Uid"]
            assert int(fields["CapEff"].strip(), 16) == 0 and int(fields["CapBnd"].strip(), 16) == 0
            assert fields["NoNewPrivs"].strip() == "1"
            assert docker(engine, "exec", name, "sh", "-c", "touch /app/x", check=False).returncode != 0
            assert docker(engine, "exec", name, "sh", "-c", "command -v uv || ls /usr/local/bin/uv",
                          check=False).returncode != 0, "uv is in the runtime image"
        v2 = next(n for n in ports if "movie-service-v2" in n)
        assert http_in(engine, v2, ports[v2], "/info")["body"]["version"] == catalog.MOVIE_V2.version
    finally:
        for name in reversed(started_containers):
            docker(engine, "rm", "-f", name, check=False)


def test_rebuild_of_an_unchanged_tree_keeps_the_digests(
        pushed: dict[str, images.Pushed], engine: images.DockerEngine, tmp_path: Path) -> None:
    """A second `theater images push` with nothing changed, even to another
    simulation's registry, reuses the cached layers and pushes the same digest:
    the Deployments do not roll."""
    registry = Registry(tmp_path / "another-registry")
    registry.prepare()
    registry.start()
    started = time.monotonic()
    builds = [b for b in images.declared_builds() if b.key == "user-service"]
    tags = images.build_images(engine, builds, registry.repository, say)
    try:
        again = images.push_images(engine, tags, registry, say)
    finally:
        registry.stop()
        images.untag(engine, tags.values())
    record_timing("images-rebuild-push-one", time.monotonic() - started, "cached layers, a new registry")
    assert again[0].digest == pushed["user-service"].digest


def test_the_push_command_uses_the_simulation_registry_and_writes_the_digests(
        pushed: dict[str, images.Pushed], registry: Registry, tmp_path: Path) -> None:
    """`theater images push --dir <sim>` as a user runs it: the registry from
    the simulation's state.json, the digests in <sim>/images.json, equal to
    the pushes above (same images, same digests)."""
    import sys

    (tmp_path / "state.json").write_text(json.dumps({"registry": registry.to_state()}))
    started = time.monotonic()
    r = subprocess.run([sys.executable, "-m", "services.cli", "images", "push", "--dir", str(tmp_path)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    record_timing("images-push-command", time.monotonic() - started, "theater images push (warm)")
    written = json.loads((tmp_path / "images.json").read_text())
    assert set(written) == set(pushed) | {"redis"}
    for key, item in pushed.items():
        assert written[key]["digest"] == item.digest and written[key]["image"] == item.by_digest
    assert written["redis"]["reference"] == images.redis_reference(registry)
    assert "pushed" in r.stdout  # progress was shown
    # The settings that point both stacks at what was pushed, ready to paste.
    for cluster in ("ctx1", "ctx2"):
        assert f"pulumi config set theater-msa:registry {registry.address} --stack {cluster}" in r.stdout
        assert (f"pulumi config set --secret theater-msa:pullPassword '{registry.robot.password}' --stack {cluster}"
                in r.stdout)
        assert f"theater-msa:redisImage {images.redis_reference(registry)}@{written['redis']['digest']} --stack {cluster}" in r.stdout
        # The digests, as the program reads them (the line pasted into a shell).
        (line,) = [x for x in r.stdout.splitlines() if "theater-msa:imageDigests" in x and x.endswith(f"--stack {cluster}")]
        value = shlex.split(line)[4]
        assert parse_image_digests(value) == {key: item.digest for key, item in pushed.items()}
        assert f"pulumi config set theater-msa:imageTag v1 --stack {cluster}" in r.stdout
