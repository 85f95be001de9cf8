"""SfM accuracy on the synthetic `tiny` set (24 views at 320x240, known cameras), matcher choice and camera grouping.

Bounds fit `tiny` (measured with the default global mapper: 24/24, 0.07 deg median rotation error, 0.02 % centre
error, 0.19 px, focal within 0.1 %; the incremental mapper: 0.24 deg, 0.06 %); the `small` set meets stricter
bounds (measured with benchmarks/reconstruct.py).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import OpenImageIO as oiio
import pytest

from adop.reconstruct import SceneReport, SfmConfig, reconstruct, run_sfm
from adop.reconstruct.accuracy import pose_accuracy
from adop.reconstruct.images import looks_sequential
from adop.reconstruct.sfm import choose_matcher
from adop.scene import load_scene
from adop.synth import SynthManifest


@pytest.fixture(scope="module")
def tiny_scene(tiny_capture: SynthManifest, tmp_path_factory: pytest.TempPathFactory) -> SceneReport:
    out = tmp_path_factory.mktemp("tiny") / "scene"
    return reconstruct(Path(tiny_capture.images_dir), out, SfmConfig(num_threads=2))


@pytest.mark.slow
def test_matches_reference_tiny(tiny_scene: SceneReport, tiny_capture: SynthManifest) -> None:
    truth = load_scene(Path(tiny_capture.scene_dir))
    accuracy = pose_accuracy(load_scene(tiny_scene.scene_dir), truth)
    assert accuracy.frames_compared >= 0.95 * len(truth.frames)
    assert accuracy.median_rotation_deg < 0.5
    assert accuracy.median_center_error_relative < 0.005
    assert tiny_scene.sfm["mean_reprojection_error"] < 1.0
    assert tiny_scene.sfm["num_points"] > tiny_scene.sfm["points_mapped"] > 0  # retriangulation added points
    assert any(t["stage"] == "colmap:retriangulate" for t in tiny_scene.sfm["timings"])
    assert accuracy.focal_ratio == pytest.approx(1.0, abs=0.01)
    camera = load_scene(tiny_scene.scene_dir).cameras[0]
    assert camera.model == "SIMPLE_RADIAL" and camera.params[3] == pytest.approx(truth.cameras[0].params[3], abs=0.01)


def test_smoke_sequential_matcher_incremental_mapper(tiny_images: Path, tmp_path: Path) -> None:
    config = SfmConfig(matcher="sequential", sequential_overlap=5, mapper="incremental", retriangulate=False)
    result = run_sfm(tiny_images, tmp_path / "sfm", config)
    assert result.matcher == "sequential" and result.mapper == "incremental" and result.registered_fraction >= 0.95
    assert result.num_points == result.points_mapped and "colmap:retriangulate" not in [t.stage for t in result.timings]


def test_smoke_camera_per_size_and_downscaling(tiny_images: Path, tmp_path: Path) -> None:
    """Half the views at 320x240, half resized to 256x192: two cameras; SIFT downscales the larger ones only."""
    images = tmp_path / "images"
    images.mkdir()
    names = sorted(p.name for p in tiny_images.glob("*.jpg"))[:10]
    for index, name in enumerate(names):
        if index % 2:
            shutil.copy(tiny_images / name, images / name)
            continue
        resized = oiio.ImageBufAlgo.resize(oiio.ImageBuf(str(tiny_images / name)), roi=oiio.ROI(0, 256, 0, 192, 0, 1, 0, 3))
        assert resized.write(str(images / name))
    result = run_sfm(images, tmp_path / "sfm", SfmConfig(max_image_size=300, min_registered_fraction=0.5))
    assert result.num_cameras == 2 and result.downscaled_for_sift == 5
    scene = load_scene(reconstruct(images, tmp_path / "scene", SfmConfig(max_image_size=300,
                                                                          min_registered_fraction=0.5)).scene_dir)
    assert sorted((c.width, c.height) for c in scene.cameras) == [(256, 192), (320, 240)]  # full-size cameras


def test_smoke_matcher_choice() -> None:
    video = [f"clip/frame_{i:05d}.png" for i in range(300)]
    shuffled_names = [f"{word}.jpg" for word in ("yard", "gate", "roof", "wall")] * 40
    assert looks_sequential(video) and not looks_sequential(shuffled_names)
    assert not looks_sequential([f"IMG_{i * 37:04d}.JPG" for i in range(200)])  # numbered, but far apart
    config = SfmConfig()
    assert choose_matcher(video[:80], config)[0] == "exhaustive"
    assert choose_matcher(video, config)[0] == "sequential"
    assert choose_matcher([f"{i}_{w}.jpg" for i in range(150) for w in "ab"][:150], config)[0] == "exhaustive"
    assert choose_matcher(video, SfmConfig(matcher="exhaustive")) == ("exhaustive", "set in the configuration")
