"""Ctrl-C and SIGTERM during a run: one line, the temporary Prefect server stopped, exit 130 / 143, resumable.

Ctrl-C in a terminal signals the whole foreground process group, so the temporary server of Prefect's local
ephemeral mode (a child process) dies together with the run; Prefect's engine then keeps retrying to report the
interruption to the dead server for minutes. SIGTERM, sent to the run alone, leaves that server running as an orphan.
So in ephemeral mode the run stops itself: it stops the temporary server (and a COLMAP dense child, which would
otherwise keep the GPU) and exits at once, without reporting to a
server that is gone or only its own. Nothing is lost: artifacts are built in temporary folders and renamed into
place only when complete (a half-built one is removed by the next run), depth maps and training checkpoints are
written atomically, and the rerun resumes from them. With a configured Prefect server (a studio's), the signal is
raised as ``RunInterrupted`` instead, so Prefect records the flow run as crashed on that server before the command
exits with the same status.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from adop.dense.colmap_mvs import stop_running as stop_colmap

EXIT_STATUS = {signal.SIGINT: 130, signal.SIGTERM: 143}
"""The shell's convention: 128 + the signal number."""


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT or SIGTERM (a ``KeyboardInterrupt``, so Prefect treats it as an interruption)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.exit_status = EXIT_STATUS.get(signal.Signals(signum), 128 + signum)


def _uses_temporary_server() -> bool:
    from prefect.settings import get_current_settings

    return not get_current_settings().api.url


def stop_temporary_servers() -> None:
    """Stop every temporary Prefect server this process started (terminate, then kill after 5 s)."""
    from prefect.server.api.server import SubprocessASGIServer

    for server in list(getattr(SubprocessASGIServer, "_instances", {}).values()):
        with contextlib.suppress(Exception):
            server.stop()


@contextlib.contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT and SIGTERM stop the run as described in the module docstring."""
    temporary = _uses_temporary_server()

    def handle(signum: int, frame: FrameType | None) -> None:
        name = signal.Signals(signum).name
        sys.stderr.write(f"adop: {name} received, stopping; finished stages are kept and the same command resumes\n")
        if not temporary:
            raise RunInterrupted(signum)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stop_temporary_servers()
        stop_colmap()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(EXIT_STATUS.get(signal.Signals(signum), 128 + signum))

    previous = {sig: signal.signal(sig, handle) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
