"""Prefect environment defaults for adop, applied before Prefect is imported.

- No telemetry: ``DO_NOT_TRACK=1`` stops the client SDK analytics and ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` the
  server heartbeat; with both set, a run talks only to its own server.
- No server configured means Prefect's local ephemeral mode; the first start of its server on a fresh Prefect home
  (database migrations) can take longer than Prefect's 20 s default limit on a small machine, so the limit is raised.
- Library loggers (``adop.*``) are forwarded into the run logs; outside a run they log locally, without a warning.
Values the user already set win.
"""

from __future__ import annotations

import logging
import os

DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180",
    "PREFECT_UI_ENABLED": "false",
    "PREFECT_LOGGING_EXTRA_LOGGERS": "adop",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",
}


def configure_prefect_environment() -> None:
    """Set every default the user has not set (child processes inherit them even if Prefect is already imported)."""
    for name, value in DEFAULTS.items():
        os.environ.setdefault(name, value)


def configure_library_logging() -> None:
    """adop's own loggers at INFO in a flow run: Prefect attaches its run-log and console handlers to the ``adop``
    logger (``PREFECT_LOGGING_EXTRA_LOGGERS``) but leaves its level to the root logger's WARNING, which drops every
    progress line (SfM registration, training steps) before it reaches the run log or the worker's output."""
    library = logging.getLogger("adop")
    if library.getEffectiveLevel() > logging.INFO:
        library.setLevel(logging.INFO)
