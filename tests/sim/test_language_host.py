"""sim/language_host.py as the Pulumi engine runs it: a plugin that prints its
port and is ended with SIGINT (or SIGTERM) when the run is over."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import grpc
import pytest
from pulumi.runtime.proto import plugin_pb2
from pulumi.runtime.proto.language_pb2_grpc import LanguageRuntimeStub
from google.protobuf import empty_pb2


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_ends_quietly_when_the_engine_stops_it(sig: signal.Signals) -> None:
    """Regression (issue 22): SIGINT raised KeyboardInterrupt in the gRPC wait, and
    its traceback appeared in every `pulumi up`'s diagnostics."""
    proc = subprocess.Popen([sys.executable, "-m", "sim.language_host"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        port = int(proc.stdout.readline().strip())
        # It serves the plugin API before it is stopped.
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            info = LanguageRuntimeStub(channel).GetPluginInfo(empty_pb2.Empty(), timeout=10)
        assert isinstance(info, plugin_pb2.PluginInfo) and info.version
        started = time.monotonic()
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=15)
    finally:
        proc.kill()
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 10
