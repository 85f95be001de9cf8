"""Layout and file formats of a synthetic capture set, EXIF round trip, and bad output folders."""

from __future__ import annotations

import math
import os

import numpy as np
import OpenImageIO as oiio
import pytest

from adop.errors import InputError
from adop.exif import read_exposure
from adop.synth import TINY, generate_capture_set, true_camera
from adop.images import read_image


def test_smoke_layout(micro_set) -> None:
    root = micro_set.root
    assert sorted(p.name for p in root.iterdir()) == ["ground_truth", "images"]
    images = sorted(root.joinpath("images").iterdir())
    assert [p.name for p in images] == [f"view_{i:03d}.jpg" for i in range(micro_set.preset.views)]
    assert all(p.is_file() and p.read_bytes()[:2] == b"\xff\xd8" for p in images)  # JPEG SOI marker
    gt = sorted(p.name for p in micro_set.gt.iterdir())
    assert gt == ["README.md", "camera_model.json", "heldout", "markers.json", "scene"]
    assert not list(root.parent.glob(".micro.synth-*")), "staging folder left behind"
    readme = (micro_set.gt / "README.md").read_text(encoding="utf-8")
    assert "pixel = CRF(clip(vignette(uv)" in readme and "micro" in readme


def test_ground_truth_scene(micro_set) -> None:
    scene, preset = micro_set.scene, micro_set.preset
    assert scene.cameras == [true_camera(preset)]
    camera = scene.cameras[0]
    assert camera.model == "SIMPLE_RADIAL" and camera.distortion[0] == pytest.approx(preset.k1)
    assert (camera.width, camera.height) == (preset.width, preset.height)
    assert [f.name for f in scene.frames] == [f"view_{i:03d}.jpg" for i in range(preset.views)]
    for frame in scene.frames:
        assert scene.image_path(frame, micro_set.manifest.scene_dir).resolve().is_file()
        # every camera looks roughly at the scene centre, which is in front of it
        assert frame.to_camera(np.array([[0.0, 0.0, 0.7]]))[0, 2] > 3.0
    points = scene.points
    assert len(points) == preset.surface_points == micro_set.manifest.point_count
    assert points.normals is not None and points.colors is not None
    np.testing.assert_allclose(np.linalg.norm(points.normals, axis=1), 1.0, atol=1e-4)
    assert np.ptp(points.colors.astype(float).mean(axis=1)) > 150  # dark shadows to bright light box
    assert np.abs(points.positions[:, :2]).max() <= 8.0 + 1e-9 and points.positions[:, 2].min() >= -1e-9
    assert scene.up == (0.0, 0.0, 1.0)


def test_heldout(micro_set) -> None:
    heldout, preset = micro_set.heldout, micro_set.preset
    assert len(heldout.frames) == preset.heldout_views and len(heldout.points) == 0
    capture_centres = micro_set.scene.centers()
    for frame in heldout.frames:
        assert np.linalg.norm(capture_centres - frame.center, axis=1).min() > 0.3  # not one of the images
        path = heldout.image_path(frame, micro_set.manifest.heldout_dir)
        image = oiio.ImageInput.open(str(path))
        assert image is not None, oiio.geterror()
        assert image.spec().format == oiio.FLOAT and image.spec().nchannels == 3
        image.close()
        radiance = read_image(path, "float")
        assert radiance.shape == (preset.height, preset.width, 3)
        assert np.isfinite(radiance).all() and radiance.min() > 0


def test_camera_model_fields(micro_set) -> None:
    model, preset = micro_set.model, micro_set.preset
    assert model["format"] == "adop-synth-camera-model" and model["generator"]["seed"] == 7
    assert model["generator"]["preset"]["name"] == "micro"
    assert len(model["vignette"]["coefficients"]) == 3 and len(model["vignette"]["center"]) == 2
    table = np.asarray(model["response"]["table"])
    assert table.shape == (3, 256) and np.all(np.diff(table, axis=1) > 0)
    np.testing.assert_allclose(table[:, [0, -1]], [[0, 1]] * 3, atol=1e-9)
    assert model["scale"] > 0 and model["radiance_percentiles"]["stops_p1_to_p99.9"] >= 4.0
    images = model["images"]
    assert [i["name"] for i in images] == [f.name for f in micro_set.scene.frames]
    for entry in images:
        assert entry["true_ev"] == pytest.approx(entry["recorded_ev"] + entry["deviation"], abs=1e-12)
        assert abs(entry["deviation"]) <= 0.45 + 1e-6
        assert entry["white_balance"][1] == 1.0 and all(0.8 <= g <= 1.25 for g in entry["white_balance"])
    assert np.std([e["deviation"] for e in images]) > 0.05
    markers = micro_set.markers
    assert markers["radius"] == preset.marker_radius and len(markers["positions"]) == micro_set.manifest.marker_count


def test_exif_round_trip(micro_set) -> None:
    """adop.exif reads back exactly the EV the ground truth records, and the focal is consistent with the camera."""
    model, camera = micro_set.model, micro_set.scene.cameras[0]
    evs = []
    for entry, frame in zip(model["images"], micro_set.scene.frames):
        info = read_exposure(micro_set.root / "images" / entry["name"])
        assert info.f_number == pytest.approx(8.0) and info.iso == pytest.approx(100.0)
        # OIIO stores the float as an approximate rational (1/100 s reads back as 1/100.01 s)
        assert info.exposure_time == pytest.approx(entry["exposure_time"], rel=1e-3)
        assert info.ev100 == pytest.approx(entry["recorded_ev"], abs=0.01)
        assert frame.exposure_ev == pytest.approx(info.ev100, abs=1e-9)
        focal_px_35 = info.focal_length_35mm / 43.27 * math.hypot(camera.width, camera.height)
        assert focal_px_35 == pytest.approx(camera.intrinsics[0], rel=0.03)
        assert info.focal_length_mm == pytest.approx(info.focal_length_35mm / 1.5, rel=0.03)
        evs.append(info.ev100)
        spec = oiio.ImageInput.open(str(micro_set.root / "images" / entry["name"]))
        assert spec.spec().getattribute("Make") == "adop-synth" and spec.spec().getattribute("Model") == "adop-synth"
        spec.close()
    assert max(evs) - min(evs) >= 1.0  # 8 distinct third-stop shutter values: 2.33 stops


def test_exception_non_empty_output(tmp_path) -> None:
    out = tmp_path / "set"
    out.mkdir()
    (out / "keep.txt").write_text("precious")
    nano = TINY.with_changes(name="nano", views=2, width=32, height=24, heldout_views=0, surface_points=100)
    with pytest.raises(InputError, match="not empty"):
        generate_capture_set(out, nano)
    assert (out / "keep.txt").read_text() == "precious"
    manifest = generate_capture_set(out, nano, overwrite=True)
    assert manifest.image_count == 2 and not (out / "keep.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["set"]  # no staging or old copy left


def test_exception_bad_destination(tmp_path) -> None:
    nano = TINY.with_changes(name="nano", views=2, width=32, height=24, heldout_views=0, surface_points=100)
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(InputError, match="not a folder"):
        generate_capture_set(a_file, nano)
    if os.path.isdir("/proc/self"):  # a folder nobody, not even root, can create anything in
        with pytest.raises(InputError, match="not writable"):
            generate_capture_set("/proc/self/adop-synth-test/set", nano)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="unknown synthetic preset"):
        generate_capture_set(tmp_path / "x", "huge")  # type: ignore[arg-type]
