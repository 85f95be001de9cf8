"""Import and export the original ADOP scene folder, so ADOP users can bring their scenes and take ours back.

The format (darglein/ADOP ``scenes/README.md``; docs/method.md §1)::

    dataset.ini          [SceneDatasetParams] image_dir, camera_files (space separated), file_point_cloud,
                         scene_exposure_value, up_vector, render_scale, znear, zfar, camera_type_int (0 = pinhole)
    cameraN.ini          [SceneCameraParams] w, h, K = "fx fy cx cy s", distortion = 8 numbers in saiga order
                         "k1 k2 k3 k4 k5 k6 p1 p2"
    images.txt           one image file name per line; frame i is line i
    camera_indices.txt   camera ini index per frame (optional: all camera 0)
    poses.txt            camera→world per frame: "qx qy qz qw tx ty tz"
    exposure.txt         EV per frame (optional)
    white_balance.txt    "r g b" per frame (optional)
    point_cloud.ply      positions + normals (+ colours)

ADOP keeps COLMAP's cx, cy unchanged (ADOP ``colmap2adop.cpp``; docs/method.md §1), and so do we: the half-pixel
convention difference lives in ADOP's rasterizer, not in the file. Skew must be zero (COLMAP cannot represent it); a
non-zero skew is an error. ADOP's OCam (camera_type_int 1) has no COLMAP equivalent and is rejected with a clear
message.
"""

from __future__ import annotations

import configparser
from pathlib import Path

import numpy as np
from scipy.spatial.transform import Rotation

from adop.errors import InputError
from adop.scene.camera import Camera
from adop.scene.types import Frame, Scene
from adop.scene.ply import read_ply, write_ply
from adop.storage import write_text_atomic

_SAIGA_FROM_OPENCV = (0, 1, 4, 5, 6, 7, 2, 3)  # saiga slot i holds OpenCV coefficient _SAIGA_FROM_OPENCV[i]


def _read_ini(path: Path) -> dict[str, str]:
    if not path.is_file():
        raise InputError(f"{path} is missing; an ADOP scene folder needs it (see adop.scene.adop_folder)")
    parser = configparser.ConfigParser(
        inline_comment_prefixes=("#", ";"), comment_prefixes=("#", ";"), interpolation=None, strict=False
    )
    text = path.read_text(encoding="utf-8")
    if not text.lstrip().startswith("["):
        text = "[root]\n" + text
    try:
        parser.read_string(text)
    except configparser.Error as error:
        raise InputError(f"{path} is not a readable ini file ({error})") from None
    values: dict[str, str] = {}
    for section in parser.sections():
        values.update({key: value.strip() for key, value in parser[section].items()})
    return values


def _floats(text: str, count: int, where: str) -> list[float]:
    try:
        numbers = [float(v) for v in text.split()]
    except ValueError:
        raise InputError(f"{where} must hold {count} numbers, got {text!r}") from None
    if len(numbers) != count:
        raise InputError(f"{where} must hold {count} numbers, got {len(numbers)}")
    return numbers


