"""Keyframed camera paths: a JSON list of timed poses, interpolated smoothly (instant-ngp / LichtFeld style).

Users want paths they can write without a viewer (nerfstudio #3322, hierarchical-3d-gaussians #134), so the keyframe
file is small and readable::

    {"format": "adop.camera_path", "version": 1, "kind": "keyframes",
     "width": 1920, "height": 1080, "fps": 24,
     "timing": "keyframes",            # or "constant_speed" (optional, default "keyframes")
     "up": [0, 0, 1],                  # world up for look_at keyframes (optional; a keyframe may give its own)
     "fov_deg": 45,                    # default lens (optional): fov_deg | focal_px | focal_mm
     "sensor_width_mm": 36,            # for focal_mm (optional, default 36: full frame)
     "keyframes": [
       {"time": 0.0, "position": [x, y, z], "quaternion": [qx, qy, qz, qw], "fov_deg": 45, "easing": "linear"},
       {"time": 2.5, "position": [x, y, z], "look_at": [x, y, z], "focal_mm": 35, "easing": "ease_in_out"}]}

* ``time``: seconds, strictly increasing. Frames are at ``time[0] + i / fps`` up to the last keyframe time.
* ``position``: camera centre in world coordinates.
* Orientation: ``quaternion`` — the **world→camera** rotation (OpenCV axes, docs/conventions.md) in scipy order
  ``[x, y, z, w]`` — or ``look_at`` (a world point) with ``up``. When *every* keyframe uses ``look_at``, the aim
  point itself is interpolated (same spline as positions) and each frame looks exactly at it, so a camera tracking
  one point never drifts off it between keyframes.
* Lens: ``fov_deg`` (vertical), ``focal_px`` (output pixels) or ``focal_mm`` (with ``sensor_width_mm``); a keyframe
  without one uses the top-level default. Focal length is interpolated monotonically (PCHIP), so zooms don't bounce.
* ``easing`` shapes the segment that *starts* at this keyframe: ``linear``, ``ease_in``, ``ease_out``,
  ``ease_in_out`` (sine-shaped; the eased end comes to rest). Default ``linear``.

Interpolation: positions by a C¹ cubic Hermite spline with Bessel (non-uniform Catmull–Rom) tangents, rotations by
scipy's C² ``RotationSpline`` (squad's role), both with the keyframe times as knots; with ``timing: "keyframes"``
every keyframe is reached exactly at its time, and linear segments are C¹ in time across keyframes. With
``timing: "constant_speed"`` the same curve is walked at one speed from the first to the last keyframe time (the
keyframes are still passed through, at the times the speed gives; easing is ignored).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Mapping
from typing import Any

import numpy as np
from scipy.spatial.transform import Rotation

from adop.errors import InputError
from adop.paths._curves import (
    EASINGS,
    arc_length_table,
    ease,
    eval_rotations,
    position_spline,
    rotation_spline,
    scalar_spline,
    tau_at_arc_lengths,
)
from adop.paths.camera_path import (
    FORMAT_NAME,
    FORMAT_VERSION,
    CameraPath,
    look_at,
    read_json_file,
    require_array,
    require_int,
    require_number,
)

logger = logging.getLogger(__name__)

_LENS_KEYS = ("fov_deg", "focal_px", "focal_mm")


def _focal_px(doc: Mapping[str, Any], height: int, width: int, sensor_mm: float, source: str, where: str) -> float:
    given = [k for k in _LENS_KEYS if k in doc]
    if len(given) > 1:
        raise InputError(f"{source}: {where or 'top level'} gives {' and '.join(given)}; give only one lens field")
    key = given[0]
    val = require_number(doc, key, source, where)
    if key == "fov_deg":
        if not 0 < val < 180:
            raise InputError(f"{source}: field '{where}.fov_deg' must be in (0, 180) degrees, got {val}")
        return 0.5 * height / math.tan(math.radians(val) / 2)
    if val <= 0:
        raise InputError(f"{source}: field '{where}.{key}' must be positive, got {val}")
    return val if key == "focal_px" else val / sensor_mm * width


def _parse_keyframes(doc: Mapping[str, Any], source: str) -> dict[str, Any]:
    """Validate the document and return arrays: times, positions, rotations (scipy), focal (fy px), easings."""
    width, height = require_int(doc, "width", source), require_int(doc, "height", source)
    fps = require_number(doc, "fps", source)
    if fps <= 0:
        raise InputError(f"{source}: field 'fps' must be positive, got {fps}")
    timing = doc.get("timing", "keyframes")
    if timing not in ("keyframes", "constant_speed"):
        raise InputError(f"{source}: field 'timing' must be 'keyframes' or 'constant_speed', got {timing!r}")
    sensor_mm = require_number(doc, "sensor_width_mm", source) if "sensor_width_mm" in doc else 36.0
    keys = doc.get("keyframes")
    if not isinstance(keys, list) or len(keys) < 2:
        raise InputError(f"{source}: field 'keyframes' must be a list of at least 2 keyframes; add more keyframes")
    default_focal = _focal_px(doc, height, width, sensor_mm, source, "") if any(k in doc for k in _LENS_KEYS) else None
    times, positions, quats, focals, easings, aims = [], [], [], [], [], []
    for i, kf in enumerate(keys):
        where = f"keyframes[{i}]"
        if not isinstance(kf, Mapping):
            raise InputError(f"{source}: {where} must be an object with time, position and an orientation")
        times.append(require_number(kf, "time", source, where))
        pos = require_array(kf, "position", (3,), source, where)
        positions.append(pos)
        if ("quaternion" in kf) == ("look_at" in kf):
            raise InputError(
                f"{source}: {where} needs exactly one of 'quaternion' ([x,y,z,w], world→camera) "
                "and 'look_at' (a world point)"
            )
        if "quaternion" in kf:
            q = require_array(kf, "quaternion", (4,), source, where)
            if np.linalg.norm(q) < 1e-9:
                raise InputError(f"{source}: field '{where}.quaternion' is zero; give a unit quaternion [x,y,z,w]")
            quats.append(q / np.linalg.norm(q))
            aims.append(None)
        else:
            target = require_array(kf, "look_at", (3,), source, where)
            up_doc = kf if "up" in kf else doc
            if "up" not in up_doc:
                raise InputError(
                    f"{source}: {where} uses 'look_at' but neither it nor the top level gives 'up'; "
                    'add "up": [x, y, z] (the world direction that should be up on screen)'
                )
            up = require_array(up_doc, "up", (3,), source, where if up_doc is kf else "")
            try:
                rot, _ = look_at(pos, target, up)
            except InputError as exc:
                raise InputError(f"{source}: {where}: {exc}") from exc
            quats.append(Rotation.from_matrix(rot[0]).as_quat())
            aims.append((target, up / np.linalg.norm(up)))
        if any(k in kf for k in _LENS_KEYS):
            focals.append(_focal_px(kf, height, width, sensor_mm, source, where))
        elif default_focal is not None:
            focals.append(default_focal)
        else:
            raise InputError(f"{source}: {where} has no lens; give fov_deg, focal_px or focal_mm on it or at the top")
        easing = kf.get("easing", "linear")
        if easing not in EASINGS:
            raise InputError(f"{source}: field '{where}.easing' must be one of {', '.join(EASINGS)}, got {easing!r}")
        easings.append(easing)
    t = np.array(times)
    if (np.diff(t) <= 0).any():
        bad = int(np.argmax(np.diff(t) <= 0)) + 1
        raise InputError(
            f"{source}: keyframes[{bad}].time ({t[bad]}) is not after the previous keyframe's "
            f"({t[bad - 1]}); keyframe times must increase strictly"
        )
    q = np.array(quats)
    return dict(
        width=width,
        height=height,
        fps=fps,
        timing=timing,
        times=t,
        positions=np.array(positions),
        rotations=Rotation.from_quat(q),
        focals=np.array(focals),
        easings=easings,
        aims=None if any(a is None for a in aims) else aims,
    )


def keyframe_path(doc: Mapping[str, Any] | str | os.PathLike[str], *, source: str | None = None) -> CameraPath:
    """Evaluate a keyframe document (see the module docstring) into a per-frame `CameraPath`.

    Args:
        doc: the parsed JSON document or the name of the JSON file.
        source: name used in error messages (defaults to the file name).

    Returns:
        A `CameraPath` with ``floor((t_last - t_first) * fps) + 1`` frames that keeps ``doc`` for `to_json`.

    Raises:
        InputError: bad JSON, a missing or invalid field (named with its keyframe index), times not increasing.
    """
    if not isinstance(doc, Mapping):
        source = source or str(doc)
        doc = read_json_file(doc)
    source = source or "<keyframes>"
    k = _parse_keyframes(doc, source)
    knots, pos = k["times"], k["positions"]
    spline = position_spline(knots, pos)
    rspline = rotation_spline(knots, k["rotations"])
    fspline = scalar_spline(knots, k["focals"])
    span = knots[-1] - knots[0]
    n_frames = int(math.floor(span * k["fps"] + 1e-6)) + 1
    t = knots[0] + np.arange(n_frames) / k["fps"]
    if k["timing"] == "keyframes":
        tau = _eased_parameter(knots, k["easings"], t)
    else:
        if any(e != "linear" for e in k["easings"]):
            logger.warning("%s: timing is constant_speed, so per-keyframe easing is ignored", source)
        tau = _constant_speed_parameter(spline, knots, t, source)
    eye = spline(tau)
    if k["aims"] is not None:  # every keyframe aims at a point: track the interpolated point, exactly
        target = position_spline(knots, np.array([a[0] for a in k["aims"]]))(tau)
        ups = np.array([a[1] for a in k["aims"]])
        up = np.stack([np.interp(tau, knots, ups[:, j]) for j in range(3)], axis=1)
        try:
            rot, _ = look_at(eye, target, up)
        except InputError as exc:
            raise InputError(f"{source}: between keyframes, {exc}") from exc
    else:
        rot = eval_rotations(knots, k["rotations"], rspline, tau).as_matrix()
    trans = -np.einsum("fij,fj->fi", rot, eye)
    fy = fspline(tau)
    intr = np.stack([fy, fy, np.full_like(fy, k["width"] / 2), np.full_like(fy, k["height"] / 2)], axis=1)
    keep = {key: val for key, val in doc.items() if key != "frames"}
    keep.update(format=FORMAT_NAME, version=FORMAT_VERSION, kind="keyframes")
    return CameraPath(rot, trans, intr, k["width"], k["height"], k["fps"], keyframes=keep)


def _eased_parameter(knots: np.ndarray, easings: list[str], t: np.ndarray) -> np.ndarray:
    """Spline parameter for each frame time: per segment, the eased fraction of the segment's time span."""
    seg = np.clip(np.searchsorted(knots, t, side="right") - 1, 0, len(knots) - 2)
    tau = np.empty_like(t)
    for s in np.unique(seg):
        m = seg == s
        h = knots[s + 1] - knots[s]
        tau[m] = knots[s] + h * ease((t[m] - knots[s]) / h, easings[s])
    return tau


