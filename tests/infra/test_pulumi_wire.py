"""infra/pulumi_wire.py holds the one private detail of the Pulumi SDK that
the mocks rely on. When an SDK upgrade changes it, this test names the
problem (and every other infra test can still be read)."""

from __future__ import annotations

from pathlib import Path

from infra import mockrun, pulumi_wire

SECRET_PROGRAM = """
import pulumi
import pulumi_kubernetes as k8s

provider = k8s.Provider("k8s-ctx1", context="ctx1")
k8s.core.v1.Secret("s", string_data={"token": pulumi.Output.secret("hidden")},
                   opts=pulumi.ResourceOptions(provider=provider))
pulumi.export("plain", "shown")
pulumi.export("secret", pulumi.Output.secret("also-hidden"))
"""


def test_secret_wire_format_matches_the_installed_sdk():
    from pulumi.runtime import rpc

    assert pulumi_wire.SIG_KEY == rpc._special_sig_key, "Pulumi changed its signature key: update infra/pulumi_wire.py"
    assert pulumi_wire.SECRET_SIG == rpc._special_secret_sig, "Pulumi changed its secret signature: update infra/pulumi_wire.py"


def test_a_secret_input_reaches_the_mocks_wrapped_and_is_revealed(tmp_path: Path):
    program = tmp_path / "secret.py"
    program.write_text(SECRET_PROGRAM)
    run = mockrun.run("ctx1", program=program)
    (secret,) = run.of_type("kubernetes:core/v1:Secret")
    assert pulumi_wire.is_secret(secret.inputs["stringData"])
    assert secret.manifest["stringData"] == {"token": "hidden"}
    assert run.outputs == {"plain": "shown", "secret": "also-hidden"}
