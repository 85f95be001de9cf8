"""Prefect environment defaults for adop, applied before Prefect is imported.

- No telemetry: ``DO_NOT_TRACK=1`` stops the client SDK analytics and ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` the
  server heartbeat (shared prefect-notes §1.3: with both, only loopback connections were seen).
- No server configured means Prefect's local ephemeral mode; its first start on a fresh Prefect home took 39 s here,
  past Prefect's 20 s default limit, so the limit is raised.
- Library loggers (``adop.*``) are forwarded into the run logs.
Values the user already set win.
"""

from __future__ import annotations

import os
import sys

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "adop",
}


def configure_prefect_environment() -> None:
    if "prefect" in sys.modules:
        # Too late for settings read at import; still set them for child processes.
        pass
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)
