"""Both clusters on one status page.

Exporting side (by default the cluster where api-gateway does not run, i.e.
ctx2): a read-only ServiceAccount `theater-dashboard` (get/list on
nodes, and on pods/deployments in theater-msa), a token Secret
for it, and a kubeconfig built from that token (read from the created
Secret's data) exported as the secret stack
output `dashboardKubeconfig`.

Reading side (where api-gateway runs, ctx1): when
`theater-msa:remoteStatusStack` names the exporting stack, a StackReference
reads that output into the Secret `remote-kubeconfig`, which the api-gateway
mounts (optional) at catalog.REMOTE_KUBECONFIG_DIR. A StackReference to a
stack that does not exist fails the whole update, hence the setting: set it
after the other stack is up. Until then the mount is empty and the page says
the other cluster is not connected.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import yaml

from infra.k8sutil import child, meta
from infra.rbac import AppServiceAccount, ReadOnlyAccess, ReadOnlyAccessArgs, ServiceAccountArgs
from services import catalog

OUTPUT_NAME = "dashboardKubeconfig"
TOKEN_SECRET = f"{catalog.DASHBOARD_SERVICE_ACCOUNT}-token"
REMOTE_SECRET = "remote-kubeconfig"
REMOTE_KEY = "kubeconfig"


def remote_kubeconfig_path() -> str:
    return f"{catalog.REMOTE_KUBECONFIG_DIR}/{REMOTE_KEY}"


def build_kubeconfig(cluster: str, server: str, ca_b64: str, token: str) -> str:
    user = catalog.DASHBOARD_SERVICE_ACCOUNT
    return yaml.safe_dump({
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": cluster, "cluster": {"server": server, "certificate-authority-data": ca_b64}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": cluster, "context": {"cluster": cluster, "user": user, "namespace": catalog.NAMESPACE}}],
        "current-context": cluster,
    }, sort_keys=False)


@dataclass(frozen=True)
class DashboardAccessArgs:
    cluster: str
    api_server: str
    depends_on: tuple[pulumi.Resource, ...] = ()


class DashboardAccess(pulumi.ComponentResource):
    kubeconfig: pulumi.Output[str]

    def __init__(self, name: str, args: DashboardAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:DashboardAccess", name, None, opts)
        deps = list(args.depends_on)
        sa_name = catalog.DASHBOARD_SERVICE_ACCOUNT
        sa = AppServiceAccount(sa_name, ServiceAccountArgs(sa_name), pulumi.ResourceOptions(parent=self, depends_on=deps))
        ReadOnlyAccess(sa_name, ReadOnlyAccessArgs(sa_name), pulumi.ResourceOptions(parent=self, depends_on=[sa]))
        token = k8s.core.v1.Secret(
            TOKEN_SECRET,
            metadata=meta(TOKEN_SECRET, annotations={"kubernetes.io/service-account.name": sa_name},
                          labels={"app.kubernetes.io/part-of": "theater-msa"}),
            type="kubernetes.io/service-account-token",
            opts=child(self, depends_on=[sa]),
        )
        # The token controller fills in `token` and `ca.crt` after creation;
        # pulumi-kubernetes reports this Secret as created only once they are
        # there (it waits for a service-account-token Secret's data), so the
        # created resource's `data` already holds them.

        def render(data: dict | None) -> str:
            data = data or {}
            if not data.get("token"):
                raise pulumi.RunError(
                    f"Secret {catalog.NAMESPACE}/{TOKEN_SECRET} was created without a token: "
                    "is kube-controller-manager (its token controller) running in this cluster?"
                )
            return build_kubeconfig(args.cluster, args.api_server, data.get("ca.crt", ""), base64.b64decode(data["token"]).decode())

        self.kubeconfig = pulumi.Output.secret(token.data.apply(render))
        self.register_outputs({})


@dataclass(frozen=True)
class RemoteKubeconfigArgs:
    stack: str
    depends_on: tuple[pulumi.Resource, ...] = ()


class RemoteKubeconfig(pulumi.ComponentResource):
    """The other cluster's dashboard kubeconfig as the Secret api-gateway mounts."""

    def __init__(self, name: str, args: RemoteKubeconfigArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("theater-msa:index:RemoteKubeconfig", name, None, opts)
        ref = pulumi.StackReference(args.stack, opts=pulumi.ResourceOptions(parent=self))
        self.secret = k8s.core.v1.Secret(
            REMOTE_SECRET,
            metadata=meta(REMOTE_SECRET, labels=catalog.labels(catalog.GATEWAY.name)),
            type="Opaque",
            string_data={REMOTE_KEY: ref.require_output(OUTPUT_NAME)},
            opts=child(self, depends_on=list(args.depends_on)),
        )
        self.register_outputs({})
