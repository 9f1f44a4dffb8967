"""`theater doctor`'s checks that need no cluster: the registry (against a
server answering like Harbor's REST API v2.0: GET /api/v2.0/ping → "Pong",
GET /api/v2.0/projects/{name} with X-Is-Resource-Name: true → the Project,
whose metadata.public is the string "true" or "false"; swagger.yaml in
goharbor/harbor, api/v2.0), DNS, the Pulumi CLI, the stack settings, the
output table and JSON, and the CLI's exit codes."""

from __future__ import annotations

import json
import subprocess
import unicodedata
from pathlib import Path

import pytest

from checklist import doctor, stack
from checklist.report import FAIL, PASS, SKIP, Report, failed, passed
from services.launcher import LiveServer
from tests.checklist.servers import harbor_app
from tests.gateway.conftest import theater_command

ROOT = Path(__file__).resolve().parents[2]


def run(tmp_path: Path, registry_url: str, resolver=lambda host: [], **overrides: str) -> Report:
    options = doctor.Options(kubeconfig=str(tmp_path / "no-kubeconfig"), overrides=overrides, registry_url=registry_url,
                             timeout=3, resolver=resolver, pulumi="/bin/false")
    return doctor.Doctor(options).run()


@pytest.mark.parametrize(("projects", "pull_secret", "status", "fix_has"), [
    ({"theater-msa": True}, "false", PASS, None),
    ({"theater-msa": False}, "true", PASS, None),  # private, but the stack gives pods a pull Secret
    ({"theater-msa": False}, "false", FAIL, "metadatas/public"),
    ({}, "true", FAIL, '"project_name":"theater-msa"'),
])
def test_registry(tmp_path: Path, projects: dict, pull_secret: str, status: str, fix_has: str | None) -> None:
    with LiveServer(harbor_app(projects)) as harbor:
        report = run(tmp_path, harbor.url, imagePullSecret=pull_secret)
    item = report.get("registry")
    assert item.status == status, item
    if fix_has:
        assert any(fix_has in f for f in item.fix), item.fix


def test_a_registry_that_does_not_answer(tmp_path: Path) -> None:
    item = run(tmp_path, "http://127.0.0.1:9").get("registry")
    assert item.status == FAIL and "연결할 수 없습니다" in item.detail and item.blocking


def test_dns_and_what_skips_without_clusters(tmp_path: Path) -> None:
    with LiveServer(harbor_app({"theater-msa": True})) as harbor:
        # RFC 6761: .invalid never resolves; the system resolver answers that.
        report = run(tmp_path, harbor.url, resolver=None, domain="theater-doctor.invalid")
        resolved = run(tmp_path, harbor.url, resolver=lambda host: ["192.0.2.11"] if host == "theater.x.example" else [],
                       domain="x.example")
    dns = report.get("dns")
    assert dns.status == FAIL and not dns.blocking and "nslookup theater.theater-doctor.invalid" in dns.fix
    assert resolved.get("dns").status == PASS and "192.0.2.11" in resolved.get("dns").detail
    assert report.get("kubeconfig").status == FAIL
    assert report.get("nodes.ctx1").status == SKIP and report.get("root-ca").status == SKIP
    assert report.get("pulumi").status == FAIL  # /bin/false version
    assert report.exit_code == 1


def test_settings_come_from_the_stack_files_and_set(tmp_path: Path) -> None:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    (tmp_path / "Pulumi.ctx1.yaml").write_text("config:\n  theater-msa:domain: 10.0.0.1.nip.io\n"
                                               "  theater-msa:harborPassword:\n    secure: AAAB\n")
    s = stack.read("ctx1", tmp_path)
    assert (s.domain, s.kube_context, s.cluster) == ("10.0.0.1.nip.io", "ctx1", "ctx1")
    assert s.ingress_service_account == ("istio-system", "*")  # Pulumi.yaml's default: any SA of the namespace
    assert s.istio_api_version == "v1beta1"
    assert "harborPassword" not in s.values  # secrets are never read
    assert stack.read("ctx1", tmp_path, {"theater-msa:domain": "b.example"}).host == "theater.b.example"
    with pytest.raises(stack.StackError, match="ingressServiceAccount must look like namespace/name"):
        _ = stack.read("ctx1", tmp_path, {"ingressServiceAccount": "nameonly"}).ingress_service_account


def test_the_istio_kinds_doctor_requires_are_the_ones_the_program_declares() -> None:
    from infra.istio import typed

    declared: dict[str, set[str]] = {}
    for cls in (typed.VirtualService, typed.DestinationRule, typed.PeerAuthentication, typed.AuthorizationPolicy):
        kind = cls.KIND.lower()
        declared.setdefault(cls.GROUP, set()).add(kind[:-1] + "ies" if kind.endswith("y") else kind + "s")
    assert declared == {g: set(k) for g, k in doctor.ISTIO_KINDS.items()}


