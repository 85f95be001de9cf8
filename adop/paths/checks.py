"""Sanity checks of a camera path against the scene's points, before spending GPU time on rendering it.

A hand-made or imported path can put the camera inside the geometry or point it away from everything (nerfstudio
#2512: convention and schema errors render "wrongly", i.e. black). Such frames still render, but the user should be
told which ones, up front; the render stage logs this report as a warning.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from adop.errors import ShapeError
from adop.paths.camera_path import CameraPath

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class PathReport:
    """Frames (0-based indices into the path) that deserve a look.

    Attributes:
        empty_frames: frames in which no scene point projects into the image (camera looks away or from behind).
        too_close_frames: frames with scene points nearer than ``near`` in view (camera probably inside geometry).
        near: the distance used for ``too_close_frames``, in world units.
    """

    empty_frames: tuple[int, ...]
    too_close_frames: tuple[int, ...]
    near: float

    @property
    def ok(self) -> bool:
        """True when no frame was flagged."""
        return not (self.empty_frames or self.too_close_frames)


def check_path(
    path: CameraPath,
    points: np.ndarray,  # [N, 3] world positions, e.g. the point cloud
    *,
    near: float | None = None,
    max_points: int = 20000,
    seed: int = 0,
) -> PathReport:
    """Flag frames that see no points, or see points closer than ``near``, and log a warning naming them.

    Args:
        path: the camera path.
        points: ``[N, 3]`` scene points; a random subset of ``max_points`` is used (enough to tell "nothing in view").
        near: closeness threshold; default 1 % of the points' bounding-box diagonal.
        max_points: subsample size.
        seed: subsample seed, for reproducible reports.
    """
    pts = np.asarray(points, dtype=np.float64)
    if pts.ndim != 2 or pts.shape[1] != 3 or len(pts) == 0:
        raise ShapeError(f"points must be [N,3] with N >= 1, got {list(pts.shape)}")
    if len(pts) > max_points:
        pts = pts[np.random.default_rng(seed).choice(len(pts), max_points, replace=False)]
    if near is None:
        near = 0.01 * float(np.linalg.norm(pts.max(axis=0) - pts.min(axis=0)))
    empty, close = [], []
    for i, (rot, t, k) in enumerate(zip(path.rotations, path.translations, path.intrinsics, strict=True)):
        cam = pts @ rot.T + t
        z = cam[:, 2]
        front = z > 1e-9
        u = k[0] * cam[front, 0] / z[front] + k[2]
        v = k[1] * cam[front, 1] / z[front] + k[3]
        inside = (u >= 0) & (u < path.width) & (v >= 0) & (v < path.height)
        if not inside.any():
            empty.append(i)
        elif z[front][inside].min() < near:
            close.append(i)
    report = PathReport(tuple(empty), tuple(close), near)
    if empty:
        logger.warning(
            "%d of %d frames see no scene point (first: frame index %d); they will render empty",
            len(empty),
            len(path),
            empty[0],
        )
    if close:
        logger.warning(
            "%d of %d frames have points closer than %.3g (first: frame index %d); the camera may be "
            "inside the geometry",
            len(close),
            len(path),
            near,
            close[0],
        )
    return report
