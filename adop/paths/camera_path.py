"""The rendered camera path: one pinhole camera per output frame, and its editable JSON file.

A `CameraPath` is what the renderer consumes; every generator in `adop.paths` returns one. Poses are world→camera
with OpenCV axes (docs/conventions.md), the same as the scene's frames, so a path can be checked against the capture
cameras directly.

JSON file format (``"format": "adop.camera_path"``, ``"version": 1``), chosen to be edited by hand or by script
(nerfstudio #2420, #3322: users want paths on disk, not only in a viewer):

``kind: "frames"`` — exact, one entry per output frame::

    {"format": "adop.camera_path", "version": 1, "kind": "frames",
     "width": 1920, "height": 1080, "fps": 24.0,
     "frames": [{"rotation": [[...], [...], [...]],   # world→camera 3×3, OpenCV axes
                 "translation": [tx, ty, tz],          # x_cam = R @ x_world + t
                 "intrinsics": [fx, fy, cx, cy]}, ...]}  # PINHOLE, pixels, centres at +0.5

``kind: "keyframes"`` — the source of a keyframed path; see `adop.paths.keyframes` for its fields. A file written by
`CameraPath.to_json` for a keyframed path holds both blocks: ``kind`` names the authoritative one, and ``frames`` is
then a convenience copy for other tools (edit ``keyframes``; the frames are recomputed on load).
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adop.errors import InputError, ShapeError

FORMAT_NAME = "adop.camera_path"
FORMAT_VERSION = 1


@dataclass(frozen=True, eq=False)  # arrays: compare fields explicitly, not with ==
class CameraPath:
    """A camera per output frame: the renderer's whole input besides the trained model.

    Attributes:
        rotations: ``[F, 3, 3]`` world→camera rotations (OpenCV axes), float64.
        translations: ``[F, 3]`` world→camera translations, float64.
        intrinsics: ``[F, 4]`` PINHOLE ``(fx, fy, cx, cy)`` in output pixels, per frame so that zooms are possible.
        width: output width in pixels.
        height: output height in pixels.
        fps: frames per second of the output.
        keyframes: the keyframe document (the JSON ``keyframes`` mapping) the path was evaluated from, kept so that
            `to_json` writes back an editable source; ``None`` for generated paths.
    """

    rotations: np.ndarray
    translations: np.ndarray
    intrinsics: np.ndarray
    width: int
    height: int
    fps: float
    keyframes: Mapping[str, Any] | None = None

    def __post_init__(self) -> None:
        rot = np.asarray(self.rotations, dtype=np.float64)
        trans = np.asarray(self.translations, dtype=np.float64)
        intr = np.asarray(self.intrinsics, dtype=np.float64)
        if rot.ndim != 3 or rot.shape[1:] != (3, 3) or rot.shape[0] < 1:
            raise ShapeError(f"CameraPath.rotations must be [F,3,3] with F >= 1, got {list(rot.shape)}")
        n = rot.shape[0]
        if trans.shape != (n, 3):
            raise ShapeError(f"CameraPath.translations must be [{n},3], got {list(trans.shape)}")
        if intr.shape != (n, 4):
            raise ShapeError(f"CameraPath.intrinsics must be [{n},4] (fx, fy, cx, cy), got {list(intr.shape)}")
        if not (np.isfinite(rot).all() and np.isfinite(trans).all() and np.isfinite(intr).all()):
            raise InputError("camera path holds NaN or infinite values; regenerate it from valid cameras")
        if int(self.width) < 1 or int(self.height) < 1:
            raise InputError(f"camera path resolution must be positive, got {self.width}x{self.height}")
        if not (self.fps > 0 and math.isfinite(self.fps)):
            raise InputError(f"camera path fps must be a positive number, got {self.fps}")
        if (intr[:, :2] <= 0).any():
            raise InputError("camera path focal lengths (fx, fy) must be positive")
        err = np.abs(np.einsum("fij,fkj->fik", rot, rot) - np.eye(3)).max()
        if err > 1e-6 or (np.linalg.det(rot) < 0).any():
            raise InputError(
                f"camera path rotations must be proper rotations (R Rᵀ = I, det = +1); max error {err:.2e}"
            )
        for name, arr in (("rotations", rot), ("translations", trans), ("intrinsics", intr)):
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        object.__setattr__(self, "width", int(self.width))
        object.__setattr__(self, "height", int(self.height))
        object.__setattr__(self, "fps", float(self.fps))

    def __len__(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def seconds(self) -> float:
        """Duration in seconds (frames / fps)."""
        return len(self) / self.fps

    def centers(self) -> np.ndarray:
        """Camera centres in world coordinates, ``[F, 3]`` (``-Rᵀ t``)."""
        return -np.einsum("fji,fj->fi", self.rotations, self.translations)

    def world_to_camera(self) -> np.ndarray:
        """Homogeneous world→camera matrices ``[F, 4, 4]`` (OpenCV axes)."""
        out = np.zeros((len(self), 4, 4))
        out[:, :3, :3] = self.rotations
        out[:, :3, 3] = self.translations
        out[:, 3, 3] = 1.0
        return out

    def vertical_fov_deg(self) -> np.ndarray:
        """Vertical field of view per frame in degrees, ``[F]`` (from fy and the height)."""
        return np.degrees(2.0 * np.arctan(0.5 * self.height / self.intrinsics[:, 1]))

    def to_json(self) -> dict[str, Any]:
        """The path as a JSON-ready dict (see the module docstring); keyframed paths keep their keyframes."""
        frames = [
            {"rotation": r.tolist(), "translation": t.tolist(), "intrinsics": k.tolist()}
            for r, t, k in zip(self.rotations, self.translations, self.intrinsics, strict=False)
        ]
        doc: dict[str, Any] = {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "kind": "frames",
            "width": self.width,
            "height": self.height,
            "fps": self.fps,
        }
        if self.keyframes is not None:
            doc.update({k: v for k, v in self.keyframes.items() if k not in doc})
            doc["kind"] = "keyframes"
        doc["frames"] = frames
        return doc

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | str | os.PathLike[str], *, source: str | None = None) -> CameraPath:
        """Read a ``kind: "frames"`` path (a dict, or a file name); ``adop.paths.load_camera_path`` reads every kind.

        Args:
            data: the parsed document, or the path of a ``.json`` file.
            source: name used in error messages (defaults to the file name).

        Raises:
            InputError: unreadable file, bad JSON, another format or kind, or a missing/invalid field (the message
                names the file and the field).
        """
        if not isinstance(data, Mapping):
            source = source or str(data)
            data = read_json_file(data)
        source = source or "<camera path>"
        check_format(data, source)
        if data.get("kind") != "frames":
            raise InputError(f"{source}: field 'kind' must be 'frames', got {data.get('kind')!r}")
        return _frames_from_json(data, source)

    def save(self, file: str | os.PathLike[str]) -> Path:
        """Write `to_json` to ``file`` atomically (temporary name, then rename) and return the path."""
        from adop.storage import write_json_atomic

        return write_json_atomic(file, self.to_json())


def check_format(data: Mapping[str, Any], source: str) -> None:
    """Raise ``InputError`` unless ``data`` is an ``adop.camera_path`` document of a version this adop reads."""
    if data.get("format") != FORMAT_NAME:
        raise InputError(
            f"{source}: field 'format' is {data.get('format')!r}, expected {FORMAT_NAME!r} "
            "(or a nerfstudio camera_path.json with a 'camera_path' list); check that this is a camera path file"
        )
    if data.get("version") != FORMAT_VERSION:
        raise InputError(f"{source}: field 'version' is {data.get('version')!r}; this adop reads version 1")


def _frames_from_json(data: Mapping[str, Any], source: str) -> CameraPath:
    width, height = require_int(data, "width", source), require_int(data, "height", source)
    fps = require_number(data, "fps", source)
    frames = data.get("frames")
    if not isinstance(frames, list) or not frames:
        raise InputError(f"{source}: field 'frames' must be a non-empty list of {{rotation, translation, intrinsics}}")
    rots, trans, intr = [], [], []
    for i, fr in enumerate(frames):
        where = f"frames[{i}]"
        if not isinstance(fr, Mapping):
            raise InputError(f"{source}: {where} must be an object with rotation, translation, intrinsics")
        rots.append(require_array(fr, "rotation", (3, 3), source, where))
        trans.append(require_array(fr, "translation", (3,), source, where))
        intr.append(require_array(fr, "intrinsics", (4,), source, where))
    return CameraPath(np.stack(rots), np.stack(trans), np.stack(intr), width, height, fps)


def look_at(eye: np.ndarray, target: np.ndarray, up: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """World→camera poses (OpenCV axes) of cameras at ``eye`` looking at ``target`` with ``up`` as screen-up.

    Args:
        eye: ``[F, 3]`` or ``[3]`` camera centres.
        target: ``[F, 3]`` or ``[3]`` points to look at.
        up: ``[F, 3]`` or ``[3]`` world direction that should appear up on screen (camera −y).

    Returns:
        ``(R [F,3,3], t [F,3])`` with ``x_cam = R @ x_world + t``.

    Raises:
        InputError: a camera looks along ``up`` (the roll is then undefined) or sits on its target.
    """
    eye, target, up = (np.atleast_2d(np.asarray(a, dtype=np.float64)) for a in (eye, target, up))
    eye, target, up = np.broadcast_arrays(eye, target, up)
    z = target - eye
    zn = np.linalg.norm(z, axis=-1, keepdims=True)
    if (zn < 1e-12).any():
        raise InputError("look-at: a camera sits on its target point; move the target or the camera")
    z = z / zn
    x = np.cross(-up, z)
    xn = np.linalg.norm(x, axis=-1, keepdims=True)
    if (xn < 1e-6 * np.linalg.norm(up, axis=-1, keepdims=True)).any():
        raise InputError("look-at: a camera looks straight along the up vector; give a different 'up' or target")
    x = x / xn
    y = np.cross(z, x)
    rot = np.stack([x, y, z], axis=1)
    return rot, -np.einsum("fij,fj->fi", rot, eye)


def pinhole(width: int, height: int, *, fov_deg: float | None = None, focal_px: float | None = None) -> np.ndarray:
    """PINHOLE ``(fx, fy, cx, cy)`` for square pixels and a centred principal point.

    Exactly one of ``fov_deg`` (vertical field of view) and ``focal_px`` (focal length in output pixels) is given.
    """
    if (fov_deg is None) == (focal_px is None):
        raise InputError("give exactly one of fov_deg (vertical, degrees) and focal_px (pixels)")
    if fov_deg is not None:
        if not 0.0 < fov_deg < 180.0:
            raise InputError(f"vertical field of view must be in (0, 180) degrees, got {fov_deg}")
        focal_px = 0.5 * height / math.tan(math.radians(fov_deg) / 2.0)
    assert focal_px is not None
    if not focal_px > 0:
        raise InputError(f"focal length must be positive, got {focal_px}")
    return np.array([focal_px, focal_px, width / 2.0, height / 2.0])


def read_json_file(file: str | os.PathLike[str]) -> Mapping[str, Any]:
    """Parse a JSON file into a dict, turning I/O and syntax errors into `InputError` naming the file and line."""
    try:
        text = Path(file).read_text(encoding="utf-8")
    except OSError as exc:
        raise InputError(f"{file}: cannot read the camera path file ({exc.strerror or exc}); check the path") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputError(
            f"{file}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); fix the syntax"
        ) from exc
    if not isinstance(data, Mapping):
        raise InputError(f"{file}: the top level must be a JSON object, got {type(data).__name__}")
    return data


def require_number(doc: Mapping[str, Any], key: str, source: str, where: str = "") -> float:
    """``doc[key]`` as a finite float, or an `InputError` naming the file and field."""
    name = f"{where}.{key}" if where else key
    if key not in doc:
        raise InputError(f"{source}: missing field '{name}'; add it (a number)")
    val = doc[key]
    if isinstance(val, bool) or not isinstance(val, (int, float)) or not math.isfinite(val):
        raise InputError(f"{source}: field '{name}' must be a finite number, got {val!r}")
    return float(val)


def require_int(doc: Mapping[str, Any], key: str, source: str, where: str = "") -> int:
    """``doc[key]`` as a positive int, or an `InputError` naming the file and field."""
    val = require_number(doc, key, source, where)
    if val != int(val) or val < 1:
        name = f"{where}.{key}" if where else key
        raise InputError(f"{source}: field '{name}' must be a positive integer, got {val}")
    return int(val)


def require_array(doc: Mapping[str, Any], key: str, shape: tuple[int, ...], source: str, where: str = "") -> np.ndarray:
    """``doc[key]`` as a finite float array of ``shape``, or an `InputError` naming the file and field."""
    name = f"{where}.{key}" if where else key
    if key not in doc:
        raise InputError(f"{source}: missing field '{name}'; add it (numbers, shape {list(shape)})")
    try:
        arr = np.asarray(doc[key], dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"{source}: field '{name}' must hold numbers, shape {list(shape)}") from exc
    if arr.shape != shape or not np.isfinite(arr).all():
        raise InputError(f"{source}: field '{name}' must be finite numbers of shape {list(shape)}, got {doc[key]!r}")
    return arr