def test_image_tags() -> None:
    assert doctor.image_tag("docker.io/istio/pilot:1.28.0") == "1.28.0"
    assert doctor.image_tag("registry:5000/istio/pilot:1.20.0") == "1.20.0"
    assert doctor.image_tag("registry:5000/istio/pilot@sha256:" + "a" * 64) == "sha256:aaaaaaaaaaaa"
    assert doctor.image_tag("registry:5000/istio/pilot") is None


def test_gateway_hosts() -> None:
    assert doctor.host_covers("*", "theater.a.b")
    assert doctor.host_covers("istio-system/theater.a.b", "theater.a.b")
    assert doctor.host_covers("*.a.b", "theater.a.b")
    assert not doctor.host_covers("*.c.d", "theater.a.b")
    assert not doctor.host_covers("other.a.b", "theater.a.b")


def test_table_and_exit_codes() -> None:
    report = Report("doctor", [passed("a", "노드 레이블", "좋음"), failed("b", "DNS", "안 풀림", "nslookup x", blocking=False)])
    assert report.exit_code == 0  # only a warning failed
    report.add(failed("c", "컨텍스트", "없음", ["kubectl config rename-context old ctx1"]))
    assert report.exit_code == 1
    lines = report.render().splitlines()
    rows = [line for line in lines if line[:1] in ("✓", "✗", "–") and "→" not in line]
    # The result column starts at the same terminal column on every row, Hangul counted as two.
    def width(text: str) -> int:  # terminal columns: East Asian wide characters take two
        return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)

    assert len({width(r[:r.index(t)]) for r, t in zip(rows, ("좋음", "안 풀림", "없음"), strict=True)}) == 1, rows
    assert "    고치기: kubectl config rename-context old ctx1" in report.render()
    assert "(경고)" in report.render()
    data = json.loads(report.to_json())
    assert data["exitCode"] == 1 and data["counts"] == {"pass": 1, "fail": 2, "skip": 0}
    assert data["results"][2]["fix"] == ["kubectl config rename-context old ctx1"]


