"""Generated paths: proximity order, constant speed, continuity, orbit geometry, JSON round trip, bad files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adop.errors import InputError
from adop.paths import (
    load_camera_path,
    CameraPath,
    check_path,
    look_at,
    mean_up,
    orbit_path,
    order_by_proximity,
    path_through_cameras,
)


def _ring_capture(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cameras on a noisy 4×3 ellipse at z≈0.5 looking at the origin, world up +z, in shuffled order."""
    rng = np.random.default_rng(seed)
    ang = np.linspace(0, 2 * np.pi, n, endpoint=False)
    eye = np.stack([4 * np.cos(ang), 3 * np.sin(ang), 0.5 + 0.05 * rng.standard_normal(n)], axis=1)
    rot, trans = look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))
    perm = rng.permutation(n)
    return rot[perm], trans[perm], eye[perm]


def _steps(path: CameraPath) -> np.ndarray:
    return np.linalg.norm(np.diff(path.centers(), axis=0), axis=1)


def _assert_rotations_orthonormal(path: CameraPath) -> None:
    r = path.rotations
    assert np.abs(np.einsum("fij,fkj->fik", r, r) - np.eye(3)).max() < 1e-9
    assert np.allclose(np.linalg.det(r), 1.0, atol=1e-9)


def test_look_at_convention() -> None:
    """Camera at the origin looking at +x with +z up: the target is straight ahead (z>0) and up is camera −y."""
    rot, trans = look_at(np.zeros(3), np.array([5.0, 0, 0]), np.array([0, 0, 1.0]))
    cam = rot[0] @ np.array([5.0, 0, 0]) + trans[0]
    assert np.allclose(cam, [0, 0, 5])
    assert np.allclose(rot[0] @ np.array([0, 0, 1.0]), [0, -1, 0])
    with pytest.raises(InputError, match="up"):
        look_at(np.zeros(3), np.array([0, 0, 3.0]), np.array([0, 0, 1.0]))


def test_order_by_proximity_recovers_a_line() -> None:
    rng = np.random.default_rng(1)
    pts = np.stack([np.arange(20.0), np.zeros(20), np.zeros(20)], axis=1)
    perm = rng.permutation(20)
    order = order_by_proximity(pts[perm])
    xs = pts[perm][order, 0]
    assert np.all(np.diff(xs) == 1) or np.all(np.diff(xs) == -1)


def test_path_through_cameras_constant_speed_and_continuity() -> None:
    rot, trans, eye = _ring_capture()
    path = path_through_cameras(rot, trans, width=64, height=48, fps=24, seconds=4)
    assert len(path) == 96 and path.width == 64 and path.fps == 24.0
    steps = _steps(path)
    assert steps.std() / steps.mean() < 1e-3  # constant speed
    # length of the tour ≈ perimeter of the capture ellipse minus one gap: no detours back and forth
    assert 15 < steps.sum() < 23
    _assert_rotations_orthonormal(path)
    # rotation continuity: no frame turns much more than the average
    rel = np.einsum("fji,fjk->fik", path.rotations[:-1], path.rotations[1:])
    angle = np.arccos(np.clip((np.trace(rel, axis1=1, axis2=2) - 1) / 2, -1, 1))
    assert angle.max() < 4 * np.median(angle) + 1e-6
    # the path stays near the capture (smoothing does not wander off)
    d = np.linalg.norm(path.centers()[:, None] - eye[None], axis=-1).min(axis=1)
    assert d.max() < 0.5
    # the cameras keep looking at the scene centre roughly (origin in front)
    z = np.einsum("fij,j->fi", path.rotations, np.zeros(3))[:, 2] + path.translations[:, 2]
    assert (z > 0).all()


def test_path_through_cameras_without_smoothing_passes_capture_centres() -> None:
    rot, trans, eye = _ring_capture(n=8)
    path = path_through_cameras(rot, trans, width=64, height=48, fps=50, seconds=8, smoothing=0)
    d = np.linalg.norm(path.centers()[:, None] - eye[None], axis=-1).min(axis=0)
    assert d.max() < 0.05  # every capture centre is within a fraction of a step of some frame


def test_orbit_path_is_a_closed_constant_speed_loop() -> None:
    rot, trans, eye = _ring_capture()
    path = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=5)
    c = path.centers()
    loop = np.linalg.norm(np.diff(np.vstack([c, c[:1]]), axis=0), axis=1)  # includes last→first
    assert loop.std() / loop.mean() < 1e-3
    assert np.allclose(c[:, 2], eye[:, 2].mean(), atol=0.05)  # in the (fitted, slightly tilted) capture plane
    r = np.linalg.norm(c[:, :2], axis=1)
    assert 2.5 < r.min() and r.max() < 4.2
    assert np.linalg.norm(c[0] - eye[0]) < 0.5  # starts near the first capture camera
    # every frame looks at the centre: the origin projects to the principal point
    cam = path.translations  # origin in camera coordinates
    uv = cam[:, :2] / cam[:, 2:] * path.intrinsics[:, :2] + path.intrinsics[:, 2:]
    assert np.allclose(uv, [32, 24], atol=1e-6)
    # screen-up is world +z-ish (mean capture up), and the loop turns counter-clockwise seen from above
    assert np.allclose(
        mean_up(rot), -path.rotations[:, 1].mean(axis=0) / np.linalg.norm(path.rotations[:, 1].mean(0)), atol=0.05
    )
    ang = np.unwrap(np.arctan2(c[:, 1], c[:, 0]))
    assert np.all(np.diff(ang) > 0)
    _assert_rotations_orthonormal(path)