def _constant_speed_parameter(spline: Any, knots: np.ndarray, t: np.ndarray, source: str) -> np.ndarray:
    """Spline parameter for each frame time such that the camera covers equal arc length per frame."""
    tau_table, s_table = arc_length_table(spline, knots)
    if s_table[-1] < 1e-12:
        raise InputError(
            f"{source}: timing 'constant_speed' needs keyframes at different positions; "
            "these do not move (use timing 'keyframes' for a pan or zoom in place)"
        )
    frac = (t - knots[0]) / (knots[-1] - knots[0])
    return tau_at_arc_lengths(tau_table, s_table, np.clip(frac, 0, 1) * s_table[-1])


def keyframes_from_path(path: CameraPath, count: int = 8, *, timing: str = "constant_speed") -> dict[str, Any]:
    """An editable keyframe document sampled from any path (e.g. a generated orbit), for hand tweaking.

    ``count`` frames spread evenly over the path (first and last included) become keyframes with their pose and
    focal length. Evaluating the document gives back a path close to ``path`` (exactly through the samples); a
    principal point off-centre or non-square pixels are not representable and are dropped.

    Args:
        path: the path to sample.
        count: number of keyframes (at least 2).
        timing: the document's ``timing``; ``constant_speed`` suits the generators, which walk at constant speed.
    """
    if count < 2:
        raise InputError(f"keyframes_from_path needs count >= 2, got {count}")
    n = len(path)
    if n < 2:
        raise InputError("a path of one frame cannot be turned into keyframes")
    idx = np.unique(np.round(np.linspace(0, n - 1, min(count, n))).astype(int))
    centres = path.centers()
    quats = Rotation.from_matrix(path.rotations[idx]).as_quat()
    keys = [
        {
            "time": float(i / path.fps),
            "position": centres[i].tolist(),
            "quaternion": q.tolist(),
            "focal_px": float(path.intrinsics[i, 1]),
            "easing": "linear",
        }
        for i, q in zip(idx, quats, strict=False)
    ]
    return {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "kind": "keyframes",
        "width": path.width,
        "height": path.height,
        "fps": path.fps,
        "timing": timing,
        "keyframes": keys,
    }
