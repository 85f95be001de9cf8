"""The dense stage's behaviour around the stereo: cached maps reused, damaged ones recomputed, views without sources
skipped with a warning, and a clear fallback when nothing can be fused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adop.dense import DenseConfig, densify, load_dense_result
from adop.dense.dense_cloud import FUSED_FILE, REPORT_FILE
from adop.dense.views import visibility_by_projection

from tests.dense.plane_scene import write_plane_capture

CONFIG = DenseConfig(depth_planes=32, neighbours=3, best_sources=2, fusion_neighbours=4, min_consistent=1,
                     min_shared_points=10, min_triangulation_angle=1.0, merge_footprint=1.0)


@pytest.fixture
def capture(tmp_path: Path):
    scene, _ = write_plane_capture(tmp_path / "images", num_views=4)
    return scene, visibility_by_projection(scene), tmp_path


def test_dense_cloud_lies_on_the_plane_and_covers_the_photos(capture) -> None:
    scene, visibility, root = capture
    report = densify(scene, visibility, root / "images", root / "dense", CONFIG, cache_dir=root / "cache")
    _, cloud = load_dense_result(root / "dense")
    assert cloud is not None and len(cloud) == report.points > 2000
    assert np.percentile(np.abs(cloud.positions[:, 2]), 95) < 0.02
    assert report.median_coverage > 0.5 and not report.fallback and report.views_used == 4
    assert json.loads((root / "dense" / REPORT_FILE).read_text())["points"] == report.points


def test_a_rerun_reuses_the_maps_and_recomputes_a_damaged_one(capture) -> None:
    scene, visibility, root = capture
    first = densify(scene, visibility, root / "images", root / "dense", CONFIG, cache_dir=root / "cache")
    maps = sorted((root / "cache").glob("*.npz"))
    assert len(maps) == 4 and first.maps_reused == 0
    with open(maps[0], "r+b") as handle:  # a flipped byte in the middle of a cached map
        handle.seek(maps[0].stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    second = densify(scene, visibility, root / "images", root / "dense2", CONFIG, cache_dir=root / "cache")
    assert second.maps_reused == 3 and second.maps_recomputed_damaged == 1
    assert second.points == first.points
    third = densify(scene, visibility, root / "images", root / "dense3", CONFIG.replace(min_consistent=2),
                    cache_dir=root / "cache")
    assert third.maps_reused == 4, "a fusion setting does not invalidate the depth maps"


def test_a_damaged_or_missing_checksum_means_computing_again(capture) -> None:
    scene, visibility, root = capture
    densify(scene, visibility, root / "images", root / "dense", CONFIG, cache_dir=root / "cache")
    sidecars = sorted((root / "cache").glob("*.sha256"))
    sidecars[0].write_text("")
    sidecars[1].unlink()
    again = densify(scene, visibility, root / "images", root / "dense2", CONFIG, cache_dir=root / "cache")
    assert again.maps_reused == 2 and again.maps_recomputed_damaged == 1


def test_lens_distortion_is_undone_before_matching(tmp_path: Path) -> None:
    """With a strongly distorted lens the fused points still lie on the plane (undistorted photos match)."""
    scene, _ = write_plane_capture(tmp_path / "images", num_views=4, radial=-0.15)
    report = densify(scene, visibility_by_projection(scene), tmp_path / "images", tmp_path / "dense", CONFIG,
                     cache_dir=tmp_path / "cache")
    _, cloud = load_dense_result(tmp_path / "dense")
    assert cloud is not None and report.median_coverage > 0.4
    assert np.percentile(np.abs(cloud.positions[:, 2]), 95) < 0.02


def test_views_without_sources_are_skipped_and_nothing_left_falls_back(capture) -> None:
    scene, visibility, root = capture
    visibility[0] = np.zeros(0, dtype=np.int64)  # view 0 shares no points with anyone
    report = densify(scene, visibility, root / "images", root / "dense", CONFIG, cache_dir=root / "cache")
    assert list(report.skipped) == ["view_00.png"] and report.views_used == 3
    assert any("view_00.png skipped" in warning for warning in report.warnings)
    assert (root / "dense" / FUSED_FILE).is_file()

    none = densify(scene, [np.zeros(0, dtype=np.int64)] * 4, root / "images", root / "none", CONFIG,
                   cache_dir=root / "cache")
    assert none.fallback and none.views_used == 0 and not (root / "none" / FUSED_FILE).exists()
    assert "the scene keeps the SfM points" in none.warnings[-1]
    assert load_dense_result(root / "none")[1] is None


def test_photos_of_different_sizes(tmp_path: Path) -> None:
    """A view whose photo is twice the size (same field of view) still matches the others."""
    from PIL import Image

    from adop.scene import Camera, Scene

    scene, _ = write_plane_capture(tmp_path / "images", num_views=4)
    big = scene.cameras[0].scaled(2.0)
    photo = Image.open(tmp_path / "images" / "view_03.png")
    photo.resize((big.width, big.height), Image.BICUBIC).save(tmp_path / "images" / "view_03.png")
    frames = list(scene.frames)
    frames[3] = type(frames[3])(frames[3].name, 1, frames[3].rotation, frames[3].translation)
    mixed = Scene([scene.cameras[0], Camera(big.model, big.width, big.height, big.params)], frames, scene.points,
                  image_dir=scene.image_dir)
    report = densify(mixed, visibility_by_projection(mixed), tmp_path / "images", tmp_path / "dense", CONFIG,
                     cache_dir=tmp_path / "cache")
    assert report.views_used == 4 and report.depth_coverage["view_03.png"] > 0.5
