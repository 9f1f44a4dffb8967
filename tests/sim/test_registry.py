"""sim/registry.py: Debian's docker-registry (distribution, what Harbor runs)
with TLS from a CA of the simulation and htpasswd users, driven over its real
HTTP API: an image pushed by the admin is pulled by digest by the robot."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from sim.certs import make_ca
from sim.registry import Credentials, Registry, RegistryError

MISSING = [p for p in ("docker-registry", "htpasswd", "openssl") if shutil.which(p) is None]
pytestmark = pytest.mark.skipif(bool(MISSING) and os.environ.get("CI") != "true",
                                reason=f"{', '.join(MISSING)} not installed (apt-get install docker-registry apache2-utils)")

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


@pytest.fixture
def registry(tmp_path: Path) -> Iterator[Registry]:
    ca = make_ca(tmp_path / "sim-ca", "sim-test-ca")
    reg = Registry(tmp_path / "registry", ca=ca)
    reg.prepare()
    reg.start()
    try:
        yield reg
    finally:
        reg.stop()


def push_blob(c: httpx.Client, repo: str, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    r = c.post(f"/v2/{repo}/blobs/uploads/")
    assert r.status_code == 202, r.text
    location = r.headers["location"]
    sep = "&" if "?" in location else "?"  # keep the upload's _state query
    r = c.put(f"{location}{sep}digest={digest}", content=data,
              headers={"content-type": "application/octet-stream"})
    assert r.status_code == 201, r.text
    return digest


def push_image(c: httpx.Client, repo: str, tag: str) -> str:
    """A minimal OCI image (one config, one empty layer); returns the manifest digest."""
    layer = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\x03\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00"  # empty gzip
    config = json.dumps({"architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(b"").hexdigest()]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "size": len(config),
                   "digest": push_blob(c, repo, config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "size": len(layer),
                    "digest": push_blob(c, repo, layer)}],
    }).encode()
    r = c.put(f"/v2/{repo}/manifests/{tag}", content=manifest, headers={"content-type": MANIFEST})
    assert r.status_code == 201, r.text
    assert r.headers["docker-content-digest"] == "sha256:" + hashlib.sha256(manifest).hexdigest()
    return r.headers["docker-content-digest"]


def test_admin_pushes_robot_pulls_by_digest(registry: Registry) -> None:
    repo = f"{registry.project}/user-service"
    with registry.client(registry.admin) as admin:
        digest = push_image(admin, repo, "v1")
    with registry.client(registry.robot) as robot:
        r = robot.get(f"/v2/{repo}/manifests/{digest}", headers={"accept": MANIFEST})
        assert r.status_code == 200 and r.headers["docker-content-digest"] == digest
        assert robot.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
    assert registry.repository("user-service") == f"{registry.address}/{repo}"
    assert registry.robot.username == "robot$theater-msa+pull"  # Harbor's robot account name form


@pytest.mark.parametrize("who", ["nobody", "wrong password", "admin password for the robot"])
def test_other_credentials_are_refused(registry: Registry, who: str) -> None:
    creds = {"nobody": None,
             "wrong password": Credentials(registry.admin.username, registry.admin.password + "x"),
             "admin password for the robot": Credentials(registry.robot.username, registry.admin.password)}[who]
    auth = (creds.username, creds.password) if creds else None
    with httpx.Client(base_url=registry.url, verify=ssl.create_default_context(cafile=str(registry.ca_crt)),
                      auth=auth, trust_env=False) as c:
        assert c.get("/v2/_catalog").status_code == 401


def test_tls_is_verified_with_the_simulation_ca_only(registry: Registry, tmp_path: Path) -> None:
    """The server certificate chains to the CA given (the sim's), for 127.0.0.1."""
    other = make_ca(tmp_path / "other", "not-the-sim-ca")
    with pytest.raises(httpx.ConnectError, match="CERTIFICATE_VERIFY_FAILED"):
        httpx.get(registry.url + "/v2/", verify=ssl.create_default_context(cafile=str(other[0])), trust_env=False)
    assert registry.ca_crt.read_bytes() == registry.ca[0].read_bytes()
    assert not (registry.directory / "ca.key").exists()  # the sim's CA key is not copied


def test_state_round_trip_and_stop(registry: Registry) -> None:
    again = Registry.from_state(json.loads(json.dumps(registry.to_state())))
    assert again.address == registry.address and again.admin == registry.admin and again.robot == registry.robot
    assert again.alive()
    with again.client(again.robot) as c:
        assert c.get("/v2/").status_code == 200
    assert again.stop() is False  # ended by SIGTERM, not killed
    assert not registry.alive()
    with pytest.raises(httpx.ConnectError):
        httpx.get(registry.url + "/v2/", verify=False, timeout=2)
    assert (registry.directory / "registry.log").read_text()  # it logged


def test_without_a_ca_it_makes_its_own(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "own")
    reg.prepare()
    reg.start()
    try:
        with reg.client() as c:
            assert c.get("/v2/").status_code == 200
    finally:
        reg.stop()
    assert (tmp_path / "own" / "ca" / "ca.crt").read_bytes() == reg.ca_crt.read_bytes()


def test_start_without_prepare_says_so(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="prepare"):
        Registry(tmp_path / "nothing", port=1).start()


def test_a_registry_that_dies_is_reported_with_its_log(tmp_path: Path) -> None:
    reg = Registry(tmp_path / "bad")
    reg.prepare()
    (reg.directory / "tls" / "registry.key").write_text("not a key\n")
    with pytest.raises(RegistryError, match="exited"):
        reg.start(timeout=15)
