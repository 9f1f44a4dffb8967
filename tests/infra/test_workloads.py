"""Kubernetes objects per stack: placement, names, affinity, RBAC, probes,
security context, images, env, UI ConfigMap, Redis, dashboard access."""

from __future__ import annotations

import json
import re

import pytest

from infra import mockrun
from infra.dashboard_access import REMOTE_SECRET, TOKEN_SECRET
from infra.microservice import APP_UID, RESOURCES
from infra.ui_configmap import CHECKSUM_ANNOTATION, UI_CONFIGMAP, checksum
from services import catalog

NS = catalog.NAMESPACE
WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "*", "escalate", "bind", "impersonate"}


def deployment_names(run: mockrun.RunResult) -> set[str]:
    return {d.meta_name for d in run.find("Deployment")}


def pod_spec(run: mockrun.RunResult, name: str) -> dict:
    return run.one("Deployment", name, NS).manifest["spec"]["template"]["spec"]


def env_of(container: dict) -> dict[str, dict]:
    return {e["name"]: e for e in container["env"]}


def test_default_placement(ctx1, ctx2):
    homes = catalog.default_placement()
    assert deployment_names(ctx1) == {n for n, c in homes.items() if c == "ctx1"} | {"redis"}
    assert deployment_names(ctx2) == {n for n, c in homes.items() if c == "ctx2"} | {"redis"}
    assert deployment_names(ctx1) == {"user-service", "api-gateway", "redis"}
    assert ctx1.outputs["placement"]["here"] == ["user-service", "api-gateway"]
    assert ctx2.outputs["placement"]["here"] == ["movie-service", "booking-service"]


def test_every_cluster_declares_all_services(each_stack):
    services = {s.meta_name: s.manifest for s in each_stack.find("Service")}
    redis = {catalog.REDIS.service_name(c) for c in catalog.CLUSTERS}
    assert redis == {"redis-ctx1", "redis-ctx2"}
    assert set(services) == set(catalog.SERVICES) | redis
    for name, spec in catalog.SERVICES.items():
        svc = services[name]
        assert svc["metadata"]["namespace"] == NS
        assert svc["spec"]["selector"] == catalog.selector(name)
        (port,) = svc["spec"]["ports"]
        assert port == {"name": spec.port_name, "port": spec.port, "targetPort": spec.port, "protocol": "TCP", "appProtocol": "http"}
        assert port["name"].startswith("http-")
    for cluster in catalog.CLUSTERS:
        svc = services[catalog.REDIS.service_name(cluster)]
        (rport,) = svc["spec"]["ports"]
        assert rport["name"] == catalog.REDIS.port_name == "tcp-redis"
        assert rport["port"] == 6379 and rport["appProtocol"] == "tcp"
        # Each selects only its own cluster's Redis pods.
        assert svc["spec"]["selector"] == {"app": "redis", catalog.CLUSTER_POD_LABEL: cluster}
    pod_labels = each_stack.one("Deployment", "redis", NS).manifest["spec"]["template"]["metadata"]["labels"]
    mine = services[catalog.REDIS.service_name(each_stack.stack)]["spec"]["selector"]
    other = services[catalog.REDIS.service_name(next(c for c in catalog.CLUSTERS if c != each_stack.stack))]["spec"]["selector"]
    assert mine.items() <= pod_labels.items() and not other.items() <= pod_labels.items()


def test_all_objects_in_namespace_or_cluster_scoped(each_stack):
    cluster_scoped = {"Namespace", "ClusterRole", "ClusterRoleBinding"}
    for obj in each_stack.objects:
        if obj.kind in cluster_scoped:
            assert obj.namespace is None, obj.name
        elif obj.kind == "VirtualService" and obj.meta_name == "theater-msa":
            assert obj.namespace == "istio-system"
        else:
            assert obj.namespace == NS, (obj.kind, obj.meta_name)
    ns = each_stack.one("Namespace", NS).manifest
    assert ns["metadata"]["labels"]["istio-injection"] == "enabled"


