"""Our Scene → COLMAP model (binary and text) → Scene keeps every camera, pose and point; bad models fail clearly."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pycolmap
import pytest

from adop.errors import InputError
from adop.scene import Camera, Frame, PointCloud, Scene
from adop.scene.colmap import export_colmap, import_colmap

pycolmap.logging.minloglevel = 2


def _rotation(rng: np.random.Generator) -> np.ndarray:
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    return q if np.linalg.det(q) > 0 else -q


def _scene(rng: np.random.Generator) -> Scene:
    cameras = [
        Camera("PINHOLE", 640, 480, (500.5, 501.25, 320.1, 239.7)),
        Camera("SIMPLE_RADIAL", 320, 240, (260.0, 160.0, 120.0, -0.04)),
        Camera("RADIAL", 800, 600, (700.0, 400.0, 300.0, -0.1, 0.02)),
        Camera("OPENCV", 1024, 768, (800.0, 801.0, 512.3, 384.2, -0.1, 0.01, 1e-3, -2e-3)),
        Camera("FULL_OPENCV", 1920, 1080, (1500.0, 1499.0, 960.0, 540.0, -0.1, 0.01, 1e-4, 2e-4, 1e-3, 0.1, 0.01, 1e-3)),
    ]
    frames = [
        Frame(
            name=f"sub/img_{i:03d}.jpg",
            camera_index=i % len(cameras),
            rotation=_rotation(rng),
            translation=rng.normal(size=3) * 5,
        )
        for i in range(12)
    ]
    points = PointCloud(rng.normal(size=(200, 3)) * 3, colors=rng.integers(0, 256, size=(200, 3)))
    return Scene(cameras=cameras, frames=frames, points=points)


@pytest.mark.parametrize("text", [False, True], ids=["binary", "text"])
def test_matches_reference(tmp_path: Path, text: bool) -> None:
    scene = _scene(np.random.default_rng(3))
    export_colmap(scene, tmp_path / "model", text=text)
    expected_file = "cameras.txt" if text else "cameras.bin"
    assert (tmp_path / "model" / expected_file).is_file()
    back = import_colmap(tmp_path / "model", None)

    assert back.cameras == scene.cameras
    assert [f.name for f in back.frames] == sorted(f.name for f in scene.frames)
    by_name = {f.name: f for f in scene.frames}
    for frame in back.frames:
        original = by_name[frame.name]
        assert frame.camera_index == original.camera_index
        np.testing.assert_allclose(frame.rotation, original.rotation, rtol=0, atol=1e-9)
        np.testing.assert_allclose(frame.translation, original.translation, rtol=0, atol=1e-9)
    np.testing.assert_allclose(back.points.positions, scene.points.positions, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(back.points.colors, scene.points.colors)


def test_smoke_simple_pinhole_becomes_pinhole(tmp_path: Path) -> None:
    reconstruction = pycolmap.Reconstruction()
    reconstruction.add_camera_with_trivial_rig(
        pycolmap.Camera(model="SIMPLE_PINHOLE", width=64, height=48, params=[50.0, 32.0, 24.0], camera_id=1)
    )
    reconstruction.add_image_with_trivial_frame(
        pycolmap.Image(name="a.png", camera_id=1, image_id=1), pycolmap.Rigid3d()
    )
    reconstruction.write(str(tmp_path))
    scene = import_colmap(tmp_path)
    assert scene.cameras == [Camera("PINHOLE", 64, 48, (50.0, 50.0, 32.0, 24.0))]
    assert len(scene.frames) == 1 and len(scene.points) == 0


def test_exception_unsupported_model(tmp_path: Path) -> None:
    reconstruction = pycolmap.Reconstruction()
    reconstruction.add_camera_with_trivial_rig(
        pycolmap.Camera(model="OPENCV_FISHEYE", width=64, height=48, params=[50, 50, 32, 24, 0, 0, 0, 0], camera_id=1)
    )
    reconstruction.write(str(tmp_path))
    with pytest.raises(InputError, match=r"OPENCV_FISHEYE.*(undistort|OPENCV)"):
        import_colmap(tmp_path)


def test_exception_not_a_model(tmp_path: Path) -> None:
    (tmp_path / "0").mkdir()
    export_colmap(_scene(np.random.default_rng(0)), tmp_path / "0")
    with pytest.raises(InputError, match="pass one of them"):
        import_colmap(tmp_path)
