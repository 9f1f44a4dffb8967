"""`theater doctor`: before `pulumi up`, what the two clusters still miss.

Read-only. It reads both kubeconfig contexts (stack settings kubeContext),
the stack settings (Pulumi.ctx1.yaml, Pulumi.ctx2.yaml), DNS, the registry
and the Pulumi CLI, and prints one line per check, ✓ / ✗ / –, with the
command that fixes each ✗. Exit code 1 when a blocking check failed, 2 for
bad options; `--json` prints the same as data.

    uv run theater doctor [--kubeconfig PATH] [--json] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from checklist import harbor, kube
from checklist.report import Report, Result, failed, passed, skipped
from checklist.stack import REPO_ROOT, StackError, StackSettings, read
from infra import lesson_sync, setting_objects
from services import catalog

ISTIO_NS = "istio-system"
# The Istio kinds the Pulumi program declares (infra/istio/typed.py; a test keeps them equal), by API group.
# Their version is the stack setting istioApiVersion.
ISTIO_KINDS = {"networking.istio.io": ("virtualservices", "destinationrules"),
               "security.istio.io": ("peerauthentications", "authorizationpolicies")}
EASTWEST_SERVICE = "istio-eastwestgateway"
ROOT_CERT_CONFIGMAP = "istio-ca-root-cert"
REMOTE_SECRET_LABEL = "istio/multiCluster=true"
REMOTE_SECRET_CLUSTER_ANNOTATION = "networking.istio.io/cluster"


def istiod_cluster_id(deployment: dict) -> str | None:
    """The cluster ID an istiod runs with: its container's CLUSTER_ID (istioctl
    and Helm set it from values.global.multiCluster.clusterName; the docs use
    cluster1/cluster2), or None when the Deployment does not say."""
    for container in deployment["spec"]["template"]["spec"].get("containers") or []:
        for env in container.get("env") or []:
            if env.get("name") == "CLUSTER_ID" and env.get("value"):
                return str(env["value"])
    return None


def remote_secret_ids(secrets: list[dict]) -> set[str]:
    """Cluster IDs the istio/multiCluster=true Secrets register (the annotation and their data keys)."""
    ids: set[str] = set()
    for s in secrets:
        annotation = (s["metadata"].get("annotations") or {}).get(REMOTE_SECRET_CLUSTER_ANNOTATION)
        if annotation:
            ids.add(annotation)
        ids.update((s.get("data") or {}).keys())
    return ids

Resolver = Callable[[str], list[str]]


def resolve(host: str, timeout: float = 5.0) -> list[str]:
    """The addresses host resolves to (empty when it does not resolve in time)."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        infos = pool.submit(socket.getaddrinfo, host, 80, 0, socket.SOCK_STREAM).result(timeout)
    except (OSError, concurrent.futures.TimeoutError):
        return []
    finally:
        pool.shutdown(wait=False)
    return sorted({info[4][0] for info in infos})


@dataclass
class Options:
    kubeconfig: str | None = None
    project_dir: Path = REPO_ROOT
    overrides: dict[str, str] = field(default_factory=dict)
    registry_url: str | None = None  # default https://<registry setting>
    timeout: float = 5.0
    resolver: Resolver | None = None  # default: the system resolver
    pulumi: str | None = None  # the pulumi binary; default: PATH, then `theater tools build`'s


