"""A process that imported pycolmap (through adop) stops on SIGTERM like any Python process: no C++ stack dump."""

from __future__ import annotations

import signal
import subprocess
import sys
import time


def test_sigterm_after_importing_pycolmap_is_a_clean_stop() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "import adop.reconstruct, time\nprint('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert child.stdout.readline().strip() == "ready"
    time.sleep(0.2)
    child.send_signal(signal.SIGTERM)
    _, stderr = child.communicate(timeout=30)
    assert child.returncode == -signal.SIGTERM
    assert "SIGTERM" not in stderr and "stack trace" not in stderr, stderr[-2000:]
