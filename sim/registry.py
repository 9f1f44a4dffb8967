"""A private image registry for the simulation: Debian's `docker-registry`.

That is the CNCF distribution registry (2.8), the same server Harbor runs
behind its UI. It listens on 127.0.0.1:<free port> with TLS (a server
certificate signed by a CA of the simulation) and htpasswd (bcrypt) users, the
two accounts a class gets from Harbor:

- `admin`, who pushes (the stack's harborUsername/harborPassword);
- `robot$theater-msa+pull`, a pull-only robot account (pullUsername/pullPassword).

Plain htpasswd auth cannot restrict a user to pulls; the robot is a separate
account so that pods never hold the pushing credentials, as with Harbor.

    reg = Registry(sim_dir / "registry", ca=(ca_crt, ca_key))   # or ca=None: its own CA
    reg.prepare(); reg.start()
    reg.address         # "127.0.0.1:40123" (image names: f"{reg.address}/theater-msa/user-service:v1")
    reg.ca_crt          # what containerd/skopeo must trust
    reg.admin, reg.robot  # Credentials(username, password)
    state = reg.to_state(); Registry.from_state(state).stop()

The process runs in its own session, so it outlives the command that started
it; its log is <directory>/registry.log.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import ssl
import subprocess
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

from sim.certs import CertError, make_ca, server_cert
from sim.commands import run
from sim.controlplane import free_port

BINARY = "docker-registry"
ADMIN_USER = "admin"
ROBOT_USER = "robot$theater-msa+pull"  # Harbor's robot account naming: robot$<project>+<name>


class RegistryError(RuntimeError):
    """The registry could not be prepared, started or stopped; the message says why."""


@dataclass(frozen=True)
class Credentials:
    username: str
    password: str


def _run(argv: list[str], *, stdin: str | None = None, what: str) -> str:
    return run(argv, what=what, error=RegistryError, package=_PACKAGE.get(argv[0], argv[0]), stdin=stdin)


_PACKAGE = {"htpasswd": "apache2-utils", BINARY: "docker-registry"}


def bcrypt_line(user: Credentials) -> str:
    """One htpasswd line `user:$2y$...` (bcrypt, the only hash the registry accepts); the password goes via stdin."""
    return _run(["htpasswd", "-niB", user.username], stdin=user.password + "\n",
                what=f"hashing {user.username}'s password").strip()


@dataclass
class Registry:
    directory: Path
    ca: tuple[Path, Path] | None = None  # (ca.crt, ca.key) of the simulation; None: make one in directory/ca
    port: int = 0  # 0: a free port, chosen by prepare()
    admin: Credentials | None = None
    robot: Credentials | None = None
    pid: int | None = None
    project: str = "theater-msa"

    # --- paths -----------------------------------------------------------------

    @property
    def address(self) -> str:
        """host:port, the registry part of an image name."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"https://{self.address}"

    @property
    def ca_crt(self) -> Path:
        """The CA a client must trust (a copy of the simulation's, without its key)."""
        return self.directory / "ca.crt"

    @property
    def config_file(self) -> Path:
        return self.directory / "config.yml"

    @property
    def log(self) -> Path:
        return self.directory / "registry.log"

    @property
    def data(self) -> Path:
        return self.directory / "data"

    def repository(self, name: str) -> str:
        """The image repository of `name` in the project: 127.0.0.1:PORT/theater-msa/<name>."""
        return f"{self.address}/{self.project}/{name}"

    # --- prepare / start / stop ------------------------------------------------

    def prepare(self) -> None:
        """Certificates, users and config.yml; nothing runs yet."""
        if shutil.which(BINARY) is None:
            raise RegistryError(f"{BINARY} is not on PATH (apt-get install docker-registry)")
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.port:
            self.port = free_port()
        try:
            ca = self.ca or make_ca(self.directory / "ca", "theater-sim-registry-ca")
            if ca[0].resolve() != self.ca_crt.resolve():
                shutil.copyfile(ca[0], self.ca_crt)
            server_cert(self.directory / "tls", "registry", ca, ["IP:127.0.0.1", "DNS:localhost"])
        except CertError as exc:
            raise RegistryError(f"the registry's certificate: {exc}") from None
        self.admin = self.admin or Credentials(ADMIN_USER, secrets.token_urlsafe(18))
        self.robot = self.robot or Credentials(ROBOT_USER, secrets.token_urlsafe(18))
        htpasswd = self.directory / "htpasswd"
        htpasswd.write_text(f"{bcrypt_line(self.admin)}\n{bcrypt_line(self.robot)}\n")
        htpasswd.chmod(0o600)
        creds = self.directory / "credentials.json"
        creds.write_text(json.dumps({"admin": asdict(self.admin), "robot": asdict(self.robot)}, indent=2))
        creds.chmod(0o600)
        self.data.mkdir(exist_ok=True)
        # JSON is YAML: no YAML writer needed, no quoting mistakes in paths.
        self.config_file.write_text(json.dumps({
            "version": 0.1,
            "log": {"level": "info", "accesslog": {"disabled": False}},
            "storage": {"filesystem": {"rootdirectory": str(self.data)}, "delete": {"enabled": True}},
            "http": {"addr": self.address,
                     "tls": {"certificate": str(self.directory / "tls" / "registry.crt"),
                             "key": str(self.directory / "tls" / "registry.key")}},
            "auth": {"htpasswd": {"realm": "theater-sim-registry", "path": str(htpasswd)}},
        }, indent=2))

    def start(self, timeout: float = 30.0) -> None:
        """Start the registry and wait until it answers /v2/ with 401 (up, auth on)."""
        if not self.config_file.is_file():
            raise RegistryError(f"no {self.config_file}: call prepare() first")
        out = self.log.open("ab")
        try:
            proc = subprocess.Popen([shutil.which(BINARY) or BINARY, "serve", str(self.config_file)],
                                    stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, cwd=self.directory,
                                    env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")})
        finally:
            out.close()
        self.pid = proc.pid
        self.wait_ready(timeout)

    def _tls(self) -> ssl.SSLContext:
        return ssl.create_default_context(cafile=str(self.ca_crt))

    def wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no answer"
        while time.monotonic() < deadline:
            if not self.alive():
                tail = "\n".join(self.log.read_text(errors="replace").splitlines()[-12:])
                raise RegistryError(f"docker-registry exited (log: {self.log}):\n{tail}")
            try:
                with httpx.Client(verify=self._tls(), timeout=2, trust_env=False) as c:
                    r = c.get(f"{self.url}/v2/")
                if r.status_code == 401:
                    return
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as exc:
                last = str(exc)
            time.sleep(0.1)
        raise RegistryError(f"docker-registry did not answer on {self.url} within {timeout:.0f}s: {last}")

    def client(self, user: Credentials | None = None) -> httpx.Client:
        """An HTTP client for the registry API as `user` (default: the admin), trusting only its CA."""
        user = user or self.admin
        auth = (user.username, user.password) if user else None
        return httpx.Client(base_url=self.url, verify=self._tls(), auth=auth, timeout=30, trust_env=False)

    def alive(self) -> bool:
        if self.pid is None:
            return False
        try:
            waited, _ = os.waitpid(self.pid, os.WNOHANG)
            if waited == self.pid:
                return False
        except ChildProcessError:
            pass  # not our child (a later command): kill(0) below
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        return True

    def stop(self, grace: float = 5.0) -> bool:
        """SIGTERM the registry's process group, SIGKILL after `grace`. True when it had to be killed."""
        if self.pid is None:
            return False
        killed = False
        _killpg(self.pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.05)
        if self.alive():
            _killpg(self.pid, signal.SIGKILL)
            killed = True
            while self.alive() and time.monotonic() < deadline + grace:
                time.sleep(0.05)
        self.pid = None
        return killed

    # --- state -----------------------------------------------------------------

    def to_state(self) -> dict:
        return {
            "directory": str(self.directory), "port": self.port, "pid": self.pid, "project": self.project,
            "ca": [str(p) for p in self.ca] if self.ca else None,
            "admin": asdict(self.admin) if self.admin else None,
            "robot": asdict(self.robot) if self.robot else None,
        }

    @classmethod
    def from_state(cls, data: dict) -> Registry:
        ca = data.get("ca")
        return cls(
            Path(data["directory"]),
            ca=(Path(ca[0]), Path(ca[1])) if ca else None,
            port=int(data["port"]), pid=data.get("pid"), project=data.get("project", "theater-msa"),
            admin=Credentials(**data["admin"]) if data.get("admin") else None,
            robot=Credentials(**data["robot"]) if data.get("robot") else None,
        )


def _killpg(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
