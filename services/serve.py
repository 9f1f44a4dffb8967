"""Run one service under uvicorn: `python -m services.serve [SERVICE]`.

The container images and `theater local` both start services this way.
SERVICE defaults to $SERVICE_NAME; the port to $PORT, else the catalog's.
"""

from __future__ import annotations

import os
import sys
from typing import Any

import uvicorn

from services import catalog


def uvicorn_options(spec: catalog.ServiceSpec) -> dict[str, Any]:
    """The keyword arguments for `uvicorn.run` that every service gets (all
    but the app): host and port (from $HOST, $PORT, else the catalog's port),
    logging from $LOG_LEVEL / $ACCESS_LOG, proxy headers, graceful shutdown.
    bench/baseline_app.py serves its baselines with the same options."""
    return {
        "host": os.environ.get("HOST", "0.0.0.0"),
        "port": int(os.environ.get("PORT", spec.port)),
        "log_level": os.environ.get("LOG_LEVEL", "info"),
        "access_log": os.environ.get("ACCESS_LOG", "0") == "1",
        "proxy_headers": True,
        "timeout_graceful_shutdown": 5,
    }


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    name = args[0] if args else os.environ.get("SERVICE_NAME", "")
    if name not in catalog.SERVICES:
        sys.exit(f"usage: python -m services.serve SERVICE  (one of: {', '.join(catalog.SERVICES)})")
    spec = catalog.SERVICES[name]
    os.environ["SERVICE_NAME"] = name
    uvicorn.run(f"{spec.module}:create_app", factory=True, **uvicorn_options(spec))

if __name__ == "__main__":
    main()
