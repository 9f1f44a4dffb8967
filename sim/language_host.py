"""`pulumi-language-python` for machines that build Pulumi from Go modules.

The Go module proxy does not serve Pulumi's Python language host
(github.com/pulumi/pulumi/sdk/python/cmd/pulumi-language-python/v3), so
`theater tools build` cannot build it. This launcher serves the language
runtime that the Python SDK itself ships for Automation API inline programs
(`pulumi.automation._server.LanguageServer`): Pulumi's own code runs the
program, connects to the engine's resource monitor and reports errors. This
module only adds the plugin handshake (print the port, serve until killed) and
loads `main:` of Pulumi.yaml as the program.

What the official host does and this one does not: it does not run
`uv sync` before each run (run `uv sync` yourself) and it does not list
required plugins ahead of time (the engine loads the provider when the program
registers it). With an official Pulumi install, its own host is used instead.
"""

from __future__ import annotations

import os
import runpy
import signal
import sys
import threading
from concurrent import futures
from pathlib import Path

import grpc
from pulumi.automation._server import LanguageServer
from pulumi.runtime.proto import language_pb2, plugin_pb2
from pulumi.runtime.proto.language_pb2_grpc import add_LanguageRuntimeServicer_to_server

HOST_VERSION = "3.272.0-theater"


def _program_path(request) -> Path:
    info = request.info
    if info and info.program_directory:
        return Path(info.program_directory) / (info.entry_point or ".")
    return Path(request.pwd or os.getcwd()) / (request.program or ".")


class ProgramHost(LanguageServer):
    """LanguageServer whose program is the project's `main:` (run like `python infra/`)."""

    def __init__(self) -> None:
        super().__init__(program=self._run_program)
        self._path: Path | None = None

    def _run_program(self) -> None:
        assert self._path is not None
        runpy.run_path(str(self._path), run_name="__main__")

    def Run(self, request, context):  # noqa: N802 (gRPC method name)
        self._path = _program_path(request)
        if request.pwd:
            os.chdir(request.pwd)
        root = str(Path(request.pwd or os.getcwd()))
        if root not in sys.path:
            sys.path.insert(0, root)
        return super().Run(request, context)

    def Handshake(self, request, context):  # noqa: N802
        return language_pb2.LanguageHandshakeResponse()

    def GetPluginInfo(self, request, context):  # noqa: N802
        return plugin_pb2.PluginInfo(version=HOST_VERSION)

    def InstallDependencies(self, request, context):  # noqa: N802
        return iter(())

    def GetProgramDependencies(self, request, context):  # noqa: N802
        return language_pb2.GetProgramDependenciesResponse()

    def RuntimeOptionsPrompts(self, request, context):  # noqa: N802
        return language_pb2.RuntimeOptionsResponse()


def main(argv: list[str] | None = None) -> int:
    server = grpc.server(
        futures.ThreadPoolExecutor(max_workers=4),
        options=[("grpc.max_receive_message_length", 400 * 1024 * 1024)],
    )
    add_LanguageRuntimeServicer_to_server(ProgramHost(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    # The engine ends a plugin with SIGINT (SIGKILL later): that is the normal
    # end of every run, not an error. Left to Python's default handler it raised
    # KeyboardInterrupt in wait_for_termination, and its traceback appeared in
    # the diagnostics of every `pulumi up`.
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda signum, frame: stop.set())
    server.start()
    print(port, flush=True)  # the plugin handshake: the engine reads our port from stdout
    stop.wait()
    server.stop(grace=1).wait(5)
    return 0


if __name__ == "__main__":
    sys.exit(main())
