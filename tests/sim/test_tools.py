"""sim/tools.py's build recipes for every tool sim/versions.toml pins (no Go run here)."""

from __future__ import annotations

from sim import tools


def test_every_pinned_tool_has_packages_and_ldflags() -> None:
    for tool in tools.load_versions().values():
        assert tools._ldflags(tool).startswith("-s -w"), tool.name
        if tool.name != "pulumi-kubernetes":  # built in its own module copy
            assert tools._packages(tool), tool.name


def test_the_real_nodes_binaries_come_from_the_control_planes_module() -> None:
    versions = tools.load_versions()
    kube = versions["kubernetes"]
    assert {"kubelet", "kube-proxy"} <= set(kube.binaries)
    assert "k8s.io/kubernetes/cmd/kubelet" in tools._packages(kube)
    coredns = versions["coredns"]
    assert coredns.module == "github.com/coredns/coredns" and coredns.version == "v1.15.0"
    main = tools._coredns_main(tools._packages(coredns))
    assert '"github.com/coredns/coredns/coremain"' in main and "coremain.Run()" in main
    assert '_ "github.com/coredns/coredns/plugin/kubernetes"' in main
    assert set(tools.locate(versions)) >= {"kubelet", "kube-proxy", "coredns"}