class Doctor:
    def __init__(self, options: Options) -> None:
        self.o = options
        self.report = Report("doctor")
        self.stacks: dict[str, StackSettings] = {}
        self.clusters: dict[str, kube.Cluster] = {}
        self.unreachable: dict[str, str] = {}
        self.served: dict[str, dict[str, list[str]]] = {}
        self.cluster_ids: dict[str, str] = {}  # stack -> its istiod's CLUSTER_ID (checks.istio)

    # ------------------------------------------------------------ plumbing

    def add(self, *results: Result) -> None:
        self.report.add(*results)

    def cluster_or_skip(self, name: str, key: str, title: str) -> kube.Cluster | None:
        if name in self.clusters:
            return self.clusters[name]
        self.add(skipped(key, title, f"{name} 에 연결되지 않아 건너뜀 ({self.unreachable.get(name, '?')})"))
        return None

    @property
    def ingress(self) -> StackSettings:
        return self.stacks[self.stacks[catalog.CLUSTERS[0]].ingress_cluster]

    def ctx(self, cluster: str) -> str:
        return self.stacks[cluster].kube_context

    # ------------------------------------------------------------ checks

    def run(self) -> Report:
        for name in catalog.CLUSTERS:
            self.stacks[name] = read(name, self.o.project_dir, self.o.overrides)
        ingress = self.ingress
        self.report.context.update({"domain": ingress.domain, "host": ingress.host})
        self.lesson_settings()
        try:
            self.connect()
            for name in catalog.CLUSTERS:
                self.check(self.node_labels, name, f"nodes.{name}", f"{name} 노드 레이블 {catalog.CLUSTER_LABEL}")
            for name in catalog.CLUSTERS:
                self.check(self.istio, name, f"istio.{name}", f"{name} istiod·Istio API")
            self.check(self.gateway, ingress.cluster, "gateway", f"{ingress.cluster} Gateway {'/'.join(ingress.ingress_gateway)}")
            self.check(self.ingress_service_account, ingress.cluster, "ingress-sa", "인그레스 게이트웨이 ServiceAccount")
            for name in catalog.CLUSTERS:
                self.check(self.eastwest, name, f"eastwest.{name}", f"{name} east-west 게이트웨이 외부 주소")
            for name in catalog.CLUSTERS:
                self.check(self.remote_secrets, name, f"remote-secrets.{name}", f"{name} 원격 시크릿(멀티 클러스터)")
            self.root_ca()
            self.dns()
            self.registry()
            self.pulumi_cli()
        finally:
            for c in self.clusters.values():
                c.close()
        return self.report

    def check(self, fn: Callable[[kube.Cluster], Result | None], name: str, key: str, title: str) -> None:
        """Run one cluster check; a cluster that stops answering makes it a ✗ with the reason."""
        cluster = self.cluster_or_skip(name, key, title)
        if cluster is None:
            return
        try:
            result = fn(cluster)
        except kube.KubeError as exc:
            result = failed(key, title, str(exc), f"kubectl --context {cluster.context} cluster-info")
        if result is not None:
            result.key, result.title = key, title
            self.add(result)

    def connect(self) -> None:
        explicit = self.o.kubeconfig or self.stacks[catalog.CLUSTERS[0]].kubeconfig
        path = kube.kubeconfig_path(explicit)
        self.report.context["kubeconfig"] = str(path)
        title = "kubeconfig 파일"
        try:
            config = kube.load(path)
        except kube.KubeError as exc:
            self.add(failed("kubeconfig", title, str(exc),
                            ["export KUBECONFIG=<두 컨텍스트가 든 kubeconfig 경로>", "kubectl config get-contexts"]))
            for name in catalog.CLUSTERS:
                self.unreachable[name] = "kubeconfig 없음"
            return
        self.add(passed("kubeconfig", title, f"{path} (컨텍스트: {', '.join(sorted(config.contexts))})"))
        for name in catalog.CLUSTERS:
            context = self.ctx(name)
            key, title = f"context.{name}", f"컨텍스트 {context} 연결·버전"
            try:
                cluster = kube.Cluster.open(config, name, context, self.o.timeout)
            except kube.KubeError as exc:
                self.unreachable[name] = f"컨텍스트 {context} 없음"
                others = sorted(set(config.contexts) - {self.ctx(n) for n in catalog.CLUSTERS})
                self.add(failed(key, title, str(exc), [
                    f"kubectl config rename-context {others[0] if others else '<원래 컨텍스트 이름>'} {context}",
                    "kubectl config get-contexts"]))
                continue
            try:
                version = cluster.get("/version") or {}
            except kube.KubeError as exc:
                self.unreachable[name] = "API 서버 응답 없음"
                cluster.close()
                self.add(failed(key, title, str(exc), [f"kubectl --context {context} cluster-info",
                                                       f"kubectl config view --minify --context {context}"]))
                continue
            self.clusters[name] = cluster
            self.add(passed(key, title, f"{cluster.server} 응답, Kubernetes {version.get('gitVersion', '?')}"))

    def node_labels(self, cluster: kube.Cluster) -> Result:
        want = self.stacks[cluster.name].cluster
        label = catalog.CLUSTER_LABEL
        nodes = cluster.items("/api/v1/nodes")
        if not nodes:
            return failed("", "", "노드가 하나도 없습니다", f"kubectl --context {cluster.context} get nodes")
        wrong = {n["metadata"]["name"]: (n["metadata"].get("labels") or {}).get(label) for n in nodes}
        wrong = {k: v for k, v in wrong.items() if v != want}
        if not wrong:
            return passed("", "", f"노드 {len(nodes)}개 모두 {label}={want}")
        seen = ", ".join(f"{k}({label}={v})" if v else f"{k}(레이블 없음)" for k, v in sorted(wrong.items()))
        fix = (f"kubectl --context {cluster.context} label nodes --all {label}={want} --overwrite"
               if len(wrong) == len(nodes) else
               f"kubectl --context {cluster.context} label nodes {' '.join(sorted(wrong))} {label}={want} --overwrite")
        return failed("", "", f"노드 {len(nodes)}개 중 {len(wrong)}개가 {label}={want} 가 아님: {seen}", fix)

    def served_versions(self, cluster: kube.Cluster, group: str) -> list[str]:
        cache = self.served.setdefault(cluster.name, {})
        if group not in cache:
            body = cluster.get(f"/apis/{group}") or {}
            cache[group] = [v["version"] for v in body.get("versions") or []]
        return cache[group]

    def istio(self, cluster: kube.Cluster) -> Result:
        ctx = cluster.context
        dep = cluster.get(f"/apis/apps/v1/namespaces/{ISTIO_NS}/deployments/istiod")
        served = {group: self.served_versions(cluster, group) for group in ISTIO_KINDS}
        apis = ", ".join(f"{g}: {'/'.join(v) or '없음'}" for g, v in served.items())
        if dep is None:
            return failed("", "", f"istio-system/istiod Deployment 가 없습니다 (Istio 미설치?); API {apis}", [
                f"istioctl --context {ctx} install -y --set values.global.meshID=mesh1 "
                f"--set values.global.multiCluster.clusterName={self.stacks[cluster.name].cluster} "
                f"--set values.global.network=network-{self.stacks[cluster.name].cluster}",
                f"kubectl --context {ctx} -n {ISTIO_NS} get deploy"])
        cluster_id = istiod_cluster_id(dep)
        if cluster_id:
            self.cluster_ids[cluster.name] = cluster_id
        images = [c.get("image", "") for c in dep["spec"]["template"]["spec"].get("containers", [])]
        istio_version = next((image_tag(i) for i in images if image_tag(i)), "?")
        want = dep["spec"].get("replicas", 1)
        ready = (dep.get("status") or {}).get("readyReplicas") or 0
        version = self.stacks[cluster.name].istio_api_version
        missing = []
        for group, kinds in ISTIO_KINDS.items():
            resources = {r["name"] for r in (cluster.get(f"/apis/{group}/{version}") or {}).get("resources") or []}
            missing += [f"{k}.{group}/{version}" for k in kinds if k not in resources]
        evidence = f"istiod {ready}/{want} 준비, Istio {istio_version}, CLUSTER_ID {cluster_id or '(설정 없음)'}; API {apis}"
        if ready < 1:
            return failed("", "", evidence + " — istiod 가 준비되지 않았습니다", [
                f"kubectl --context {ctx} -n {ISTIO_NS} get pods -l app=istiod",
                f"kubectl --context {ctx} -n {ISTIO_NS} rollout restart deploy/istiod"])
        if missing:
            fixes = [f"pulumi config set theater-msa:istioApiVersion v1beta1 --stack {cluster.name}   # Istio 1.14 이상 모두 제공"]
            if version == "v1beta1":
                fixes = [f"istioctl --context {ctx} upgrade -y   # Istio 1.14 이상으로"]
            return failed("", "", evidence + f" — 스택 설정 istioApiVersion={version} 의 {', '.join(missing)} 를 제공하지 않습니다",
                          fixes + [f"kubectl --context {ctx} api-resources --api-group=networking.istio.io"])
        return passed("", "", evidence)

    def gateway(self, cluster: kube.Cluster) -> Result:
        namespace, name = self.ingress.ingress_gateway
        host, ctx = self.ingress.host, cluster.context
        versions = self.served_versions(cluster, "networking.istio.io")
        if not versions:
            return failed("", "", "networking.istio.io API 가 없습니다 (Istio CRD 미설치)", f"istioctl --context {ctx} install -y")
        gw = cluster.get(f"/apis/networking.istio.io/{versions[0]}/namespaces/{namespace}/gateways/{name}")
        if gw is None:
            return failed("", "", f"{namespace}/{name} Gateway 가 없습니다", [gateway_manifest(ctx, namespace, name, host),
                          f"# 다른 이름의 Gateway 를 쓰려면: pulumi config set theater-msa:ingressGateway <ns>/<name> --stack {self.ingress.stack}"])
        hosts = [h for s in gw.get("spec", {}).get("servers") or [] for h in s.get("hosts") or []]
        if any(host_covers(h, host) for h in hosts):
            return passed("", "", f"{namespace}/{name} 있음, hosts {hosts} 가 {host} 를 포함")
        return failed("", "", f"{namespace}/{name} 의 hosts {hosts} 가 {host} 를 포함하지 않습니다",
                      f"kubectl --context {ctx} -n {namespace} patch gateway {name} --type json "
                      f"-p '[{{\"op\":\"add\",\"path\":\"/spec/servers/0/hosts/-\",\"value\":\"{host}\"}}]'")

    def ingress_pods(self, cluster: kube.Cluster) -> list[dict]:
        """The pods the Gateway selects (its spec.selector), else those labelled istio=ingressgateway."""
        namespace, name = self.ingress.ingress_gateway
        versions = self.served_versions(cluster, "networking.istio.io")
        gw = cluster.get(f"/apis/networking.istio.io/{versions[0]}/namespaces/{namespace}/gateways/{name}") if versions else None
        selector = (gw or {}).get("spec", {}).get("selector") or {"istio": "ingressgateway"}
        query = ",".join(f"{k}={v}" for k, v in selector.items())
        return cluster.items("/api/v1/pods", labelSelector=query)

    def ingress_service_account(self, cluster: kube.Cluster) -> Result:
        ctx = cluster.context
        pods = self.ingress_pods(cluster)
        actual = sorted({f"{p['metadata']['namespace']}/{p['spec'].get('serviceAccountName') or 'default'}" for p in pods})
        wrong, lines = [], []
        for name, settings in self.stacks.items():
            ns, sa = settings.ingress_service_account
            configured = f"{ns}/{sa}"
            if sa == "*":  # every ServiceAccount of the namespace
                ok = bool(actual) and all(a.split("/", 1)[0] == ns for a in actual)
                lines.append(f"{name} 설정 {configured}{'' if ok else f' ({ns} 의 게이트웨이 Pod 없음)'}")
            else:
                exists = cluster.get(f"/api/v1/namespaces/{ns}/serviceaccounts/{sa}") is not None
                ok = exists and (not actual or configured in actual)
                lines.append(f"{name} 설정 {configured}{'' if exists else ' (없는 SA)'}")
            if not ok:
                wrong.append(name)
        seen = f"게이트웨이 Pod 의 SA: {', '.join(actual) if actual else '(Pod 없음)'}"
        if not wrong:
            return passed("", "", f"{'; '.join(lines)}; {seen}")
        target = actual[0] if len(actual) == 1 else "<게이트웨이 Pod 의 namespace/serviceaccount>"
        fixes = [f"pulumi config set theater-msa:ingressServiceAccount {target} --stack {s}" for s in wrong]
        if not actual:
            fixes.append(f"kubectl --context {ctx} get pods -A -l istio=ingressgateway "
                         "-o custom-columns=NS:.metadata.namespace,SA:.spec.serviceAccountName")
        return failed("", "", f"{'; '.join(lines)}; {seen} — AuthorizationPolicy 가 인그레스를 막게 됩니다", fixes)

    def eastwest(self, cluster: kube.Cluster) -> Result:
        ctx, network = cluster.context, f"network-{self.stacks[cluster.name].cluster}"
        svc = cluster.get(f"/api/v1/namespaces/{ISTIO_NS}/services/{EASTWEST_SERVICE}")
        install = (f"samples/multicluster/gen-eastwest-gateway.sh --network {network} | "
                   f"istioctl --context {ctx} install -y -f -   # Istio 배포본 디렉터리에서")
        expose = f"kubectl --context {ctx} apply -n {ISTIO_NS} -f samples/multicluster/expose-services.yaml"
        if svc is None:
            return failed("", "", f"{ISTIO_NS}/{EASTWEST_SERVICE} Service 가 없습니다", [install, expose])
        ingress = (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []
        addresses = [i.get("ip") or i.get("hostname") for i in ingress if i.get("ip") or i.get("hostname")]
        addresses += (svc.get("spec") or {}).get("externalIPs") or []
        ports = [p.get("port") for p in svc["spec"].get("ports") or []]
        if not addresses:
            return failed("", "", f"{EASTWEST_SERVICE} 에 외부 주소가 없습니다 (EXTERNAL-IP <pending>, type {svc['spec'].get('type')})",
                          [f"kubectl --context {ctx} -n {ISTIO_NS} describe svc {EASTWEST_SERVICE}   # 로드밸런서 이벤트 확인"])
        if 15443 not in ports:
            return failed("", "", f"{EASTWEST_SERVICE} {', '.join(addresses)} 에 15443 포트가 없습니다 (포트: {ports})", [install])
        return passed("", "", f"{EASTWEST_SERVICE} {', '.join(addresses)} (15443 열림)")

    def peer_cluster_id(self, stack: str) -> tuple[str, str]:
        """(cluster ID, where it came from) of a stack's cluster: its istiod's
        CLUSTER_ID, else the stack's cluster name (when istiod was not read or says nothing)."""
        if stack in self.cluster_ids:
            return self.cluster_ids[stack], f"{stack} istiod 의 CLUSTER_ID"
        return self.stacks[stack].cluster, "istiod 에서 읽지 못해 스택 이름으로 가정"

    def remote_secrets(self, cluster: kube.Cluster) -> Result:
        secrets = cluster.items(f"/api/v1/namespaces/{ISTIO_NS}/secrets", labelSelector=REMOTE_SECRET_LABEL)
        covered = remote_secret_ids(secrets)
        peers = {p: self.peer_cluster_id(p) for p in catalog.CLUSTERS if p != cluster.name}
        missing = [p for p, (cid, _) in peers.items() if cid not in covered]
        names = ", ".join(s["metadata"]["name"] for s in secrets) or "없음"
        seen = "; ".join(f"{p}={cid} ({source})" for p, (cid, source) in peers.items())
        if not missing:
            return passed("", "", f"{names} ({seen} 를 봄)")
        # A secret for the peer under another name (its stack name, say) registers it twice once fixed.
        stale = [s["metadata"]["name"] for s in secrets if remote_secret_ids([s]) & {self.stacks[p].cluster for p in missing}
                 and not remote_secret_ids([s]) & {peers[p][0] for p in missing}]
        fixes = [f"istioctl create-remote-secret --context={self.ctx(p)} --name={peers[p][0]} | "
                 f"kubectl apply --context={cluster.context} -f -" for p in missing]
        fixes += [f"kubectl --context {cluster.context} -n {ISTIO_NS} delete secret {name}   # 다른 ID 로 등록된 같은 클러스터"
                  for name in stale]
        return failed("", "", f"클러스터 ID {', '.join(peers[p][0] for p in missing)} 의 원격 시크릿이 없습니다 "
                      f"({seen}; istio/multiCluster=true 시크릿: {names}, 등록된 ID: {', '.join(sorted(covered)) or '없음'})",
                      fixes)

    def lesson_settings(self) -> None:
        """Placement and the version lessons must be the same on both stacks (infra/lesson_sync.py)."""
        key, title = "lesson-settings", "두 스택의 배치·버전 실습 설정 일치"
        first, second = catalog.CLUSTERS[0], catalog.CLUSTERS[1]
        mine, theirs = self.stacks[first].values, self.stacks[second].values
        problem = lesson_sync.mismatch_problem(first, mine, second, theirs)
        if problem is None:
            on = [k for k in lesson_sync.SHARED if str(mine.get(k) or "").strip() not in ("", "false")]
            self.add(passed(key, title, "같음" + (f" ({', '.join(on)} 켜짐)" if on else " (모두 기본값)")))
            return
        fixes = [line.strip() for line in problem.splitlines() if line.strip().startswith("pulumi ")]
        self.add(failed(key, title, problem.splitlines()[0] + " " + "; ".join(
            line.strip() for line in problem.splitlines() if line.startswith("    theater-msa:")), fixes))

    def root_ca(self) -> None:
        key, title = "root-ca", "두 클러스터의 루트 CA"
        certs: dict[str, str] = {}
        for name in catalog.CLUSTERS:
            cluster = self.clusters.get(name)
            if cluster is None:
                self.add(skipped(key, title, f"{name} 에 연결되지 않아 비교할 수 없음"))
                return
            try:
                cm = cluster.get(f"/api/v1/namespaces/{ISTIO_NS}/configmaps/{ROOT_CERT_CONFIGMAP}")
            except kube.KubeError as exc:
                self.add(failed(key, title, str(exc)))
                return
            if cm is None or not (cm.get("data") or {}).get("root-cert.pem"):
                self.add(failed(key, title, f"{name}: {ISTIO_NS}/{ROOT_CERT_CONFIGMAP} 가 없습니다 (istiod 가 만듦)",
                                f"kubectl --context {self.ctx(name)} -n {ISTIO_NS} rollout restart deploy/istiod"))
                return
            certs[name] = cm["data"]["root-cert.pem"]
        prints = {n: fingerprint(c) for n, c in certs.items()}
        shown = ", ".join(f"{n} {p[:23]}" for n, p in prints.items())
        if len(set(prints.values())) == 1:
            self.add(passed(key, title, f"같은 루트 CA (SHA-256 {shown}…)"))
            return
        self.add(failed(key, title, f"루트 CA 가 다릅니다 ({shown}…): 클러스터 간 mTLS 가 실패합니다", [
            f"kubectl --context {self.ctx(n)} -n {ISTIO_NS} create secret generic cacerts "
            "--from-file=ca-cert.pem --from-file=ca-key.pem --from-file=root-cert.pem --from-file=cert-chain.pem"
            for n in catalog.CLUSTERS] + [
            "# 같은 root-cert.pem 으로 만든 중간 CA 를 넣은 뒤 양쪽 istiod 재시작 (Istio 'Plug in CA Certificates')"]))

    def dns(self) -> None:
        host = self.ingress.host
        key, title = "dns", f"{host} 이름 풀이"
        addresses = (self.o.resolver or (lambda h: resolve(h, self.o.timeout)))(host)
        if not addresses:
            self.add(failed(key, title, f"{host} 가 풀리지 않습니다", [
                f"nslookup {host}",
                "pulumi config set theater-msa:domain <인그레스 외부 IP>.nip.io --stack ctx1   # ctx2 에도"],
                blocking=False))
            return
        lb = self.ingress_addresses()
        if lb and not set(lb) & set(addresses):
            self.add(failed(key, title, f"{host} → {', '.join(addresses)} 인데 인그레스 게이트웨이 주소는 {', '.join(lb)}",
                            f"pulumi config set theater-msa:domain {lb[0]}.nip.io --stack ctx1   # ctx2 에도", blocking=False))
            return
        self.add(passed(key, title, f"{host} → {', '.join(addresses)}" + (" (인그레스 게이트웨이 주소와 같음)" if lb else "")))

    def ingress_addresses(self) -> list[str]:
        cluster = self.clusters.get(self.ingress.cluster)
        if cluster is None:
            return []
        try:
            pods = self.ingress_pods(cluster)
            if not pods:
                return []
            labels = pods[0]["metadata"].get("labels") or {}
            services = cluster.items(f"/api/v1/namespaces/{pods[0]['metadata']['namespace']}/services")
        except kube.KubeError:
            return []
        found = []
        for svc in services:
            selector = (svc.get("spec") or {}).get("selector") or {}
            if selector and all(labels.get(k) == v for k, v in selector.items()):
                for i in (svc.get("status") or {}).get("loadBalancer", {}).get("ingress") or []:
                    found.append(i.get("ip") or i.get("hostname"))
        return [a for a in found if a]

    def registry(self) -> None:
        settings = self.ingress
        project = settings.harbor_project
        url = self.o.registry_url or f"https://{settings.registry}"
        key, title = "registry", f"레지스트리 {settings.registry}/{project}"
        state = harbor.inspect(url, project, self.o.timeout)
        if not state.reachable:
            self.add(failed(key, title, state.error or "응답 없음", [f"curl -sk {url}/api/v2.0/ping",
                     "pulumi config set theater-msa:registry <레지스트리 호스트> --stack ctx1   # ctx2 에도"]))
            return
        api = f"{url}/api/v2.0/projects"
        if not state.exists:
            self.add(failed(key, title, f"Harbor 응답, 프로젝트 {project} 가 없습니다", [
                f"curl -u {settings.text('harborUsername') or 'admin'} -X POST {api} -H 'content-type: application/json' "
                f"-d '{{\"project_name\":\"{project}\",\"metadata\":{{\"public\":\"true\"}}}}'"]))
            return
        pull = settings.pull_secret_setting
        if state.public:
            self.add(passed(key, title, f"Harbor 응답, 프로젝트 {project} 공개"))
        elif pull and pull[1]:
            self.add(passed(key, title, f"Harbor 응답, 프로젝트 {project} 비공개, 스택 설정 {pull[0]} 켜짐"))
        else:
            fixes = [f"curl -u {settings.text('harborUsername') or 'admin'} -X PUT {api}/{project}/metadatas/public "
                     "-H 'X-Is-Resource-Name: true' -H 'content-type: application/json' -d '{\"public\":\"true\"}'"]
            if pull:
                fixes.append(f"pulumi config set theater-msa:{pull[0]} true --stack ctx1   # 또는 비공개로 두고 pull Secret 사용 (ctx2 에도)")
            why = "익명 조회 불가" if state.unauthorized else "metadata.public=false"
            self.add(failed(key, title, f"Harbor 응답, 프로젝트 {project} 비공개({why}): 노드가 이미지를 받지 못합니다", fixes))

    def pulumi_cli(self) -> None:
        key, title = "pulumi", "Pulumi CLI"
        path = self.o.pulumi or shutil.which("pulumi")
        if not path:
            from sim import tools  # noqa: PLC0415 - only when pulumi is not on PATH

            path = tools.locate().get("pulumi")
        if not path:
            self.add(failed(key, title, "pulumi 명령을 찾을 수 없습니다", [
                "curl -fsSL https://get.pulumi.com | sh   # https://www.pulumi.com/docs/install/",
                "uv run theater tools build               # 또는 Go 모듈에서 빌드 (~/.cache/theater/tools)"]))
            return
        env = {**os.environ, "PULUMI_SKIP_UPDATE_CHECK": "true"}
        try:
            out = subprocess.run([path, "version"], capture_output=True, text=True, timeout=60, env=env)
        except (OSError, subprocess.TimeoutExpired) as exc:
            self.add(failed(key, title, f"{path} version 실패: {exc}"))
            return
        version = out.stdout.strip()
        if out.returncode != 0 or not re.match(r"v?\d+\.\d+", version):
            self.add(failed(key, title, f"{path} version 이 {out.returncode} 로 끝남: {out.stderr.strip()[:200]}"))
            return
        self.add(passed(key, title, f"{version} ({path})"))


def image_tag(image: str) -> str | None:
    """The tag of an image reference (`docker.io/istio/pilot:1.28.0` -> 1.28.0), or its short digest."""
    name, _, digest = image.partition("@")
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        return last.rsplit(":", 1)[1]
    return digest[:19] if digest else None


def host_covers(pattern: str, host: str) -> bool:
    """Does a Gateway server host (`*`, `theater.x`, `*.x`, optionally `ns/` first) cover host?"""
    pattern = pattern.split("/", 1)[-1]
    if pattern == "*" or pattern == host:
        return True
    return pattern.startswith("*.") and host.endswith(pattern[1:])


def gateway_manifest(ctx: str, namespace: str, name: str, host: str) -> str:
    """One line (copy-pasteable from the table): the Gateway as JSON, piped to kubectl apply."""
    manifest = {"apiVersion": "networking.istio.io/v1beta1", "kind": "Gateway",
                "metadata": {"name": name, "namespace": namespace},
                "spec": {"selector": {"istio": "ingressgateway"},
                         "servers": [{"port": {"number": 80, "name": "http", "protocol": "HTTP"}, "hosts": [host]}]}}
    return f"echo '{json.dumps(manifest, separators=(',', ':'))}' | kubectl --context {ctx} apply -f -"


def fingerprint(pem: str) -> str:
    """SHA-256 of the first certificate's DER, as AA:BB:..."""
    body = pem.split("-----BEGIN CERTIFICATE-----", 1)[-1].split("-----END CERTIFICATE-----", 1)[0]
    try:
        der = base64.b64decode("".join(body.split()))
    except ValueError:
        der = pem.encode()
    digest = hashlib.sha256(der).hexdigest().upper()
    return ":".join(digest[i:i + 2] for i in range(0, len(digest), 2))


def parse_set(values: Sequence[str]) -> dict[str, str]:
    return setting_objects.parse_overrides(values, "--set")


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--kubeconfig", help="두 컨텍스트가 있는 kubeconfig (기본: 스택 설정 kubeconfig, "
                                             "$KUBECONFIG, ~/.kube/config)")
    parser.add_argument("--project-dir", type=Path, default=REPO_ROOT,
                        help="Pulumi.yaml 과 Pulumi.<stack>.yaml 이 있는 디렉터리 (기본: 이 체크아웃)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="이번 실행에만 theater-msa:* 스택 설정을 바꿈 (두 스택 모두, 여러 번 가능), 예: domain=1.2.3.4.nip.io")
    parser.add_argument("--timeout", type=float, default=5.0, help="요청마다 기다리는 초 (기본: 5)")
    parser.add_argument("--json", action="store_true", help="결과를 JSON 으로 출력")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_common_arguments(parser)
    parser.add_argument("--registry-url", help="레지스트리 API 주소 (기본: https://<registry 설정>)")


def finish(report: Report, as_json: bool) -> int:
    print(report.to_json() if as_json else report.render(), flush=True)
    return report.exit_code


def main(args: argparse.Namespace) -> int:
    try:
        options = Options(args.kubeconfig, args.project_dir, parse_set(args.set), args.registry_url, args.timeout)
        report = Doctor(options).run()
    except (ValueError, StackError) as exc:
        print(f"theater doctor: {exc}", file=sys.stderr)
        return 2
    return finish(report, args.json)
