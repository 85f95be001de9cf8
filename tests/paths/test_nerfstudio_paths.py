"""nerfstudio camera_path.json: OpenGL camera→world import, export, round trip, world transform, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adop.errors import InputError
from adop.paths import (
    load_camera_path,
    CameraPath,
    export_nerfstudio_path,
    import_nerfstudio_path,
    look_at,
    nerfstudio_to_world,
    orbit_path,
)


def _orbit() -> CameraPath:
    ang = np.linspace(0, 2 * np.pi, 10, endpoint=False)
    eye = np.stack([3 * np.cos(ang), 2 * np.sin(ang), np.full(10, 1.0)], axis=1)
    rot, trans = look_at(eye, np.zeros(3), np.array([0, 0, 1.0]))
    return orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=1, fov_deg=47)


def _ns_doc() -> dict:
    """A hand-made nerfstudio path: a camera at (0,0,5) looking down −z (OpenGL identity rotation), fov 60°."""
    c2w = np.eye(4)
    c2w[:3, 3] = [0, 0, 5]
    return {
        "render_width": 80,
        "render_height": 60,
        "seconds": 2.0,
        "camera_type": "perspective",
        "camera_path": [{"camera_to_world": c2w.reshape(-1).tolist(), "fov": 60.0, "aspect": 4 / 3}] * 48,
    }


def test_import_converts_opengl_to_opencv() -> None:
    path = import_nerfstudio_path(_ns_doc())
    assert len(path) == 48 and path.fps == 24.0 and (path.width, path.height) == (80, 60)
    assert np.allclose(path.centers(), [0, 0, 5])
    # the OpenGL camera looks down world −z with +y up: world origin is ahead (z_cam = 5), world +y is up (−y_cam)
    assert np.allclose(path.rotations[0] @ np.zeros(3) + path.translations[0], [0, 0, 5])
    assert np.allclose(path.rotations[0] @ [0, 1, 0], [0, -1, 0])
    assert np.allclose(path.intrinsics[0], [30 / np.tan(np.radians(30)), 30 / np.tan(np.radians(30)), 40, 30])


def test_round_trip_import_export_import(tmp_path) -> None:
    path = _orbit()
    doc = export_nerfstudio_path(path)
    assert set(doc) >= {"render_width", "render_height", "fps", "seconds", "camera_path", "keyframes"}
    assert len(doc["camera_path"][0]["camera_to_world"]) == 16
    (tmp_path / "camera_path.json").write_text(json.dumps(doc))
    back = load_camera_path(tmp_path / "camera_path.json")  # detected as nerfstudio
    assert back.fps == path.fps and len(back) == len(path)
    assert np.allclose(back.rotations, path.rotations, atol=1e-12)
    assert np.allclose(back.translations, path.translations, atol=1e-12)
    assert np.allclose(back.intrinsics, path.intrinsics, atol=1e-9)
    again = export_nerfstudio_path(back)
    assert np.allclose(
        np.array([f["camera_to_world"] for f in again["camera_path"]]),
        np.array([f["camera_to_world"] for f in doc["camera_path"]]),
        atol=1e-12,
    )


def test_world_transform_round_trip() -> None:
    path = _orbit()
    dp = {"transform": [[0, 1, 0, 0.5], [-1, 0, 0, 0.2], [0, 0, 1, -1.0]], "scale": 0.25}
    m = nerfstudio_to_world(dp)
    doc = export_nerfstudio_path(path, ns_to_world=m)
    # a camera centre in nerfstudio's world is scale * (T @ p)
    t = np.array(dp["transform"])
    want = 0.25 * (t[:, :3] @ path.centers()[0] + t[:, 3])
    assert np.allclose(np.array(doc["camera_path"][0]["camera_to_world"]).reshape(4, 4)[:3, 3], want)
    back = import_nerfstudio_path(doc, ns_to_world=m)
    assert np.allclose(back.rotations, path.rotations, atol=1e-9)
    assert np.allclose(back.centers(), path.centers(), atol=1e-9)


def test_float32_json_is_accepted() -> None:
    doc = export_nerfstudio_path(_orbit())
    for fr in doc["camera_path"]:
        fr["camera_to_world"] = [float(np.float32(v)) for v in fr["camera_to_world"]]
    back = import_nerfstudio_path(doc)
    assert np.abs(np.einsum("fij,fkj->fik", back.rotations, back.rotations) - np.eye(3)).max() < 1e-9


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d.pop("render_width"), "missing field 'render_width'"),
        (lambda d: d.update(camera_type="fisheye"), "camera_type 'fisheye'"),
        (lambda d: d.pop("seconds"), "'seconds'"),
        (lambda d: d["camera_path"].__setitem__(3, {"fov": 50}), r"camera_path\[3\]\.camera_to_world"),
        (lambda d: d["camera_path"].__setitem__(1, {"camera_to_world": [2.0] * 16, "fov": 50}), "not a rotation"),
        (
            lambda d: d["camera_path"].__setitem__(0, {"camera_to_world": d["camera_path"][1]["camera_to_world"]}),
            r"camera_path\[0\]\.fov",
        ),
    ],
)
def test_bad_nerfstudio_files(tmp_path, edit, match) -> None:
    doc = _ns_doc()
    doc["camera_path"] = [dict(e) for e in doc["camera_path"]]
    edit(doc)
    file = tmp_path / "camera_path.json"
    file.write_text(json.dumps(doc))
    with pytest.raises(InputError, match=match) as info:
        import_nerfstudio_path(file)
    assert "camera_path.json" in str(info.value)
