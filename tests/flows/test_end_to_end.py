"""The whole job as a user runs it: `adop run` on the tiny synthetic capture set, through to the deliverables.

A short training (a few steps) keeps this in CI's budget; what is checked is the plumbing: every stage runs, a rerun
is all cached, and a new exposure rerenders (render + deliver) without retraining.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.flow, pytest.mark.slow]

STAGES = ("ingest", "sfm", "dense", "scene", "train", "path", "render", "deliver")


@pytest.fixture(scope="module")
def capture(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from adop.synth import generate_capture_set

    out = tmp_path_factory.mktemp("e2e") / "capture"
    generate_capture_set(out, preset="tiny", seed=3)
    return out


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    environment = dict(os.environ)
    environment.pop("PREFECT_API_URL", None)
    environment["PREFECT_HOME"] = str(tmp_path_factory.mktemp("prefect-home"))
    return environment


def adop_run(capture: Path, workspace: Path, env: dict[str, str], *extra: str,
             log: list[str] | None = None) -> dict[str, tuple[str, Path]]:
    """``adop run`` with a 4-step training and a 0.25 s path; each stage's state and artifact (the command's output
    appended to ``log``)."""
    result = subprocess.run(
        [sys.executable, "-m", "adop.cli", "run", str(capture), "--workspace", str(workspace),
         "--max-steps", "4", "--seconds", "0.25", "--fps", "24", *extra],
        env=env, capture_output=True, text=True, timeout=900,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    if log is not None:
        log.append(result.stdout + result.stderr)
    states = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.strip().partition(":")
        if name in STAGES:
            state, path = rest.split()
            states[name] = (state, Path(path))
    assert set(states) == set(STAGES), result.stdout
    return states


def _exr_size(path: Path) -> tuple[int, int]:
    from adop.images import read_image

    image = read_image(path, "float")
    return image.shape[1], image.shape[0]


@pytest.fixture(scope="module")
def first_run(capture: Path, env: dict[str, str],
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, tuple[str, Path]]]:
    """The first ``adop run`` of the capture set: its workspace and each stage's state and artifact."""
    workspace = tmp_path_factory.mktemp("e2e-run") / "ws"
    return workspace, adop_run(capture, workspace, env)


def test_capture_to_deliverables_then_cached_then_new_exposure(
    capture: Path, env: dict[str, str], first_run: tuple[Path, dict[str, tuple[str, Path]]]
) -> None:
    workspace, first = first_run
    assert all(state == "Completed" for state, _ in first.values()), first

    delivery = first["deliver"][1]
    manifest = json.loads((delivery / "delivery.json").read_text())
    listed = {Path(entry["path"]).name for entry in manifest["files"]}
    assert any(name.endswith(".mp4") for name in listed) and any(name.endswith(".mov") for name in listed)
    assert manifest["metrics"]["heldout_views"] >= 1 and manifest["metrics"]["heldout_psnr"] > 0
    exr = sorted((delivery / "exr").glob("*.exr"))
    png = sorted((delivery / "png").glob("*.png"))
    assert [p.name for p in exr][:2] == ["adop.1001.exr", "adop.1002.exr"] and len(exr) == len(png) == 6
    assert (first["scene"][1] / "quicklook.png").is_file()
    dense = json.loads((first["dense"][1] / "dense_report.json").read_text())
    assert dense["method"] == "ours" and not dense["fallback"] and dense["points"] > 50000
    scene_report = json.loads((first["scene"][1] / "reconstruction_report.json").read_text())
    assert scene_report["points_dense"] == dense["points"] and scene_report["points_final"] > 50000
    assert exr and _exr_size(exr[0]) == (320, 240), "deliverables are rendered at the photos' resolution"

    second = adop_run(capture, workspace, env)
    assert all(state == "Cached" for state, _ in second.values()), second

    third = adop_run(capture, workspace, env, "--ev", "9.5")
    assert [third[s][0] for s in ("ingest", "sfm", "dense", "scene", "train")] == ["Cached"] * 5
    assert third["render"][0] == "Completed" and third["deliver"][0] == "Completed"
    assert third["deliver"][1] != delivery


def _frame_bytes(delivery: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for kind in ("exr", "png") for p in sorted((delivery / kind).iterdir())}


def test_render_chunks_on_a_local_dask_cluster_are_the_serial_frames(
    capture: Path, env: dict[str, str], first_run: tuple[Path, dict[str, tuple[str, Path]]], tmp_path: Path
) -> None:
    """Three chunks of two frames, one after the other and on a real local Dask cluster of two worker processes
    (prefect-dask's DaskTaskRunner), from copies of one trained workspace: the same bytes, frame for frame."""
    for name in ("ws", "ws-dask"):
        shutil.copytree(first_run[0], tmp_path / name)
    serial = adop_run(capture, tmp_path / "ws", env, "--chunk-size", "2", "--render-runner", "serial")
    log: list[str] = []
    dask = adop_run(capture, tmp_path / "ws-dask", env, "--chunk-size", "2", "--render-runner", "dask",
                    "--render-workers", "2", log=log)
    assert "Creating a new Dask cluster" in log[0] and "Traceback" not in log[0], log[0][-3000:]
    assert serial["render"][0] == dask["render"][0] == "Completed" and dask["train"][0] == "Cached"
    frames = _frame_bytes(serial["deliver"][1])
    assert len(frames) == 12 and _frame_bytes(dask["deliver"][1]) == frames