def test_istio_revision_label(run_stack):
    run = run_stack("ctx2", istioRevision="1-24")
    labels = run.one("Namespace", NS).manifest["metadata"]["labels"]
    assert labels["istio.io/rev"] == "1-24" and "istio-injection" not in labels


@pytest.mark.parametrize("stack", catalog.CLUSTERS)
def test_app_deployments(run_stack, stack):
    run = run_stack(stack)
    for name in run.outputs["placement"]["here"]:
        spec = catalog.SERVICES[name]
        dep = run.one("Deployment", name, NS).manifest
        assert dep["spec"]["replicas"] == 2
        assert dep["spec"]["selector"]["matchLabels"] == catalog.selector(name)
        labels = dep["spec"]["template"]["metadata"]["labels"]
        assert labels == catalog.labels(name) and labels["app"] == name and labels["version"] == "v1"
        pod = dep["spec"]["template"]["spec"]
        # Preferred, not required: a node without the label (NKS node-pool upgrade) still runs the pod.
        affinity = pod["affinity"]["nodeAffinity"]
        assert "requiredDuringSchedulingIgnoredDuringExecution" not in affinity
        (term,) = affinity["preferredDuringSchedulingIgnoredDuringExecution"]
        assert term["preference"] == {"matchExpressions": [{"key": catalog.CLUSTER_LABEL, "operator": "In", "values": [stack]}]}
        assert pod["serviceAccountName"] == ("api-gateway" if name == "api-gateway" else name)
        (c,) = pod["containers"]
        assert c["ports"][0]["containerPort"] == spec.port
        assert c["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": spec.port}
        assert c["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": spec.port}
        assert c["resources"] == RESOURCES[name]
        sc = c["securityContext"]
        assert sc["runAsNonRoot"] is True and sc["runAsUser"] == APP_UID != 1337
        assert sc["allowPrivilegeEscalation"] is False and sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]} and sc["seccompProfile"] == {"type": "RuntimeDefault"}
        assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
        assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
        env = env_of(c)
        assert env["SERVICE_NAME"]["value"] == name and env["PORT"]["value"] == str(spec.port)
        assert env["CLUSTER_NAME"]["value"] == stack and env["SERVICE_VERSION"]["value"] == "v1"
        assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
        assert env["NODE_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.nodeName"
        assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
        # Its home is this cluster: its own cluster's Redis.
        assert env["REDIS_URL"]["value"] == catalog.REDIS.cluster_url(stack) == f"redis://redis-{stack}.theater-msa.svc.cluster.local:6379/0"
        for peer in spec.calls:
            assert env[catalog.SERVICES[peer].url_env]["value"] == catalog.SERVICES[peer].cluster_url()
            assert ".theater-msa.svc.cluster.local:" in env[catalog.SERVICES[peer].url_env]["value"]


def test_app_pods_survive_node_maintenance_and_shutdown(each_stack):
    """A PodDisruptionBudget per Deployment and version (drains take one pod at
    a time), replicas spread over nodes, and a shutdown that keeps serving
    until both clusters' sidecars have dropped the endpoint."""
    from infra.microservice import PRESTOP_SLEEP_SECONDS, TERMINATION_GRACE_SECONDS

    here = each_stack.outputs["placement"]["here"]
    budgets = {b.meta_name: b.manifest for b in each_stack.find("PodDisruptionBudget")}
    assert set(budgets) == set(here)
    for name in here:
        assert budgets[name]["apiVersion"] == "policy/v1"
        assert budgets[name]["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": {"app": name, "version": "v1"}}}
        dep = each_stack.one("Deployment", name, NS).manifest
        pod = dep["spec"]["template"]["spec"]
        (spread,) = pod["topologySpreadConstraints"]
        assert spread == {"maxSkew": 1, "topologyKey": "kubernetes.io/hostname", "whenUnsatisfiable": "ScheduleAnyway",
                          "labelSelector": {"matchLabels": {"app": name, "version": "v1"}}}
        (c,) = pod["containers"]
        assert c["lifecycle"] == {"preStop": {"sleep": {"seconds": PRESTOP_SLEEP_SECONDS}}}
        # The sidecar drains as long as the app sleeps (Istio's default 5 s would cut it short),
        # and the grace period leaves Granian time after the sleep.
        annotations = dep["spec"]["template"]["metadata"]["annotations"]
        assert annotations["proxy.istio.io/config"] == f"terminationDrainDuration: {PRESTOP_SLEEP_SECONDS}s"
        assert pod["terminationGracePeriodSeconds"] >= PRESTOP_SLEEP_SECONDS + 10 == TERMINATION_GRACE_SECONDS - 10
    # Redis runs one pod on a ReadWriteOnce volume: no budget (it would block every drain).
    assert "redis" not in budgets


