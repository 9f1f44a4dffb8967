"""Pull access to a private registry project.

Harbor projects are private unless marked public, so the kubelet needs
credentials to pull the service images (and a Harbor copy of Redis). This
component creates the kubernetes.io/dockerconfigjson Secret `registry-pull`
from the registry credentials, kept as Pulumi secrets; the ServiceAccounts
that run pods list it in imagePullSecrets (infra/rbac.py). A pull-only
Harbor robot account (`pullUsername`/`pullPassword`) is better than the
account that pushes. `theater-msa:imagePullSecret false` leaves it out for
a public project.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.k8sutil import child, meta

PULL_SECRET = "registry-pull"


def dockerconfigjson(registry: str, username: str, password: str) -> str:
    """The `.dockerconfigjson` document for one registry."""
    auth = base64.b64encode(f"{username}:{password}".encode()).decode()
    return json.dumps({"auths": {registry: {"username": username, "password": password, "auth": auth}}}, sort_keys=True)


@dataclass(frozen=True)
class RegistryPullArgs:
    registry: str
    username: str
    password: pulumi.Input[str]


class RegistryPullSecret(pulumi.ComponentResource):
    def __init__(self, name: str, args: RegistryPullArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:RegistryPullSecret", name, None, opts)
        config = pulumi.Output.secret(pulumi.Output.from_input(args.password).apply(
            lambda password: dockerconfigjson(args.registry, args.username, password)
        ))
        self.secret = k8s.core.v1.Secret(
            PULL_SECRET,
            metadata=meta(PULL_SECRET, labels={"app.kubernetes.io/part-of": "theater-msa"}),
            type="kubernetes.io/dockerconfigjson",
            string_data={".dockerconfigjson": config},
            opts=child(self),
        )
        self.name = PULL_SECRET
        self.register_outputs({})