def _lines(path: Path) -> list[str]:
    if not path.is_file():
        return []
    return [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _read_camera(path: Path) -> Camera:
    values = _read_ini(path)
    if int(float(values.get("camera_type_int", values.get("camera_model_type", "0")))) != 0:
        raise InputError(f"{path} is an OCam (omnidirectional) camera, which adop does not support")
    for key in ("w", "h", "k"):
        if key not in values:
            raise InputError(f"{path} has no '{key.upper() if key == 'k' else key}' entry")
    fx, fy, cx, cy, skew = _floats(values["k"], 5, f"K in {path}")
    if abs(skew) > 1e-12:
        raise InputError(f"{path} has a non-zero skew ({skew}); adop (like COLMAP) supports zero skew only")
    saiga = _floats(values.get("distortion", "0 0 0 0 0 0 0 0"), 8, f"distortion in {path}")
    opencv = np.zeros(8)
    for saiga_slot, opencv_slot in enumerate(_SAIGA_FROM_OPENCV):
        opencv[opencv_slot] = saiga[saiga_slot]
    return Camera.from_unified(int(values["w"]), int(values["h"]), np.array([fx, fy, cx, cy]), opencv)


def import_adop_scene(scene_dir: Path) -> Scene:
    """Read an ADOP scene folder into a ``Scene`` (image_dir resolved against the folder when relative)."""
    scene_dir = Path(scene_dir)
    if not scene_dir.is_dir():
        raise InputError(f"ADOP scene folder {scene_dir} does not exist")
    dataset = _read_ini(scene_dir / "dataset.ini")
    if int(float(dataset.get("camera_type_int", "0"))) != 0:
        raise InputError(f"{scene_dir} uses OCam cameras (camera_type_int=1), which adop does not support")
    camera_files = dataset.get("camera_files", "camera.ini").split()
    cameras = [_read_camera(scene_dir / name) for name in camera_files]

    names = _lines(scene_dir / "images.txt")
    pose_lines = _lines(scene_dir / "poses.txt")
    if not pose_lines:
        raise InputError(f"{scene_dir / 'poses.txt'} is missing or empty; ADOP scenes require it")
    if names and len(names) != len(pose_lines):
        raise InputError(f"{scene_dir}: images.txt has {len(names)} lines but poses.txt has {len(pose_lines)}")
    count = len(pose_lines)
    camera_indices = [int(v) for v in _lines(scene_dir / "camera_indices.txt")] or [0] * count
    exposures = [float(v) for v in _lines(scene_dir / "exposure.txt")] or [0.0] * count
    balances = [tuple(_floats(v, 3, "white_balance.txt line")) for v in _lines(scene_dir / "white_balance.txt")]
    for label, values in (("camera_indices.txt", camera_indices), ("exposure.txt", exposures)):
        if len(values) != count:
            raise InputError(f"{scene_dir}: {label} has {len(values)} lines but poses.txt has {count}")
    if balances and len(balances) != count:
        raise InputError(f"{scene_dir}: white_balance.txt has {len(balances)} lines but poses.txt has {count}")

    frames = []
    for i, line in enumerate(pose_lines):
        qx, qy, qz, qw, tx, ty, tz = _floats(line, 7, f"line {i + 1} of poses.txt")
        cam_to_world_rotation = Rotation.from_quat([qx, qy, qz, qw]).as_matrix()
        rotation = cam_to_world_rotation.T
        translation = -rotation @ np.array([tx, ty, tz])
        frames.append(
            Frame(
                name=names[i] if names else f"{i:04d}.jpg",
                camera_index=camera_indices[i],
                rotation=rotation,
                translation=translation,
                exposure_ev=exposures[i],
                white_balance=balances[i] if balances else None,  # type: ignore[arg-type]
            )
        )
    points = read_ply(scene_dir / dataset.get("file_point_cloud", "point_cloud.ply"))
    up = dataset.get("up_vector")
    image_dir = Path(dataset.get("image_dir", "images"))
    return Scene(
        cameras=cameras,
        frames=frames,
        points=points,
        image_dir=image_dir if image_dir.is_absolute() else (scene_dir / image_dir),
        up=tuple(_floats(up, 3, "up_vector in dataset.ini")) if up else None,  # type: ignore[arg-type]
    )


def _camera_ini(camera: Camera) -> str:
    fx, fy, cx, cy = (float(v) for v in camera.intrinsics)
    saiga = [float(camera.distortion[opencv_slot]) for opencv_slot in _SAIGA_FROM_OPENCV]
    return (
        "[SceneCameraParams]\n"
        f"w = {camera.width}\nh = {camera.height}\n"
        "# fx fy cx cy s\n"
        f"K = {fx!r} {fy!r} {cx!r} {cy!r} 0.0\n"
        "# 8 parameter distortion model, saiga order: k1 k2 k3 k4 k5 k6 p1 p2\n"
        f"distortion = {' '.join(repr(float(v)) for v in saiga)}\n"
    )


def export_adop_scene(scene: Scene, out_dir: Path, image_dir: Path | None = None) -> Path:
    """Write ``scene`` as an ADOP scene folder that ADOP's ``adop_train`` can read.

    Args:
        scene: the scene to export (points should have normals; ADOP culls with them).
        out_dir: the folder to create.
        image_dir: where the images are; defaults to the scene's ``image_dir`` made absolute.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    images = image_dir if image_dir is not None else scene.image_dir
    camera_files = [f"camera{i}.ini" for i in range(len(scene.cameras))]
    for name, camera in zip(camera_files, scene.cameras):
        write_text_atomic(out_dir / name, _camera_ini(camera))
    poses = []
    for frame in scene.frames:
        camera_to_world = frame.camera_to_world
        qx, qy, qz, qw = Rotation.from_matrix(camera_to_world[:3, :3]).as_quat()
        tx, ty, tz = camera_to_world[:3, 3]
        poses.append(" ".join(repr(float(v)) for v in (qx, qy, qz, qw, tx, ty, tz)))
    write_text_atomic(out_dir / "poses.txt", "\n".join(poses) + "\n")
    write_text_atomic(out_dir / "images.txt", "\n".join(f.name for f in scene.frames) + "\n")
    write_text_atomic(out_dir / "camera_indices.txt", "\n".join(str(f.camera_index) for f in scene.frames) + "\n")
    write_text_atomic(out_dir / "exposure.txt", "\n".join(repr(f.exposure_ev) for f in scene.frames) + "\n")
    if any(f.white_balance is not None for f in scene.frames):
        rows = [" ".join(repr(float(v)) for v in (f.white_balance or (1.0, 1.0, 1.0))) for f in scene.frames]
        write_text_atomic(out_dir / "white_balance.txt", "\n".join(rows) + "\n")
    write_ply(out_dir / "point_cloud.ply", scene.points, position_dtype="f4")
    up = scene.up if scene.up is not None else (0.0, -1.0, 0.0)
    dataset = (
        "[SceneDatasetParams]\n"
        f"image_dir = {'' if images is None else Path(images).resolve()}\n"
        f"camera_files = {' '.join(camera_files)}\n"
        "file_point_cloud = point_cloud.ply\n"
        "camera_type_int = 0\n"
        f"scene_exposure_value = {scene.exposure_mean!r}\n"
        f"up_vector = {up[0]!r} {up[1]!r} {up[2]!r}\n"
        "render_scale = 1\nznear = 0.1\nzfar = 1000\n"
    )
    write_text_atomic(out_dir / "dataset.ini", dataset)
    return out_dir