def test_second_version_has_its_own_budget(run_stack):
    """One budget per version: the eviction API refuses a pod two budgets select."""
    run = run_stack("ctx2", v2Cluster="ctx2")
    budgets = {b.meta_name: b.manifest["spec"]["selector"]["matchLabels"] for b in run.find("PodDisruptionBudget")}
    assert budgets["movie-service"] == {"app": "movie-service", "version": "v1"}
    assert budgets["movie-service-v2"] == {"app": "movie-service", "version": "v2"}


def test_images_are_pushed_digests(each_stack):
    here = each_stack.outputs["placement"]["here"]
    built = {img.inputs["imageName"] for img in each_stack.of_type("docker:index/image:Image")}
    assert built == {f"harbor.203.0.113.10.nip.io/theater-msa/{s}:v1" for s in here}
    for img in each_stack.of_type("docker:index/image:Image"):
        build = img.inputs["build"]
        assert build["platform"] == "linux/amd64"
        assert build["dockerfile"].endswith("services/Dockerfile")
        assert build["args"]["SERVICE_NAME"] in here
        # The registry block carries the password, so Pulumi keeps it secret.
        assert mockrun.is_secret(img.inputs["registry"]), "registry credentials are not secret"
        registry = mockrun.unwrap(img.inputs["registry"])
        assert registry["server"] == "harbor.203.0.113.10.nip.io" and registry["username"] == "admin"
    for name in here:
        image = pod_spec(each_stack, name)["containers"][0]["image"]
        assert re.fullmatch(rf"harbor\.203\.0\.113\.10\.nip\.io/theater-msa/{name}@sha256:[0-9a-f]{{64}}", image), image
        assert each_stack.outputs["images"][name] == image


def test_prepushed_images(run_stack):
    run = run_stack("ctx1", buildImages="false", imageTag="2024.1", registry="registry.example.test")
    assert run.of_type("docker:index/image:Image") == []
    assert pod_spec(run, "user-service")["containers"][0]["image"] == "registry.example.test/theater-msa/user-service:2024.1"
    assert "latest" not in str(run.outputs["images"])


DIGEST = "sha256:" + "ab" * 32


def test_a_digest_as_image_tag_is_refused_when_it_would_name_several_images(ui_dir):
    """imageTag sha256:... was applied to every service's repository: all but
    one pull failed (ErrImagePull) long after `pulumi up` started."""
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as info:
        mockrun.run("ctx2", mockrun.example({"buildImages": "false", "imageTag": DIGEST}), ui_dir=ui_dir)
    text = str(info.value)
    assert "theater-msa:imageTag is a digest" in text and "deploys 2 (movie-service, booking-service)" in text
    assert "pulumi config set theater-msa:imageTag <tag> --stack ctx2" in text
    with pytest.raises(ConfigError, match="buildImages is true"):
        mockrun.run("ctx2", mockrun.example({"imageTag": DIGEST}), ui_dir=ui_dir)


