"""Deployment status of both clusters, read from the Kubernetes API.

One concern per module: sources.py (where each cluster's API is reached),
clients.py (one reused lightkube client per cluster), clusters.py
(reading one cluster), summaries.py (what is kept of each
node, Deployment and pod), failures.py (why a read failed, in words),
probes.py (the local run's service checks), reader.py (the cached answer).

The api-gateway's GET /api/status answers with `StatusReader.status()` (reader.py):

    {"namespace": "theater-msa",
     "mode": "kubernetes" | "local",
     "generatedAt": "...Z",
     "clusters": [ {"name": "ctx1", "role": "local", "source": "in-cluster", "server": "https://...",
                    "reachable": true, "error": null, "reason": null, "forbidden": [],
                    "nodes": [...], "deployments": [...], "pods": [...], "elapsedMs": 12}, ... ],
     "local": [ {"service", "url", "healthy", "ready", "info", "error"}, ... ] | null}

Where each cluster's API comes from:

* its own cluster (`role: "local"`): LOCAL_KUBECONFIG when set (out-of-cluster
  runs, tests), else the pod's ServiceAccount (in-cluster config, detected by
  KUBERNETES_SERVICE_HOST), else `source: "none"`;
* the other cluster (`role: "remote"`): the kubeconfig at REMOTE_KUBECONFIG (a
  file, or a directory such as a mounted Secret), else the Secret's default
  mount point `catalog.REMOTE_KUBECONFIG_DIR` if it holds one, else
  `source: "none"` with reason not_configured (also when REMOTE_KUBECONFIG
  names a file that is not there: the Deployment always sets it, and the
  Secret behind it is optional until the other cluster is connected). The
  path is looked at on every fetch, so a Secret mounted later is picked up
  without a restart.

A kubeconfig with a context named after the cluster (ctx1/ctx2) uses that
context, otherwise its current context: so one ~/.kube/config holding both
contexts can serve as LOCAL_KUBECONFIG and REMOTE_KUBECONFIG at once.

`mode` is "local" when no cluster is configured at all (not in a pod, no
LOCAL_KUBECONFIG, no remote kubeconfig): the laptop run of `theater local`.
That is not a failure, and the web UI says so instead of showing two
unreachable clusters; the clusters are still listed, with their reasons.

Failures never raise: each cluster reports `reachable`, a `reason` code
(not_configured, not_in_cluster, config_error, forbidden, unauthorized,
unreachable, timeout, error) and an English `error` sentence; 403s name the
RBAC permission that is missing. Every cluster query has a deadline
(`k8s_timeout`), and an answer is reused for `status_cache_seconds`, with
one fetch in flight at a time however many browsers ask.
"""

from __future__ import annotations

from services.status.reader import StatusReader

__all__ = ["StatusReader"]
