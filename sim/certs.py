"""Certificates and keys for one simulated control plane, made with openssl.

A CA per cluster signs the API server's serving certificate (for 127.0.0.1
and the in-cluster names) and an admin client certificate in group
system:masters. The ServiceAccount token keys are a separate pair. All keys
are ECDSA P-256: generated in milliseconds, where RSA keys took seconds on a
busy 2-core machine. The CA
is also what kube-controller-manager puts in every namespace's
kube-root-ca.crt and every service-account-token Secret, so a kubeconfig built
from a token Secret (the dashboard access the stacks create) verifies the
server like a real cluster's would.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sim.commands import run


class CertError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClusterPki:
    ca_crt: Path
    ca_key: Path
    server_crt: Path
    server_key: Path
    admin_crt: Path
    admin_key: Path
    sa_key: Path
    sa_pub: Path


def _openssl(*args: str, cwd: Path) -> None:
    run(["openssl", *args], what=f"openssl {args[0]}", error=CertError, package="openssl", cwd=cwd)


_EC_KEY = ("-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes")


def make_ca(directory: Path, name: str) -> tuple[Path, Path]:
    """A self-signed ECDSA P-256 CA in directory: (ca.crt, ca.key)."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl("req", "-x509", *_EC_KEY, "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "30", "-subj", f"/CN={name}", "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature", cwd=directory)
    (directory / "ca.key").chmod(0o600)
    return directory / "ca.crt", directory / "ca.key"


def _sign(directory: Path, name: str, subject: str, extensions: str,
          ca: tuple[Path, Path] | None = None) -> tuple[Path, Path]:
    """<name>.crt/.key in directory, signed by ca (default: the ca.crt/ca.key there)."""
    ca_crt, ca_key = ca or (directory / "ca.crt", directory / "ca.key")
    (directory / f"{name}.ext").write_text(extensions)
    _openssl("req", "-new", *_EC_KEY, "-keyout", f"{name}.key",
             "-subj", subject, "-out", f"{name}.csr", cwd=directory)
    _openssl("x509", "-req", "-in", f"{name}.csr", "-CA", str(ca_crt), "-CAkey", str(ca_key), "-CAcreateserial",
             "-CAserial", "ca.srl", "-days", "30", "-sha256", "-extfile", f"{name}.ext", "-out", f"{name}.crt",
             cwd=directory)
    for leftover in [f"{name}.csr", f"{name}.ext", "ca.srl"]:
        (directory / leftover).unlink(missing_ok=True)
    (directory / f"{name}.key").chmod(0o600)
    return directory / f"{name}.crt", directory / f"{name}.key"


def server_cert(directory: Path, name: str, ca: tuple[Path, Path], sans: list[str]) -> tuple[Path, Path]:
    """A serving certificate <name>.crt/.key in directory for `sans` (IP:..., DNS:...), signed by ca."""
    directory.mkdir(parents=True, exist_ok=True)
    return _sign(directory, name, f"/CN={name}",
                 f"subjectAltName={','.join(sans)}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n", ca)


def make_pki(directory: Path, cluster: str, extra_ips: tuple[str, ...] = ()) -> ClusterPki:
    """extra_ips: more IP SANs of the API server, e.g. the `kubernetes` Service's
    ClusterIP and the address the real node's pods reach it at (sim/node.py)."""
    make_ca(directory, f"{cluster}-sim-ca")
    sans = ",".join([
        "IP:127.0.0.1", *(f"IP:{ip}" for ip in extra_ips), "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
        "DNS:kubernetes.default.svc", "DNS:kubernetes.default.svc.cluster.local",
    ])
    _sign(directory, "server", f"/CN={cluster}-apiserver",
          f"subjectAltName={sans}\nextendedKeyUsage=serverAuth\nkeyUsage=digitalSignature\n")
    _sign(directory, "admin", "/O=system:masters/CN=sim-admin",
          "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")
    _openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", "sa.key", cwd=directory)
    _openssl("ec", "-in", "sa.key", "-pubout", "-out", "sa.pub", cwd=directory)
    return load_pki(directory)


def client_cert(pki: ClusterPki, name: str, common_name: str, organization: str | None = None) -> tuple[Path, Path]:
    """A client certificate signed by the cluster CA, e.g. a kubelet's
    (O=system:nodes, CN=system:node:NAME). Returns (crt, key) next to the CA."""
    directory = pki.ca_crt.parent
    subject = (f"/O={organization}" if organization else "") + f"/CN={common_name}"
    return _sign(directory, name, subject, "extendedKeyUsage=clientAuth\nkeyUsage=digitalSignature\n")


def load_pki(directory: Path) -> ClusterPki:
    return ClusterPki(
        ca_crt=directory / "ca.crt", ca_key=directory / "ca.key",
        server_crt=directory / "server.crt", server_key=directory / "server.key",
        admin_crt=directory / "admin.crt", admin_key=directory / "admin.key",
        sa_key=directory / "sa.key", sa_pub=directory / "sa.pub",
    )