def test_a_digest_names_the_one_image_of_a_stack(run_stack):
    run = run_stack("ctx1", buildImages="false", v2ImageTag=DIGEST, v2Cluster="ctx1")
    image = pod_spec(run, "movie-service-v2")["containers"][0]["image"]
    assert image == f"harbor.203.0.113.10.nip.io/theater-msa/movie-service@{DIGEST}"
    one = run_stack("ctx2", buildImages="false", imageTag=DIGEST, placement='{"booking-service": "ctx1"}')
    assert pod_spec(one, "movie-service")["containers"][0]["image"].endswith(f"/movie-service@{DIGEST}")


def test_prepushed_images_are_pinned_to_the_digests_given(run_stack):
    """imageDigests (what `theater images push` prints): each image it names
    is pulled as repo:tag@digest, so a tag pushed again still rolls the pods
    and every node runs the same image; an image it leaves out keeps its tag."""
    v2 = "sha256:" + "cd" * 32
    digests = json.dumps({"user-service": DIGEST, "movie-service-v2": v2, "booking-service": DIGEST})
    run = run_stack("ctx1", buildImages="false", v2Cluster="ctx1", imageDigests=digests)
    repo = "harbor.203.0.113.10.nip.io/theater-msa"
    assert pod_spec(run, "user-service")["containers"][0]["image"] == f"{repo}/user-service:v1@{DIGEST}"
    assert pod_spec(run, "movie-service-v2")["containers"][0]["image"] == f"{repo}/movie-service:v2@{v2}"
    assert pod_spec(run, "api-gateway")["containers"][0]["image"] == f"{repo}/api-gateway:v1"
    assert run.outputs["images"]["user-service"] == f"{repo}/user-service:v1@{DIGEST}"


@pytest.mark.parametrize(
    ("settings", "expected"),
    [
        ({"imageDigests": json.dumps({"user-service": DIGEST})}, "imageDigests is set, but theater-msa:buildImages is true"),
        ({"buildImages": "false", "imageDigests": json.dumps({"user-servce": DIGEST})}, "unknown image 'user-servce'; known images: user-service"),
        ({"buildImages": "false", "imageDigests": json.dumps({"user-service": "sha256:abc"})}, "the digest of user-service must be sha256:"),
        ({"buildImages": "false", "imageDigests": json.dumps({"user-service": DIGEST.upper()})}, "64 lowercase hex"),
        ({"buildImages": "false", "imageDigests": '{"user-service": '}, "theater-msa:imageDigests is not valid JSON"),
        ({"buildImages": "false", "imageTag": DIGEST, "placement": '{"api-gateway": "ctx2"}',
          "imageDigests": json.dumps({"user-service": DIGEST})}, "imageTag is a digest and theater-msa:imageDigests gives user-service"),
    ],
)
def test_bad_image_digests_are_refused_naming_the_key(ui_dir, settings, expected):
    from infra.config import ConfigError

    with pytest.raises(ConfigError) as info:
        mockrun.run("ctx1", mockrun.example(settings), ui_dir=ui_dir)
    assert expected in str(info.value)


def test_redis(each_stack):
    dep = each_stack.one("Deployment", "redis", NS).manifest
    pod = dep["spec"]["template"]["spec"]
    pref = pod["affinity"]["nodeAffinity"]
    assert "requiredDuringSchedulingIgnoredDuringExecution" not in pref
    (term,) = pref["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["preference"]["matchExpressions"][0]["values"] == [each_stack.stack]
    (c,) = pod["containers"]
    assert c["image"] == catalog.REDIS.image
    assert "--appendonly" in c["args"] and c["args"][c["args"].index("--appendonly") + 1] == "yes"
    assert c["readinessProbe"] and c["livenessProbe"] and c["resources"]["limits"]
    assert c["securityContext"]["runAsUser"] == 999 and c["securityContext"]["readOnlyRootFilesystem"] is True
    # No password: protected mode would refuse the sidecar's non-loopback connection.
    assert c["args"][c["args"].index("--protected-mode") + 1] == "no"
    # By default the data survives the pod moving: a claim on the cluster's default StorageClass.
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}} in pod["volumes"]
    pvc = each_stack.one("PersistentVolumeClaim", "redis-data", NS).manifest
    assert "storageClassName" not in pvc["spec"]
    assert pvc["spec"]["accessModes"] == ["ReadWriteOnce"] and pvc["spec"]["resources"]["requests"] == {"storage": "1Gi"}
    assert dep["spec"]["strategy"] == {"type": "Recreate"}