def test_json_round_trip(tmp_path) -> None:
    rot, trans, _ = _ring_capture()
    path = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=25, seconds=1)
    file = path.save(tmp_path / "orbit.json")
    back = load_camera_path(file)
    assert np.array_equal(back.rotations, path.rotations) and (back.width, back.height, back.fps) == (64, 48, 25)
    assert np.array_equal(back.translations, path.translations)
    assert np.array_equal(back.intrinsics, path.intrinsics)
    assert not list(tmp_path.glob(".*partial"))  # no temporary file left behind


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ('{"format": "adop.camera_path", "version": 1, "kind": "frames", "width": 64', "not valid JSON.*line 1"),
        (
            '{"format": "adop.camera_path", "version": 1, "kind": "frames", "height": 4, "fps": 2, "frames": []}',
            "missing field 'width'",
        ),
        (
            '{"format": "adop.camera_path", "version": 1, "kind": "frames", "width": 4, "height": 4, "fps": 2, '
            '"frames": [{"rotation": [[1,0,0],[0,1,0],[0,0,1]], "translation": [0,0]}]}',
            r"frames\[0\]\.translation",
        ),
        ('{"format": "something", "version": 1}', "'format'"),
        ("[1, 2]", "top level must be a JSON object"),
    ],
)
def test_bad_path_files_give_clear_errors(tmp_path, text: str, match: str) -> None:
    file = tmp_path / "bad.json"
    file.write_text(text)
    with pytest.raises(InputError, match=match) as info:
        load_camera_path(file)
    assert "bad.json" in str(info.value)


def test_missing_file_and_bad_rotation(tmp_path) -> None:
    with pytest.raises(InputError, match="cannot read"):
        load_camera_path(tmp_path / "nope.json")
    doc = {
        "format": "adop.camera_path",
        "version": 1,
        "kind": "frames",
        "width": 4,
        "height": 4,
        "fps": 2,
        "frames": [
            {"rotation": [[2, 0, 0], [0, 1, 0], [0, 0, 1]], "translation": [0, 0, 0], "intrinsics": [2, 2, 2, 2]}
        ],
    }
    (tmp_path / "r.json").write_text(json.dumps(doc))
    with pytest.raises(InputError, match="proper rotations"):
        load_camera_path(tmp_path / "r.json")


def test_check_path_flags_empty_and_too_close_frames(caplog) -> None:
    rot, trans, _ = _ring_capture()
    path = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=1)
    cloud = np.random.default_rng(0).uniform(-0.5, 0.5, size=(2000, 3))
    assert check_path(path, cloud).ok
    away_rot, away_t = look_at(np.array([5.0, 0, 0]), np.array([10.0, 0, 0]), np.array([0, 0, 1.0]))
    p = cloud[0]  # a camera 5 mm in front of a scene point: inside the geometry for all it knows
    inside_rot, inside_t = look_at(p - [0.005, 0, 0], p + [1.0, 0, 0], np.array([0, 0, 1.0]))
    bad = CameraPath(
        np.concatenate([away_rot, inside_rot]), np.concatenate([away_t, inside_t]), path.intrinsics[:2], 64, 48, 24
    )
    report = check_path(bad, cloud)
    assert report.empty_frames == (0,) and report.too_close_frames == (1,)
    assert "see no scene point" in caplog.text and "inside the geometry" in caplog.text


def test_generated_path_size_defaults_to_the_photos_and_keeps_their_aspect() -> None:
    from adop.paths import FlyThroughConfig, fly_through_path
    from adop.paths.fly_through import parse_resolution

    rotations = np.repeat(np.eye(3)[None], 4, axis=0)
    translations = np.array([[x, 0.0, 5.0] for x in range(4)])
    points = np.zeros((10, 3))
    photos = fly_through_path(FlyThroughConfig(seconds=1, fps=4), rotations, translations, points,
                              size=(640, 480), focal=500.0)
    assert (photos.width, photos.height) == (640, 480)
    wide = fly_through_path(FlyThroughConfig(seconds=1, fps=4, width=1920), rotations, translations, points,
                            size=(640, 480), focal=500.0)
    assert (wide.width, wide.height) == (1920, 1440)
    assert np.isclose(wide.intrinsics[0][0], 500.0 * 3)
    assert parse_resolution("1920x1080") == (1920, 1080) == parse_resolution("1920×1080")
