"""`theater render`: one YAML per declared object, real manifests."""

from __future__ import annotations

import os
import subprocess
import sys

import yaml

from infra import render


def test_render_writes_one_file_per_object(tmp_path, ui_dir, run_stack, capsys):
    out = tmp_path / "ctx1"
    paths = render.render("ctx1", out, {}, ui_dir=ui_dir)
    expected = run_stack("ctx1").objects
    assert len(paths) == len(expected) == len(list(out.glob("*.yaml")))
    docs = [yaml.safe_load(p.read_text()) for p in paths]
    assert all(set(d) >= {"apiVersion", "kind", "metadata"} for d in docs)
    kinds = {d["kind"] for d in docs}
    assert {"Namespace", "Deployment", "Service", "VirtualService", "AuthorizationPolicy"} <= kinds
    vs = next(d for d in docs if d["kind"] == "VirtualService" and d["metadata"]["namespace"] == "istio-system")
    assert vs["spec"]["gateways"] == ["istio-system/cp-gateway"]
    # the namespace sorts first so `kubectl apply -f DIR` creates it before the rest
    assert sorted(p.name for p in paths)[0].startswith("00-namespace")
    said = capsys.readouterr().out
    assert "objects for stack ctx1" in said and "images (fake digests): user-service, api-gateway" in said
    render.render("ctx1", out, {"buildImages": "false"}, ui_dir=ui_dir)
    assert "images (pre-pushed): user-service, api-gateway" in capsys.readouterr().out


def test_render_is_repeatable_byte_for_byte(tmp_path):
    """Two separate `theater render` runs (different hash seeds, as two
    shells would have) write the same files, so a user can diff renders."""
    outs = []
    for seed in ("1", "2"):
        out = tmp_path / seed
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-m", "services.cli", "render", "--stack", "ctx2", "--out", str(out), "--quiet"],
                       check=True, env=env, capture_output=True, timeout=120)
        outs.append({p.name: p.read_bytes() for p in sorted(out.glob("*.yaml"))})
    assert outs[0] and outs[0] == outs[1]
    doc = next(iter(outs[0].values())).decode()
    assert doc.startswith("apiVersion:") and doc.splitlines()[2].startswith("metadata:")


def test_render_main_config_override_and_errors(tmp_path, ui_dir, monkeypatch, capsys):
    from infra import mockrun

    real = mockrun.run
    monkeypatch.setattr(mockrun, "run", lambda *a, **kw: real(*a, ui_dir=ui_dir, **kw))
    assert render.main(["--stack", "ctx2", "--out", str(tmp_path), "--quiet",
                        "--set", "redisStorageClass=local-path"]) == 0
    assert (tmp_path / "08-persistentvolumeclaim-theater-msa-redis-data.yaml").exists()
    assert capsys.readouterr().err == ""
    assert render.main(["--stack", "ctx2", "--out", str(tmp_path), "--set", "placement={\"x\": \"ctx1\"}"]) == 2
    err = capsys.readouterr().err
    assert "theater-msa:placement" in err and "Traceback" not in err


def test_render_config_is_a_deprecated_alias_of_set(tmp_path, ui_dir, monkeypatch, capsys):
    """doctor, verify and load take --set; render takes it too and still
    accepts its old --config, saying so once."""
    from infra import mockrun

    real = mockrun.run
    monkeypatch.setattr(mockrun, "run", lambda *a, **kw: real(*a, ui_dir=ui_dir, **kw))
    assert render.main(["--stack", "ctx2", "--out", str(tmp_path), "--quiet",
                        "--config", "redisStorageClass=local-path", "--set", "replicas=3"]) == 0
    assert (tmp_path / "08-persistentvolumeclaim-theater-msa-redis-data.yaml").exists()
    deployment = yaml.safe_load((tmp_path / "10-deployment-theater-msa-movie-service.yaml").read_text())
    assert deployment["spec"]["replicas"] == 3
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--config" in err[0] and "--set" in err[0], err  # one deprecation line


def test_render_without_out_writes_rendered_stack(tmp_path, ui_dir, monkeypatch, capsys):
    """`theater render --stack ctx1` with no --out: ./rendered/ctx1, the path README shows, said in the output."""
    from infra import mockrun

    real = mockrun.run
    monkeypatch.setattr(mockrun, "run", lambda *a, **kw: real(*a, ui_dir=ui_dir, **kw))
    monkeypatch.chdir(tmp_path)
    assert render.main(["--stack", "ctx1"]) == 0
    written = list((tmp_path / "rendered" / "ctx1").glob("*.yaml"))
    assert written and any(p.name.startswith("00-namespace") for p in written)
    assert "rendered/ctx1" in capsys.readouterr().out


def test_render_unknown_stack_names_the_missing_file(tmp_path, capsys):
    """`theater render --stack ctx3`: no Pulumi.ctx3.yaml. The error says so
    and lists the stacks that exist, instead of complaining about a setting."""
    assert render.main(["--stack", "ctx3", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "Pulumi.ctx3.yaml does not exist" in err
    assert "ctx1, ctx2" in err
    assert "theater-msa:domain" not in err
    assert not (tmp_path / "out").exists()


def test_render_unknown_stack_via_the_theater_command(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "services.cli", "render", "--stack", "ctx3", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert "Pulumi.ctx3.yaml does not exist" in proc.stderr and "ctx1, ctx2" in proc.stderr
