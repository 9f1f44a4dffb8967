"""What the api-gateway's pod needs beyond every app's (infra/microservice.py):

- the web UI files: a ConfigMap mounted at UI_DIR, whose checksum on the pod
  template rolls the pods when a file changes;
- read access to this cluster for GET /api/status (ReadOnlyAccess);
- the other cluster's kubeconfig: an optional Secret mounted at
  catalog.REMOTE_KUBECONFIG_DIR (absent until remoteStatusStack is set; the
  page then says "not connected"), and REMOTE_CLUSTER_NAME;
- with `demoPassword` set, the Secret `demo-password` and DEMO_PASSWORD read
  from it (every path but the probes and /metrics asks for it).

`gateway_pod()` declares those objects (with the names and parents they
always had, so no deployed object is replaced) and returns the PodExtras the
gateway's Microservice adds to its pod: env, volumes, mounts, annotations
and what it depends on.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from infra.dashboard_access import REMOTE_KEY, REMOTE_SECRET, RemoteKubeconfig, RemoteKubeconfigArgs, remote_kubeconfig_path
from infra.k8sutil import meta, service_account_of
from infra.microservice import PodExtras, env_var
from infra.rbac import ReadOnlyAccess, ReadOnlyAccessArgs
from infra.ui_configmap import CHECKSUM_ANNOTATION, UiConfigMap, UiConfigMapArgs
from services import catalog

UI_MOUNT = "/app/ui"


@dataclass(frozen=True)
class GatewayPodArgs:
    ui_files: dict[str, str]
    remote_cluster: str  # the other cluster's name ("" with one cluster)
    remote_status_stack: str | None  # the stack exporting the other cluster's kubeconfig, once it exists
    account: pulumi.Resource  # the gateway's ServiceAccount
    demo_password: pulumi.Input[str] | None = None  # a Pulumi secret; None leaves the app open


DEMO_SECRET = "demo-password"
DEMO_KEY = "password"


def gateway_pod(args: GatewayPodArgs, provider: pulumi.ProviderResource, in_ns: pulumi.ResourceOptions) -> PodExtras:
    sa = service_account_of(catalog.GATEWAY.name)
    access = ReadOnlyAccess(sa, ReadOnlyAccessArgs(sa), pulumi.ResourceOptions(provider=provider, depends_on=[args.account]))
    ui = UiConfigMap("ui", UiConfigMapArgs(args.ui_files), in_ns)
    pod = PodExtras(
        env=[
            env_var("UI_DIR", UI_MOUNT),
            env_var("REMOTE_CLUSTER_NAME", args.remote_cluster),
            env_var("REMOTE_KUBECONFIG", remote_kubeconfig_path()),
        ],
        volumes=[
            k8s.core.v1.VolumeArgs(name="ui", config_map=k8s.core.v1.ConfigMapVolumeSourceArgs(name=ui.name)),
            # Optional: absent until remoteStatusStack is set; the page then says "not connected".
            k8s.core.v1.VolumeArgs(
                name="remote-kubeconfig",
                secret=k8s.core.v1.SecretVolumeSourceArgs(
                    secret_name=REMOTE_SECRET, optional=True, items=[k8s.core.v1.KeyToPathArgs(key=REMOTE_KEY, path=REMOTE_KEY)]
                ),
            ),
        ],
        mounts=[
            k8s.core.v1.VolumeMountArgs(name="ui", mount_path=UI_MOUNT, read_only=True),
            k8s.core.v1.VolumeMountArgs(name="remote-kubeconfig", mount_path=catalog.REMOTE_KUBECONFIG_DIR, read_only=True),
        ],
        annotations={CHECKSUM_ANNOTATION: ui.checksum},
        depends_on=[access, ui],
    )
    if args.demo_password is not None:
        secret = k8s.core.v1.Secret(
            DEMO_SECRET,
            metadata=meta(DEMO_SECRET, labels={"app.kubernetes.io/part-of": "theater-msa"}),
            string_data={DEMO_KEY: pulumi.Output.secret(args.demo_password)},
            opts=in_ns,
        )
        pod.env.append(k8s.core.v1.EnvVarArgs(name="DEMO_PASSWORD", value_from=k8s.core.v1.EnvVarSourceArgs(
            secret_key_ref=k8s.core.v1.SecretKeySelectorArgs(name=DEMO_SECRET, key=DEMO_KEY))))
        pod.depends_on.append(secret)
    if args.remote_status_stack:
        pod.depends_on.append(RemoteKubeconfig("remote-status", RemoteKubeconfigArgs(args.remote_status_stack), in_ns))
    return pod
