"""SfM on real photos with known cameras: Herz-Jesu-P8 (tests/data/herzjesu_p8, 1536x1024 copies, no EXIF focal).

The kept model must agree with the benchmark's cameras: pairwise relative rotations (no alignment needed) within
0.1 deg at the median and 0.3 deg at the 90th percentile, camera centres within 0.1 % of the scene after a similarity
fit, focal length within 1 %, and the model check's verdict in the report.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adop.reconstruct import CleanupConfig, SceneReport, SfmConfig, reconstruct
from adop.reconstruct.accuracy import pose_accuracy
from adop.reconstruct.build import SUMMARY_FILE
from adop.reconstruct.sfm import SFM_REPORT_FILE
from adop.scene import load_scene
from adop.scene.strecha import read_strecha_cameras

HERZJESU = Path(__file__).resolve().parents[1] / "data" / "herzjesu_p8"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def herzjesu(tmp_path_factory: pytest.TempPathFactory) -> SceneReport:
    out = tmp_path_factory.mktemp("herzjesu") / "scene"
    return reconstruct(HERZJESU / "images", out, SfmConfig(num_threads=2), CleanupConfig())


def test_the_kept_model_matches_the_known_cameras(herzjesu: SceneReport) -> None:
    truth = read_strecha_cameras(HERZJESU / "cameras")
    accuracy = pose_accuracy(load_scene(herzjesu.scene_dir), truth)
    assert accuracy.frames_compared == 8
    assert accuracy.median_pairwise_rotation_deg <= 0.1 and accuracy.p90_pairwise_rotation_deg <= 0.3
    assert accuracy.median_center_error_relative <= 0.001
    assert accuracy.focal_ratio == pytest.approx(1.0, abs=0.01)


def test_the_verdict_and_the_mapper_choice_are_reported(herzjesu: SceneReport) -> None:
    sfm = json.loads((herzjesu.scene_dir / "sfm" / SFM_REPORT_FILE).read_text())
    assert sfm == herzjesu.sfm
    check = sfm["check"]
    assert check["consistent"] and check["agreement"] >= 0.9 and check["cameras_without_focal_prior"] == 1
    assert [a["mapper"] for a in sfm["attempts"]] == ["global", "incremental"]  # 8 photos: both mappers ran
    summary = (herzjesu.scene_dir / SUMMARY_FILE).read_text()
    assert "check:    consistent" in summary and "had no EXIF focal length" in summary


def test_dense_stereo_covers_the_photos_of_a_real_facade(herzjesu: SceneReport) -> None:
    dense = herzjesu.dense
    assert dense is not None and dense["method"] == "ours" and not dense["fallback"]
    assert dense["views_used"] == 8 and not dense["skipped"]
    assert herzjesu.points_dense == dense["points"] > 20 * herzjesu.points_sfm
    coverage = sorted(dense["coverage"].values())
    assert coverage[len(coverage) // 2] > 0.3, coverage
    assert "dense:    ours on cpu at 1000×667" in (herzjesu.scene_dir / SUMMARY_FILE).read_text()
    assert not (herzjesu.scene_dir / ".depth_maps").exists(), "the depth maps are not shipped with the scene"


def test_densify_a_finished_scene_from_the_command_line(herzjesu: SceneReport, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from adop.cli import app

    out = tmp_path / "dense_scene"
    result = CliRunner().invoke(app, ["densify", str(herzjesu.scene_dir), "--out", str(out), "--dense-size", "400"])
    assert result.exit_code == 0, result.output
    assert "dense:    ours on cpu at 400×267" in result.output
    assert (out / "dense" / "fused.ply").is_file() and (out / "scene.json").is_file()
    assert len(load_scene(out).points) > 5 * herzjesu.points_sfm
    assert (herzjesu.scene_dir / "scene.json").is_file(), "the source scene is only read"
