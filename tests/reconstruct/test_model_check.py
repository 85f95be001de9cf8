"""The independent model check and the mapper policy: right models pass, wrong ones are caught, none is delivered.

The check is tested on real SfM output of the synthetic `tiny` set and on copies of it made wrong on purpose (cameras
turned, cameras collapsed onto one spot), because a wrong model from a real mapper is not reproducible on demand.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pycolmap
import pytest
from scipy.spatial import cKDTree
from scipy.spatial.transform import Rotation

from adop.reconstruct import CleanupConfig, SfmConfig, SfmFailure, build_scene, run_sfm
from adop.reconstruct.check import check_model
from adop.reconstruct.preprocess import extent
from adop.reconstruct.colmap_calls import Attempt
from adop.reconstruct.sfm import DATABASE_FILE, MODEL_DIR, SFM_REPORT_FILE, Candidate


@pytest.fixture(scope="module")
def tiny_sfm(tiny_images: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("check") / "sfm"
    run_sfm(tiny_images, out, SfmConfig(num_threads=2))
    return out


def _model(sfm: Path) -> pycolmap.Reconstruction:
    return pycolmap.Reconstruction(str(sfm / MODEL_DIR))


def _turn_cameras(model: pycolmap.Reconstruction, degrees: float, every: int = 2) -> list[str]:
    """Turn every ``every``-th camera (world→camera rotation and translation) by ``degrees``; return their names."""
    turned = []
    axis = np.array([0.3, 1.0, 0.2]) / np.linalg.norm([0.3, 1.0, 0.2])
    turn = Rotation.from_rotvec(np.radians(degrees) * axis).as_matrix()
    for k, image_id in enumerate(sorted(model.reg_image_ids())):
        if k % every == every // 2:
            image = model.image(image_id)
            frame = model.frame(image.frame_id)
            pose = frame.rig_from_world
            frame.rig_from_world = pycolmap.Rigid3d(pycolmap.Rotation3d(turn @ pose.rotation.matrix()),
                                                    turn @ pose.translation)
            turned.append(image.name)
    return turned


def test_a_right_model_passes_and_the_report_says_why(tiny_sfm: Path) -> None:
    report = json.loads((tiny_sfm / SFM_REPORT_FILE).read_text())
    check = report["check"]
    assert check["consistent"] and not check["reasons"]
    assert check["pairs_checked"] >= 20 and check["agreement"] >= 0.9 and check["median_disagreement_deg"] < 1.0
    assert check["collapsed_cameras"] == 0 and check["explained_matches"] > 0.3
    # 24 images: small enough that the policy also ran the incremental mapper and compared the two
    assert [a["mapper"] for a in report["attempts"]] == ["global", "incremental"]
    assert report["mapper_reason"].startswith(f"kept {report['mapper']} (24/24 registered, consistent")


def test_the_check_catches_turned_cameras(tiny_sfm: Path) -> None:
    model = _model(tiny_sfm)
    _turn_cameras(model, 10.0)
    check = check_model(model, tiny_sfm / DATABASE_FILE)
    assert not check.consistent and "agree with the model's relative rotations" in check.reasons[0]
    assert check.median_disagreement_deg > 5.0


def test_the_check_names_the_cameras_it_contradicts(tiny_sfm: Path) -> None:
    model = _model(tiny_sfm)
    turned = _turn_cameras(model, 10.0, every=6)  # 4 of 24, none next to another
    check = check_model(model, tiny_sfm / DATABASE_FILE)
    assert set(check.inconsistent_images) == set(turned)


def test_the_check_catches_collapsed_cameras(tiny_sfm: Path) -> None:
    model = _model(tiny_sfm)
    ids = sorted(model.reg_image_ids())
    for image_id in ids[: len(ids) // 2]:  # half the cameras on one spot (a known global-positioning failure)
        frame = model.frame(model.image(image_id).frame_id)
        rotation = frame.rig_from_world.rotation
        frame.rig_from_world = pycolmap.Rigid3d(rotation, -(rotation.matrix() @ np.array([0.0, 0.0, 1.0])))
    check = check_model(model, tiny_sfm / DATABASE_FILE)
    assert check.collapsed_cameras >= len(ids) // 2 and not check.consistent
    assert any("sit on top of another camera" in reason for reason in check.reasons)


def test_the_policy_keeps_the_model_the_evidence_supports(tiny_sfm: Path) -> None:
    right = _model(tiny_sfm)
    wrong = _model(tiny_sfm)
    _turn_cameras(wrong, 10.0)
    database, config = tiny_sfm / DATABASE_FILE, SfmConfig()
    candidates = [Candidate(Attempt("exhaustive", "global", (24,)), [wrong], check_model(wrong, database, config)),
                  Candidate(Attempt("exhaustive", "incremental", (24,)), [right], check_model(right, database, config))]
    kept = max(candidates, key=lambda c: c.rank(24, config))
    assert kept.attempt.mapper == "incremental" and kept.models[0] is right


def test_no_consistent_model_stops_with_a_clear_failure(tiny_images: Path, tmp_path: Path) -> None:
    """Thresholds no model can meet stand in for a capture that no mapper gets right."""
    impossible = SfmConfig(num_threads=2, check_rotation_tolerance=1e-6, check_min_agreement=1.0)
    with pytest.raises(SfmFailure, match="SfM found no model that its own matches support") as caught:
        run_sfm(tiny_images, tmp_path / "sfm", impossible)
    assert "tried: global, incremental" in str(caught.value) and "What to do" in str(caught.value)
    assert not (tmp_path / "sfm" / SFM_REPORT_FILE).exists()  # nothing that looks finished
    assert caught.value.report["check"]["consistent"] is False


def test_retriangulation_adds_no_coincident_points(tiny_sfm: Path, tiny_images: Path, tmp_path: Path) -> None:
    report = json.loads((tiny_sfm / SFM_REPORT_FILE).read_text())
    assert report["num_points"] > report["points_mapped"] > 0  # retriangulation ran and added points
    positions = np.array([p.xyz for p in _model(tiny_sfm).points3D.values()])
    tolerance = CleanupConfig().duplicate_tolerance * extent(positions)  # the scene stage's tolerance
    pairs = cKDTree(positions).query_pairs(tolerance)
    assert len(pairs) <= 0.01 * len(positions)
    scene = build_scene(tiny_sfm, tiny_images, tmp_path / "scene")
    assert scene.preprocess.duplicates_removed <= 0.01 * scene.cleanup.after_voxel
    summary = (tmp_path / "scene" / "reconstruction_summary.txt").read_text()
    assert "check:    consistent" in summary and "model:    kept" in summary


def test_a_few_far_points_do_not_inflate_the_duplicate_tolerance() -> None:
    points = np.random.default_rng(0).random((5000, 3))
    strays = np.vstack([points, np.full((5, 3), 1000.0)])
    assert extent(strays) == pytest.approx(extent(points), rel=0.05)
