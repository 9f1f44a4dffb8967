"""Where each cluster's API comes from: in-cluster config, a kubeconfig
file (or a directory such as a mounted Secret), or nothing (with why)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from lightkube import ConfigError, KubeConfig

from services import catalog
from services.common.settings import Settings

# Kubeconfig file names looked for when REMOTE_KUBECONFIG names a directory.
KUBECONFIG_NAMES = ("kubeconfig", "config", "kubeconfig.yaml", "config.yaml")
# Where Kubernetes mounts a pod's service-account token (lightkube reads it there).
SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


def find_kubeconfig(path: Path) -> Path | None:
    """`path` itself if it is a file; in a directory (a mounted Secret) the
    first known kubeconfig name, else its only regular file."""
    if path.is_file():
        return path
    if not path.is_dir():
        return None
    for name in KUBECONFIG_NAMES:
        if (path / name).is_file():
            return path / name
    files = sorted(p for p in path.iterdir() if not p.name.startswith(".") and p.is_file())
    return files[0] if len(files) == 1 else None


def load_kubeconfig(path: Path, context: str) -> Any:
    """The SingleConfig for `context` if the file has it, else its current context."""
    config = KubeConfig.from_file(path)
    single = config.get(context_name=context) if context in config.contexts else config.get()
    if single is None:
        raise ConfigError(f"{path} has no current-context and no context named {context!r}")
    return single


class ClusterSource:
    """How one cluster's API is reached; `describe()` says so for the JSON."""

    def __init__(self, name: str, role: str, kind: str, path: Path | None = None, why_none: str = "") -> None:
        self.name = name
        self.role = role  # "local" (the gateway's own cluster) or "remote"
        self.kind = kind  # "in-cluster", "kubeconfig" or "none"
        # in-cluster: the service-account directory (token, ca.crt, namespace); kubeconfig: the file or directory
        self.path = path
        self.why_none = why_none

    def config(self) -> Any:
        """The SingleConfig (server, CA, credentials) lightkube's client takes and `.cluster.server` names."""
        if self.kind == "in-cluster":
            # from_service_account() is a KubeConfig of one context; the client
            # and the status page need that context's SingleConfig (`.get()`).
            return KubeConfig.from_service_account(self.path or SERVICE_ACCOUNT_DIR).get()
        assert self.path is not None
        found = find_kubeconfig(self.path)
        if found is None:
            raise ConfigError(f"no kubeconfig file at {self.path}")
        return load_kubeconfig(found, self.name)

    def fingerprint(self) -> tuple[Any, ...]:
        """Changes when the credentials behind this source change: a new
        kubeconfig Secret mounted, a rotated service-account token."""
        if self.kind == "in-cluster":
            watched: Path | None = (self.path or Path(SERVICE_ACCOUNT_DIR)) / "token"
        else:
            watched = find_kubeconfig(self.path) if self.path is not None else None
        try:
            st = watched.stat() if watched is not None else None
        except OSError:
            st = None
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino) if st is not None else None
        return (self.name, self.kind, str(watched), stamp)


def cluster_sources(settings: Settings, environ: dict[str, str] | os._Environ[str] | None = None) -> list[ClusterSource]:
    env = os.environ if environ is None else environ
    own = settings.cluster if settings.cluster in catalog.CLUSTERS else catalog.CLUSTERS[0]
    remote = settings.remote_cluster or next(c for c in catalog.CLUSTERS if c != own)

    if settings.local_kubeconfig is not None:
        local = ClusterSource(own, "local", "kubeconfig", settings.local_kubeconfig)
    elif env.get("KUBERNETES_SERVICE_HOST"):
        local = ClusterSource(own, "local", "in-cluster", Path(SERVICE_ACCOUNT_DIR))
    else:
        local = ClusterSource(
            own,
            "local",
            "none",
            why_none="not running in Kubernetes (no KUBERNETES_SERVICE_HOST) and LOCAL_KUBECONFIG is not set",
        )

    remote_path = settings.remote_kubeconfig
    if remote_path is None and find_kubeconfig(Path(catalog.REMOTE_KUBECONFIG_DIR)) is not None:
        remote_path = Path(catalog.REMOTE_KUBECONFIG_DIR)
    if remote_path is not None and find_kubeconfig(remote_path) is None:
        # Kubernetes always sets REMOTE_KUBECONFIG; the Secret behind it is
        # optional and absent until the other cluster is connected.
        other = ClusterSource(
            remote,
            "remote",
            "none",
            why_none=f"no kubeconfig at {remote_path} (REMOTE_KUBECONFIG): the optional Secret is not mounted yet",
        )
    elif remote_path is not None:
        other = ClusterSource(remote, "remote", "kubeconfig", remote_path)
    else:
        other = ClusterSource(
            remote,
            "remote",
            "none",
            why_none=f"no kubeconfig for the remote cluster: set REMOTE_KUBECONFIG or mount one at {catalog.REMOTE_KUBECONFIG_DIR}",
        )
    order = {name: i for i, name in enumerate(catalog.CLUSTERS)}
    return sorted([local, other], key=lambda s: order.get(s.name, len(order)))