def test_cli_json_and_bad_options(tmp_path: Path) -> None:
    done = subprocess.run([*theater_command(), "doctor", "--kubeconfig", str(tmp_path / "none"), "--json",
                           "--registry-url", "http://127.0.0.1:9", "--timeout", "2", "--set", "domain=d.invalid"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 1, done.stderr
    data = json.loads(done.stdout)
    assert data["command"] == "doctor" and data["context"]["host"] == "theater.d.invalid"
    assert {r["key"] for r in data["results"]} >= {"kubeconfig", "nodes.ctx1", "gateway", "ingress-sa", "root-ca", "dns",
                                                   "registry", "pulumi"}
    bad = subprocess.run([*theater_command(), "doctor", "--set", "nodomain"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "--set takes KEY=VALUE" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.parametrize("command", ["doctor", "verify"])
@pytest.mark.parametrize(("setting", "says"), [
    ("nope=1", ["theater-msa:nope is not a setting", "domain"]),                 # an unknown key, and the known ones
    ("domian=1.2.3.4.nip.io", ["theater-msa:domian is not a setting", "theater-msa:domain"]),  # a typo: the close match
    ("domain=bad_domain!", ["theater-msa:domain", "DNS name", "bad_domain!"]),   # a value the program would refuse
    ("replicas=two", ["theater-msa:replicas", "integer"]),
])
def test_set_refuses_what_pulumi_would_refuse(command: str, setting: str, says: list[str], tmp_path: Path) -> None:
    """`--set` is checked against the settings the program declares, with its
    own validation, before anything is contacted: exit 2, one message naming the key."""
    done = subprocess.run([*theater_command(), command, "--kubeconfig", str(tmp_path / "none"), "--timeout", "1",
                           "--set", setting], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2, (done.stdout, done.stderr)
    assert done.stdout == "" and "Traceback" not in done.stderr
    for text in says:
        assert text in done.stderr, done.stderr
    assert done.stderr.startswith(f"theater {command}: --set {setting}")


def test_set_accepts_every_valid_setting_the_docs_show(tmp_path: Path) -> None:
    s = stack.read("ctx2", ROOT, {"domain": "10.0.0.1.nip.io", "ingressServiceAccount": "istio-system/x",
                                  "theater-msa:replicas": "3", "faults": '{"movie-service":{"abort":503,"percent":20}}'})
    assert s.host == "theater.10.0.0.1.nip.io" and s.json_value("faults")["movie-service"]["abort"] == 503


def test_a_stack_without_its_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(stack.StackError, match=r"Pulumi\.ctx3\.yaml does not exist .*stacks: ctx1, ctx2"):
        stack.read("ctx3")


# ------------------------------------------------------------------ settings both stacks must share

def project(tmp_path: Path, ctx1: str = "", ctx2: str = "") -> Path:
    (tmp_path / "Pulumi.yaml").write_text((ROOT / "Pulumi.yaml").read_text())
    for name, extra in (("ctx1", ctx1), ("ctx2", ctx2)):
        (tmp_path / f"Pulumi.{name}.yaml").write_text(f"config:\n  theater-msa:kubeContext: {name}\n{extra}")
    return tmp_path


def test_lesson_settings_on_one_stack_only_fail_with_the_commands(tmp_path: Path) -> None:
    root = project(tmp_path, ctx1="  theater-msa:v2Cluster: ctx1\n  theater-msa:canary: '{\"v1\": 80, \"v2\": 20}'\n")
    options = doctor.Options(kubeconfig=str(tmp_path / "none"), project_dir=root, registry_url="http://127.0.0.1:9",
                             timeout=2, resolver=lambda host: [], pulumi="/bin/false")
    item = doctor.Doctor(options).run().get("lesson-settings")
    assert item.status == FAIL
    assert "theater-msa:v2Cluster: ctx1=ctx1, ctx2=(없음/unset)" in item.detail
    assert "pulumi config set theater-msa:v2Cluster ctx1 --stack ctx2" in item.fix
    assert """pulumi config set theater-msa:canary '{"v1": 80, "v2": 20}' --stack ctx2""" in item.fix
    (tmp_path / "same").mkdir()
    same = project(tmp_path / "same", ctx1="  theater-msa:failover: 'true'\n", ctx2="  theater-msa:failover: true\n")
    options = doctor.Options(kubeconfig=str(tmp_path / "none"), project_dir=same, registry_url="http://127.0.0.1:9",
                             timeout=2, resolver=lambda host: [], pulumi="/bin/false")
    item = doctor.Doctor(options).run().get("lesson-settings")
    assert item.status == PASS and "failover" in item.detail


def istiod(env: list[dict] | None) -> dict:
    container = {"name": "discovery", "image": "docker.io/istio/pilot:1.24.0", **({"env": env} if env is not None else {})}
    return {"spec": {"template": {"spec": {"containers": [container]}}}}


def test_the_cluster_id_is_read_from_istiod() -> None:
    """Istio's multicluster docs install with clusterName cluster1/cluster2: the
    remote secrets then carry those IDs, not the stack names."""
    assert doctor.istiod_cluster_id(istiod([{"name": "REVISION", "value": "default"},
                                            {"name": "CLUSTER_ID", "value": "cluster2"}])) == "cluster2"
    assert doctor.istiod_cluster_id(istiod([{"name": "REVISION", "value": "default"}])) is None
    assert doctor.istiod_cluster_id(istiod(None)) is None
    secret = {"metadata": {"name": "istio-remote-secret-cluster2", "annotations": {"networking.istio.io/cluster": "cluster2"}},
              "data": {"cluster2": "a3ViZWNvbmZpZw=="}}
    assert doctor.remote_secret_ids([secret]) == {"cluster2"}


def test_remote_secrets_are_checked_against_the_peer_istiod_id(tmp_path: Path) -> None:
    """The old check compared with the stack name: a docs install (cluster2) got a
    false ✗ and a fix (--name=ctx2) that registers the cluster a second time."""
    root = project(tmp_path)
    d = doctor.Doctor(doctor.Options(project_dir=root))
    d.stacks = {name: stack.read(name, root) for name in ("ctx1", "ctx2")}
    d.cluster_ids = {"ctx1": "cluster1", "ctx2": "cluster2"}

    class Secrets:  # ctx1's istio/multiCluster=true Secrets, as the API server lists them
        name, context = "ctx1", "ctx1"

        def __init__(self, items: list[dict]) -> None:
            self.listed = items

        def items(self, path: str, **params: str) -> list[dict]:
            assert path == "/api/v1/namespaces/istio-system/secrets" and params == {"labelSelector": "istio/multiCluster=true"}
            return self.listed

    good = {"metadata": {"name": "istio-remote-secret-cluster2", "annotations": {"networking.istio.io/cluster": "cluster2"}}}
    result = d.remote_secrets(Secrets([good]))
    assert result.status == PASS and "ctx2=cluster2 (ctx2 istiod 의 CLUSTER_ID)" in result.detail
    by_stack_name = {"metadata": {"name": "istio-remote-secret-ctx2", "annotations": {"networking.istio.io/cluster": "ctx2"}}}
    result = d.remote_secrets(Secrets([by_stack_name]))
    assert result.status == FAIL
    assert result.fix[0] == "istioctl create-remote-secret --context=ctx2 --name=cluster2 | kubectl apply --context=ctx1 -f -"
    assert any("delete secret istio-remote-secret-ctx2" in f for f in result.fix)
    # istiod not read: the stack's name is assumed, and said so.
    d.cluster_ids = {}
    result = d.remote_secrets(Secrets([by_stack_name]))
    assert result.status == PASS and "스택 이름으로 가정" in result.detail
