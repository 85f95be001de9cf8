"""The capture_to_deliverable flow, run as a user runs it (`adop run`, Prefect in local ephemeral mode)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from imaging import write_capture

pytestmark = [pytest.mark.flow, pytest.mark.slow]


@pytest.fixture(scope="module")
def prefect_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("PREFECT_API_URL", None)  # local ephemeral mode, as on a machine with no server
    env["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    return env


def adop_run(capture: Path, workspace: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "adop.cli", "run", str(capture), "--workspace", str(workspace), "--stop-after", "ingest", *extra],
        env=env, capture_output=True, text=True, timeout=600,
    )


def stage_line(output: str, stage: str) -> str:
    return next(line for line in output.splitlines() if line.strip().startswith(f"{stage}:"))


def test_second_run_is_cached_and_damage_is_repaired(tmp_path: Path, prefect_env: dict[str, str]) -> None:
    capture = write_capture(tmp_path / "capture" / "images", count=4).parent
    workspace = tmp_path / "ws"
    first = adop_run(capture, workspace, prefect_env)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "Completed" in stage_line(first.stdout, "ingest")
    artifact = Path(stage_line(first.stdout, "ingest").split()[-1])
    assert (artifact / "capture.json").is_file() and len(list((artifact / "images").iterdir())) == 4

    second = adop_run(capture, workspace, prefect_env)
    assert second.returncode == 0, second.stderr[-3000:]
    assert "Cached" in stage_line(second.stdout, "ingest")
    assert "Finished in state Cached" in second.stderr  # visible in Prefect's run log too

    shutil.rmtree(artifact)  # Prefect still has a cached record pointing at it
    third = adop_run(capture, workspace, prefect_env)
    assert third.returncode == 0, third.stderr[-3000:]
    assert "missing or damaged artifact in this workspace; rebuilding" in third.stderr
    assert (artifact / "capture.json").is_file()


def test_too_few_good_photos_fails_with_one_clear_line(tmp_path: Path, prefect_env: dict[str, str]) -> None:
    capture = write_capture(tmp_path / "cap", count=2)
    (capture / "broken.jpg").write_bytes(b"definitely not a jpeg")
    result = adop_run(capture, tmp_path / "ws", prefect_env)
    assert result.returncode == 2
    last = result.stderr.strip().splitlines()[-1]
    assert "only 2 usable photo(s) (skipped: broken.jpg)" in " ".join(result.stderr.split())
    assert "Traceback" not in result.stderr, last
