"""Keyframed paths: keyframes hit exactly, C¹ continuity, easing, constant speed, focal/FOV, editable round trip."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from adop.errors import InputError
from adop.paths import CameraPath, keyframe_path, keyframes_from_path, load_camera_path, look_at, orbit_path


def _doc(**top) -> dict:
    """Four keyframes on a curve, with uneven spacing in time and space, at 10 fps."""
    positions = [[0, 0, 0], [2, 0, 0], [3, 2, 0.5], [3, 5, 1]]
    quats = Rotation.from_euler("xyz", [[0, 0, 0], [0, 30, 0], [10, 60, 5], [0, 90, 20]], degrees=True).as_quat()
    keys = [
        {"time": t, "position": p, "quaternion": q.tolist(), "fov_deg": f}
        for t, p, q, f in zip([0.0, 1.0, 2.5, 4.0], positions, quats, [40, 40, 60, 50], strict=False)
    ]
    doc = {
        "format": "adop.camera_path",
        "version": 1,
        "kind": "keyframes",
        "width": 64,
        "height": 48,
        "fps": 10,
        "keyframes": keys,
    }
    doc.update(top)
    return doc


def test_keyframes_hit_exactly_at_their_times() -> None:
    doc = _doc()
    path = keyframe_path(doc)
    assert len(path) == 41
    for kf in doc["keyframes"]:
        i = round(kf["time"] * 10)
        assert np.allclose(path.centers()[i], kf["position"], atol=1e-9)
        want = Rotation.from_quat(kf["quaternion"]).as_matrix()
        assert np.allclose(path.rotations[i], want, atol=1e-9)
        assert math.isclose(path.vertical_fov_deg()[i], kf["fov_deg"], abs_tol=1e-9)
    r = path.rotations
    assert np.abs(np.einsum("fij,fkj->fik", r, r) - np.eye(3)).max() < 1e-9


def test_linear_timing_is_c1_across_keyframes() -> None:
    """Velocity just before and just after an interior keyframe agree (finite differences at 1000 fps)."""
    path = keyframe_path(_doc(fps=1000))
    c = path.centers()
    for t in (1.0, 2.5):
        i = round(t * 1000)
        v_in, v_out = c[i] - c[i - 1], c[i + 1] - c[i]
        assert np.linalg.norm(v_in - v_out) < 0.02 * np.linalg.norm(v_in)
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    assert steps.max() < 3 * np.median(steps)  # no jumps anywhere


def test_ease_in_out_comes_to_rest_and_still_hits_keyframes() -> None:
    doc = _doc(fps=100)
    doc["keyframes"][1]["easing"] = "ease_in_out"
    path = keyframe_path(doc)
    c = path.centers()
    steps = np.linalg.norm(np.diff(c, axis=0), axis=1)
    assert steps[100] < 0.05 * steps[175]  # leaves keyframe 1 from rest
    assert steps[249] < 0.05 * steps[175]  # arrives at keyframe 2 at rest
    assert np.allclose(c[250], doc["keyframes"][2]["position"], atol=1e-9)


def test_constant_speed_timing() -> None:
    path = keyframe_path(_doc(timing="constant_speed", fps=50))
    steps = np.linalg.norm(np.diff(path.centers(), axis=0), axis=1)
    assert steps.std() / steps.mean() < 1e-3
    d = np.linalg.norm(path.centers()[:, None] - np.array([k["position"] for k in _doc()["keyframes"]]), axis=-1)
    assert d.min(axis=0).max() < steps.mean()  # still passes through every keyframe position


def test_look_at_and_focal_mm() -> None:
    doc = _doc(up=[0, 0, 1])
    for kf in doc["keyframes"]:
        del kf["quaternion"], kf["fov_deg"]
        kf["look_at"] = [10, 10, 0]
        kf["focal_mm"] = 36.0  # with a 36 mm sensor: focal = image width
    path = keyframe_path(doc)
    target_cam = np.einsum("fij,j->fi", path.rotations, [10, 10, 0]) + path.translations
    assert np.allclose(target_cam[:, :2], 0, atol=1e-6) and (target_cam[:, 2] > 0).all()
    assert np.allclose(path.intrinsics[:, 0], 64.0)


def test_written_path_is_editable(tmp_path) -> None:
    path = keyframe_path(_doc())
    file = path.save(tmp_path / "kf.json")
    doc = json.loads(file.read_text())
    assert doc["kind"] == "keyframes" and len(doc["frames"]) == len(path)
    doc["keyframes"][1]["position"] = [2, -1, 0]  # an edit to the keyframes wins over the stale frames
    (tmp_path / "edited.json").write_text(json.dumps(doc))
    edited = load_camera_path(tmp_path / "edited.json")
    assert np.allclose(edited.centers()[10], [2, -1, 0], atol=1e-9)


def test_keyframes_from_generated_path() -> None:
    ang = np.linspace(0, 2 * np.pi, 12, endpoint=False)
    eye = np.stack([4 * np.cos(ang), 4 * np.sin(ang), np.full(12, 0.5)], axis=1)
    rot, trans = look_at(eye, np.zeros(3), np.array([0, 0, 1.0]))
    orbit = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=4)
    doc = keyframes_from_path(orbit, count=33)
    back = keyframe_path(doc)
    assert len(back) == len(orbit)
    assert np.abs(back.centers() - orbit.centers()).max() < 0.01 * 4


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        (lambda d: d["keyframes"].pop(), None),  # still 3 keyframes: fine
        (lambda d: d.update(keyframes=d["keyframes"][:1]), "at least 2 keyframes"),
        (lambda d: d["keyframes"][2].update(time=0.5), r"keyframes\[2\]\.time.*increase"),
        (lambda d: d["keyframes"][1].pop("position"), r"missing field 'keyframes\[1\]\.position'"),
        (lambda d: d["keyframes"][1].update(look_at=[1, 1, 1]), "exactly one of 'quaternion'"),
        (lambda d: d["keyframes"][0].update(easing="bouncy"), r"keyframes\[0\]\.easing"),
        (lambda d: d["keyframes"][0].pop("fov_deg"), r"keyframes\[0\] has no lens"),
        (lambda d: d["keyframes"][0].update(focal_px=100), "only one lens field"),
        (lambda d: d.update(timing="fast"), "'timing'"),
        (lambda d: d["keyframes"][3].update(quaternion=[0, 0, 0, 0]), "unit quaternion"),
    ],
)
def test_bad_keyframes(tmp_path, edit, match) -> None:
    doc = _doc()
    edit(doc)
    file = tmp_path / "keys.json"
    file.write_text(json.dumps(doc))
    if match is None:
        keyframe_path(file)
        return
    with pytest.raises(InputError, match=match) as info:
        load_camera_path(file)
    assert "keys.json" in str(info.value)


def test_look_at_without_up_is_an_error() -> None:
    doc = _doc()
    del doc["keyframes"][0]["quaternion"]
    doc["keyframes"][0]["look_at"] = [0, 0, 5]
    with pytest.raises(InputError, match="'up'"):
        keyframe_path(doc)
    rot, _ = look_at(np.zeros(3), np.array([0, 0, 5.0]), np.array([0, 1.0, 0]))
    assert rot.shape == (1, 3, 3)
