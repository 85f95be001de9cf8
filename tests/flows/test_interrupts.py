"""Ctrl-C (SIGINT to the whole process group, as a terminal sends it) and SIGTERM during `adop run`: the run stops
within seconds with one line and exit 130 / 143, Prefect's temporary server does not outlive it, and the same command
resumes with the finished stages cached."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flow, pytest.mark.slow]


def _processes_with_home(home: str) -> list[int]:
    """PIDs of live processes whose environment names this Prefect home (the run and its temporary server)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes()
            state = next(line for line in (entry / "status").read_text().splitlines() if line.startswith("State:"))
        except (OSError, StopIteration):
            continue
        if f"PREFECT_HOME={home}".encode() in environ.split(b"\0") and "zombie" not in state:
            found.append(int(entry.name))
    return found


class _Run:
    """``adop run`` in its own session (so that a signal to its group reaches only it and its children)."""

    def __init__(self, capture: Path, workspace: Path, env: dict[str, str]) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "adop.cli", "run", str(capture), "--workspace", str(workspace), "--max-steps",
             "5000", "--stop-after", "train"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
            start_new_session=True)
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 600) -> None:
        deadline = time.monotonic() + timeout
        while not any(text in line for line in self.lines):
            assert self.process.poll() is None, "".join(self.lines[-40:])
            assert time.monotonic() < deadline, "".join(self.lines[-40:])
            time.sleep(0.2)


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adop.synth import generate_capture_set

    out = tmp_path_factory.mktemp("interrupt") / "capture"
    generate_capture_set(out, preset="tiny", seed=5)
    return out


def test_ctrl_c_then_sigterm_stop_within_seconds_and_the_rerun_resumes(capture: Path, tmp_path: Path) -> None:
    home = str(tmp_path / "prefect-home")
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"} | {"PREFECT_HOME": home}
    workspace = tmp_path / "ws"

    first = _Run(capture, workspace, env)
    first.wait_for("rasterizer backend")  # training has started
    started = time.monotonic()
    os.killpg(first.process.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    assert first.process.wait(timeout=60) == 130
    time.sleep(0.5)
    assert time.monotonic() - started < 15, "Ctrl-C must stop the run within seconds"
    assert any("SIGINT received, stopping" in line for line in first.lines)
    assert "Traceback" not in "".join(first.lines)
    assert _processes_with_home(home) == [], "nothing of the run, its temporary server included, may outlive it"
    finished = [p for p in (workspace / "artifacts").glob("*/*") if not p.name.startswith(".")]
    assert finished and all((p / "manifest.json").is_file() for p in finished), "only complete artifacts are in place"

    second = _Run(capture, workspace, env)
    second.wait_for("rasterizer backend")
    text = "".join(second.lines)
    for stage in ("ingest", "sfm", "dense", "scene"):
        assert f"stage {stage}: Cached" in text, f"{stage} was not reused after the interrupt"
    started = time.monotonic()
    second.process.send_signal(signal.SIGTERM)  # a scheduler stopping the job: the run alone gets the signal
    assert second.process.wait(timeout=60) == 143
    time.sleep(1.0)
    assert time.monotonic() - started < 15
    assert any("SIGTERM received, stopping" in line for line in second.lines)
    assert _processes_with_home(home) == [], "SIGTERM must not leave the temporary server behind"
