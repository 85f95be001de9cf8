"""Scene folder and ADOP folder round trips keep every camera, pose and point."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adop.errors import InputError
from adop.scene import Scene, load_scene, save_scene
from adop.scene.adop_folder import export_adop_scene, import_adop_scene


def assert_scenes_match(a: Scene, b: Scene, *, pose_atol: float, point_atol: float) -> None:
    assert [c.model for c in a.cameras] == [c.model for c in b.cameras]
    for ca, cb in zip(a.cameras, b.cameras):
        assert (ca.width, ca.height) == (cb.width, cb.height)
        np.testing.assert_allclose(ca.params, cb.params, rtol=1e-12)
    assert [f.name for f in a.frames] == [f.name for f in b.frames]
    for fa, fb in zip(a.frames, b.frames):
        assert fa.camera_index == fb.camera_index
        np.testing.assert_allclose(fa.rotation, fb.rotation, atol=pose_atol)
        np.testing.assert_allclose(fa.translation, fb.translation, atol=pose_atol)
        assert fa.exposure_ev == pytest.approx(fb.exposure_ev, abs=1e-12)
    assert len(a.points) == len(b.points)
    np.testing.assert_allclose(a.points.positions, b.points.positions, atol=point_atol)
    np.testing.assert_allclose(a.points.normals, b.points.normals, atol=1e-7)
    np.testing.assert_array_equal(a.points.colors, b.points.colors)


def test_scene_folder_round_trip_is_exact(random_scene: Scene, tmp_path: Path) -> None:
    random_scene.image_dir = Path("../images")
    random_scene.points.radius = np.linspace(0.01, 0.1, len(random_scene.points)).astype(np.float32)
    save_scene(random_scene, tmp_path / "scene")
    loaded = load_scene(tmp_path / "scene")
    assert_scenes_match(random_scene, loaded, pose_atol=0.0, point_atol=0.0)
    np.testing.assert_array_equal(loaded.points.radius, random_scene.points.radius)
    assert loaded.image_dir == Path("../images")
    assert loaded.up == random_scene.up


def test_adop_folder_round_trip(random_scene: Scene, tmp_path: Path) -> None:
    random_scene.image_dir = tmp_path / "images"
    export_adop_scene(random_scene, tmp_path / "adop")
    for name in ("dataset.ini", "camera0.ini", "poses.txt", "images.txt", "camera_indices.txt", "exposure.txt"):
        assert (tmp_path / "adop" / name).is_file()
    loaded = import_adop_scene(tmp_path / "adop")
    # ADOP stores float32 positions and quaternion poses: exact up to float precision.
    assert_scenes_match(random_scene, loaded, pose_atol=1e-9, point_atol=1e-5)
    assert loaded.image_dir == (tmp_path / "images").resolve()


def test_adop_poses_file_is_camera_to_world(random_scene: Scene, tmp_path: Path) -> None:
    export_adop_scene(random_scene, tmp_path / "adop")
    first = [float(v) for v in (tmp_path / "adop" / "poses.txt").read_text().splitlines()[0].split()]
    np.testing.assert_allclose(first[4:], random_scene.frames[0].center, atol=1e-12)


def test_adop_distortion_is_written_in_saiga_order(random_scene: Scene, tmp_path: Path) -> None:
    export_adop_scene(random_scene, tmp_path / "adop")
    text = (tmp_path / "adop" / "camera4.ini").read_text()
    line = next(l for l in text.splitlines() if l.startswith("distortion"))
    saiga = [float(v) for v in line.split("=")[1].split()]
    k1, k2, p1, p2, k3, k4, k5, k6 = random_scene.cameras[4].distortion
    assert saiga == pytest.approx([k1, k2, k3, k4, k5, k6, p1, p2])


def test_adop_folder_with_mismatched_files_is_a_clear_error(random_scene: Scene, tmp_path: Path) -> None:
    export_adop_scene(random_scene, tmp_path / "adop")
    (tmp_path / "adop" / "exposure.txt").write_text("1.0\n")
    with pytest.raises(InputError, match="exposure.txt has 1 lines but poses.txt has 6"):
        import_adop_scene(tmp_path / "adop")


def test_adop_ocam_scene_is_rejected(random_scene: Scene, tmp_path: Path) -> None:
    export_adop_scene(random_scene, tmp_path / "adop")
    ini = tmp_path / "adop" / "dataset.ini"
    ini.write_text(ini.read_text().replace("camera_type_int = 0", "camera_type_int = 1"))
    with pytest.raises(InputError, match="OCam"):
        import_adop_scene(tmp_path / "adop")


def test_damaged_scene_folder_is_detected(random_scene: Scene, tmp_path: Path) -> None:
    save_scene(random_scene, tmp_path / "scene")
    meta = tmp_path / "scene" / "scene.json"
    document = json.loads(meta.read_text())
    document["points"]["count"] += 1
    meta.write_text(json.dumps(document))
    with pytest.raises(InputError, match="incomplete"):
        load_scene(tmp_path / "scene")
    with pytest.raises(InputError, match="not an adop scene folder"):
        load_scene(tmp_path / "missing")