def test_redis_pvc_setting(run_stack):
    run = run_stack("ctx2", redisStorageClass="local-path")
    pvc = run.one("PersistentVolumeClaim", "redis-data", NS).manifest
    assert pvc["spec"]["storageClassName"] == "local-path"
    pod = run.one("Deployment", "redis", NS).manifest["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "redis-data"}} in pod["volumes"]
    scratch = run_stack("ctx2", redisStorageClass="emptyDir")
    assert scratch.find("PersistentVolumeClaim") == []
    pod = scratch.one("Deployment", "redis", NS).manifest["spec"]["template"]["spec"]
    assert "emptyDir" in next(v for v in pod["volumes"] if v["name"] == "data")


@pytest.mark.parametrize("value", ["Local_Path", "EmptyDir", "-x", "a..b"])
def test_redis_storage_class_must_be_a_name(ui_dir, value):
    from infra.config import ConfigError

    with pytest.raises(ConfigError, match="theater-msa:redisStorageClass must be a StorageClass name"):
        mockrun.run("ctx2", mockrun.example({"redisStorageClass": value}), ui_dir=ui_dir)


def test_redis_image_setting(run_stack):
    image = "harbor.example.test/library/redis:7.4-alpine"
    run = run_stack("ctx1", redisImage=image)
    dep = run.one("Deployment", "redis", NS).manifest
    assert dep["spec"]["template"]["spec"]["containers"][0]["image"] == image
    assert dep["spec"]["template"]["metadata"]["labels"]["version"] == "7.4-alpine"


def test_gateway_rbac_is_read_only(ctx1):
    sa = ctx1.one("ServiceAccount", catalog.GATEWAY_SERVICE_ACCOUNT, NS).manifest
    assert sa.get("automountServiceAccountToken") is True
    (cr,) = [c.manifest for c in ctx1.find("ClusterRole") if "api-gateway" in c.meta_name]
    # Only what services/status reads: lists of nodes, pods and Deployments, no watch.
    assert cr["rules"] == [{"apiGroups": [""], "resources": ["nodes"], "verbs": ["get", "list"]}]
    role = ctx1.one("Role", "api-gateway-read", NS).manifest
    granted = {(g, r) for rule in role["rules"] for g in rule["apiGroups"] for r in rule["resources"]}
    assert granted == {("", "pods"), ("apps", "deployments")}
    assert all(rule["verbs"] == ["get", "list"] for rule in role["rules"])
    for binding in [*ctx1.find("ClusterRoleBinding"), *ctx1.find("RoleBinding")]:
        m = binding.manifest
        assert m["subjects"][0]["namespace"] == NS
    crb = next(b.manifest for b in ctx1.find("ClusterRoleBinding") if b.meta_name == cr["metadata"]["name"])
    assert crb["subjects"] == [{"kind": "ServiceAccount", "name": "api-gateway", "namespace": NS}]
    assert crb["roleRef"]["name"] == cr["metadata"]["name"]


def test_no_write_verbs_anywhere(each_stack):
    for obj in [*each_stack.find("ClusterRole"), *each_stack.find("Role")]:
        for rule in obj.manifest["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, obj.meta_name
            assert not WRITE_VERBS & set(rule["verbs"])


def test_each_app_has_its_own_service_account(each_stack):
    accounts = {s.meta_name for s in each_stack.find("ServiceAccount")}
    for name in each_stack.outputs["placement"]["here"]:
        assert pod_spec(each_stack, name)["serviceAccountName"] in accounts
    names = [pod_spec(each_stack, n)["serviceAccountName"] for n in each_stack.outputs["placement"]["here"]]
    assert len(names) == len(set(names))


def test_ui_configmap_and_checksum(ctx1, ui_dir, ctx2):
    cm = ctx1.one("ConfigMap", UI_CONFIGMAP, NS).manifest
    assert set(cm["data"]) == set(catalog.UI_FILES)
    files = {n: (ui_dir / n).read_text() for n in catalog.UI_FILES}
    assert cm["data"] == files
    dep = ctx1.one("Deployment", "api-gateway", NS).manifest
    assert dep["spec"]["template"]["metadata"]["annotations"][CHECKSUM_ANNOTATION] == checksum(files)
    pod = dep["spec"]["template"]["spec"]
    (c,) = pod["containers"]
    env = env_of(c)
    mount = next(m for m in c["volumeMounts"] if m["name"] == "ui")
    assert env["UI_DIR"]["value"] == mount["mountPath"]
    assert {"name": "ui", "configMap": {"name": UI_CONFIGMAP}} in pod["volumes"]
    # The namespace and this cluster's name reach the gateway once, as they reach every service.
    assert env["POD_NAMESPACE"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.namespace"
    assert "KUBE_NAMESPACE" not in env and "LOCAL_CLUSTER_NAME" not in env
    assert env["CLUSTER_NAME"]["value"] == "ctx1" and env["REMOTE_CLUSTER_NAME"]["value"] == "ctx2"
    assert env["REMOTE_KUBECONFIG"]["value"].startswith(catalog.REMOTE_KUBECONFIG_DIR + "/")
    remote = next(v for v in pod["volumes"] if v["name"] == "remote-kubeconfig")
    assert remote["secret"]["optional"] is True and remote["secret"]["secretName"] == REMOTE_SECRET
    assert ctx2.find("ConfigMap") == []


def test_ui_change_rolls_gateway(run_stack, ui_dir, tmp_path):
    for name in catalog.UI_FILES:
        (tmp_path / name).write_text((ui_dir / name).read_text())
    (tmp_path / catalog.UI_FILES[0]).write_text("<h1>changed</h1>")
    changed = mockrun.run("ctx1", mockrun.example({}), ui_dir=tmp_path)
    base = run_stack("ctx1")
    ann = lambda r: r.one("Deployment", "api-gateway", NS).manifest["spec"]["template"]["metadata"]["annotations"]  # noqa: E731
    assert ann(changed)[CHECKSUM_ANNOTATION] != ann(base)[CHECKSUM_ANNOTATION]


def test_dashboard_access_exported_by_ctx2(ctx1, ctx2, fake_kubeconfig):
    from tests.infra.conftest import TEST_API_SERVER

    assert "dashboardKubeconfig" not in ctx1.outputs
    assert {s.meta_name for s in ctx1.find("Secret")} == {"registry-pull"}  # no dashboard token in ctx1
    token = ctx2.one("Secret", TOKEN_SECRET, NS).manifest
    assert token["type"] == "kubernetes.io/service-account-token"
    assert token["metadata"]["annotations"]["kubernetes.io/service-account.name"] == catalog.DASHBOARD_SERVICE_ACCOUNT
    role = ctx2.one("Role", f"{catalog.DASHBOARD_SERVICE_ACCOUNT}-read", NS).manifest
    assert all(r["verbs"] == ["get", "list"] for r in role["rules"])
    import yaml

    kc = yaml.safe_load(ctx2.outputs["dashboardKubeconfig"])
    assert kc["clusters"][0]["cluster"]["server"] == TEST_API_SERVER
    assert kc["users"][0]["name"] == catalog.DASHBOARD_SERVICE_ACCOUNT and kc["users"][0]["user"]["token"]
    assert kc["contexts"][0]["context"]["namespace"] == NS


def test_remote_status_stack_mounts_kubeconfig(run_stack):
    run = run_stack("ctx1", remote_outputs={"organization/theater-msa/ctx2": {"dashboardKubeconfig": "apiVersion: v1\nkind: Config\n"}},
                    remoteStatusStack="organization/theater-msa/ctx2")
    secret = run.one("Secret", REMOTE_SECRET, NS).manifest
    assert secret["stringData"]["kubeconfig"].startswith("apiVersion: v1")
    refs = run.of_type("pulumi:pulumi:StackReference")
    assert [r.inputs["name"] for r in refs] == ["organization/theater-msa/ctx2"]
    assert run.outputs["remoteStatus"] == "organization/theater-msa/ctx2"


def test_no_stack_reference_unless_configured(ctx1, ctx2):
    assert ctx1.of_type("pulumi:pulumi:StackReference") == []
    assert ctx2.of_type("pulumi:pulumi:StackReference") == []
    assert "not connected" in ctx1.outputs["remoteStatus"]


def test_placement_override(run_stack):
    run1 = run_stack("ctx1", placement='{"movie-service": "ctx1"}')
    run2 = run_stack("ctx2", placement='{"movie-service": "ctx1"}')
    assert deployment_names(run1) == {"user-service", "api-gateway", "movie-service", "redis"}
    assert deployment_names(run2) == {"booking-service", "redis"}
    (term,) = pod_spec(run1, "movie-service")["affinity"]["nodeAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
    assert term["preference"]["matchExpressions"][0]["values"] == ["ctx1"]
    # movie-service's home is ctx1 now: its data is in ctx1's Redis, and booking-service's stays in ctx2's.
    assert env_of(pod_spec(run1, "movie-service")["containers"][0])["REDIS_URL"]["value"] == catalog.REDIS.cluster_url("ctx1")
    assert env_of(pod_spec(run2, "booking-service")["containers"][0])["REDIS_URL"]["value"] == catalog.REDIS.cluster_url("ctx2")


def test_replicas_setting(run_stack):
    run = run_stack("ctx2", replicas="3")
    assert all(d.manifest["spec"]["replicas"] == 3 for d in run.find("Deployment") if d.meta_name != "redis")


def test_outputs(each_stack):
    out = each_stack.outputs
    assert out["url"] == "http://theater.203.0.113.10.nip.io"
    assert out["cluster"] == each_stack.stack
    assert any(cmd.startswith("kubectl --context " + each_stack.stack) for cmd in out["demoCommands"])
    assert any(cmd.startswith("istioctl ") for cmd in out["demoCommands"])


def test_app_pods_ask_istio_to_merge_their_metrics(each_stack):
    """Under STRICT mTLS Prometheus cannot scrape 808x; with these annotations
    the sidecar merges the app's /metrics into its own 15020 endpoint."""
    for name in each_stack.outputs["placement"]["here"]:
        annotations = each_stack.one("Deployment", name, NS).manifest["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(catalog.SERVICES[name].port)
        assert annotations["prometheus.io/path"] == catalog.METRICS_PATH == "/metrics"
    # demoCommands shows the merged metrics of an app running here.
    assert any("15020/stats/prometheus" in c and "http_requests_total" in c for c in each_stack.outputs["demoCommands"])


def test_dashboard_token_comes_from_the_created_secret(ctx2):
    """pulumi-kubernetes reports a service-account-token Secret as created only
    once the token controller has filled its data, so the program reads the
    token from that resource: no second read (Secret.get) of the same object."""
    import base64

    import yaml

    assert [f"{r.type} {r.name}" for r in ctx2.resources if r.is_kubernetes and r.is_read] == []
    kc = yaml.safe_load(ctx2.outputs["dashboardKubeconfig"])
    assert kc["users"][0]["user"]["token"] == mockrun.MOCK_SA_TOKEN
    assert base64.b64decode(kc["clusters"][0]["cluster"]["certificate-authority-data"]) == mockrun.MOCK_SA_CA
