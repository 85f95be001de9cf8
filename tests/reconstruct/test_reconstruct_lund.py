"""The whole reconstruction on real photos: the 29 lund street photos (tests/data/lund, 640x480 copies, BSD-2).

One SfM run per module (about 25 s on 2 cores); the scene folder, reports and quick look are checked against it,
and a cleanup-only rebuild proves that changing cleanup options does not need SfM again.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pycolmap
import pytest

from adop.exif import exposure_value
from adop.dense import DenseConfig
from adop.reconstruct import CleanupConfig, SceneReport, SfmConfig, build_scene, reconstruct
from adop.reconstruct.build import QUICKLOOK_FILE, REPORT_FILE, SUMMARY_FILE
from adop.reconstruct.pipeline import SFM_SUBDIR
from adop.reconstruct.sfm import DATABASE_FILE, MODEL_DIR
from adop.scene import load_scene

LUND = Path(__file__).resolve().parents[1] / "data" / "lund" / "images"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def lund(tmp_path_factory: pytest.TempPathFactory) -> SceneReport:
    out = tmp_path_factory.mktemp("lund") / "scene"
    # SfM and the scene built from its points alone: what these tests check (dense stereo: test_reconstruct_herzjesu)
    return reconstruct(LUND, out, SfmConfig(num_threads=2), CleanupConfig(), dense_config=DenseConfig(method="off"))


def test_smoke_registration(lund: SceneReport) -> None:
    sfm = lund.sfm
    assert sfm["images_found"] == 29
    assert sfm["registered_fraction"] >= 0.95
    assert sfm["mean_reprojection_error"] < 1.0
    assert sfm["num_points"] > 500 and sfm["mean_track_length"] > 2.0
    assert sfm["matcher"] == "exhaustive" and sfm["retries"] == 0
    assert sfm["num_cameras"] == 1 and sfm["focal_from_exif"] == 1  # one phone, 35 mm-equivalent focal in EXIF
    assert {row["stage"] for row in sfm["timings"]} >= {"colmap:extract", "colmap:match", "colmap:map"}


def test_smoke_scene_folder(lund: SceneReport) -> None:
    scene = load_scene(lund.scene_dir)
    assert len(scene.frames) == len(lund.sfm["registered"]) == lund.num_frames
    assert [f.name for f in scene.frames] == sorted(lund.sfm["registered"])
    assert scene.image_dir == LUND  # stored exactly as given
    assert scene.frames[0].exposure_ev == pytest.approx(exposure_value(LUND / scene.frames[0].name))
    points = scene.points
    assert len(points) == lund.points_final > 0
    assert points.normals is not None and points.radius is not None and points.colors is not None
    np.testing.assert_allclose(np.linalg.norm(points.normals, axis=1), 1.0, atol=1e-5)
    assert np.all(points.radius > 0)
    assert scene.up is not None
    # the photos were taken upright: every camera's up axis (-y) agrees with the scene's up vector
    ups = np.array([-f.rotation[1] for f in scene.frames])
    assert np.all(ups @ np.array(scene.up) > 0.8)


def test_smoke_normals_face_the_observing_cameras(lund: SceneReport) -> None:
    scene = load_scene(lund.scene_dir)
    model = pycolmap.Reconstruction(str(lund.scene_dir / SFM_SUBDIR / MODEL_DIR))
    by_position = {tuple(np.round(p.xyz, 9)): p for p in model.points3D.values()}
    facing = total = found = 0
    for position, normal in zip(scene.points.positions, scene.points.normals):
        point = by_position.get(tuple(np.round(position, 9)))
        if point is None:
            continue
        found += 1
        for element in point.track.elements:
            center = model.image(element.image_id).projection_center()
            facing += float(normal @ (center - position)) > 0
            total += 1
    assert found >= 0.9 * len(scene.points)  # the default cleanup removes points but moves none
    assert facing / total > 0.97


def test_smoke_reports_and_quicklook(lund: SceneReport) -> None:
    report = json.loads((lund.scene_dir / REPORT_FILE).read_text())
    assert report["points_sfm"] == lund.sfm["num_points"] and report["points_final"] == lund.points_final
    assert report["cleanup"]["after_outliers"] <= report["points_sfm"]
    assert {row["stage"] for row in report["timings"]} == {"import", "cleanup", "preprocess", "save", "quicklook"}
    summary = (lund.scene_dir / SUMMARY_FILE).read_text()
    registered = len(lund.sfm["registered"])
    assert f"{registered} of 29 registered" in summary and "exhaustive" in summary and "px" in summary
    picture = oiio.ImageBuf(str(lund.scene_dir / QUICKLOOK_FILE))
    assert picture.spec().width == 800 or picture.spec().height <= 828
    pixels = picture.get_pixels(oiio.UINT8)
    orange = (pixels[..., 0] > 200) & (pixels[..., 1] > 100) & (pixels[..., 1] < 180) & (pixels[..., 2] < 60)
    assert orange.sum() > registered * 10  # the cameras are drawn


def test_smoke_cleanup_change_reuses_sfm(lund: SceneReport, tmp_path: Path) -> None:
    sfm_dir = lund.scene_dir / SFM_SUBDIR
    stamp = (sfm_dir / DATABASE_FILE).stat().st_mtime_ns
    again = build_scene(sfm_dir, LUND, tmp_path / "same", CleanupConfig())
    assert (tmp_path / "same" / "points.ply").read_bytes() == (lund.scene_dir / "points.ply").read_bytes()
    dense = build_scene(sfm_dir, LUND, tmp_path / "dense", CleanupConfig(voxel_factor=2.0, point_factor=3))
    assert dense.cleanup.after_voxel < dense.cleanup.after_outliers
    assert dense.preprocess.points_added == 2 * (dense.cleanup.after_voxel - dense.preprocess.duplicates_removed)
    assert again.points_final == lund.points_final
    assert (sfm_dir / DATABASE_FILE).stat().st_mtime_ns == stamp
