"""How close a reconstructed scene is to ground truth (the synthetic sets), after the best similarity alignment.

SfM recovers poses only up to a similarity (scale, rotation, translation), so the estimated camera centres are first
mapped onto the true ones with Umeyama's least-squares similarity; rotation errors are then the angles of
``R_true^T · R_est · R_align`` and centre errors are distances in ground-truth units. Used by the tests and the
benchmark; numpy only (no torch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from adop.errors import InputError
from adop.scene.types import Scene
from adop.scene.align import similarity_transform as similarity


@dataclass(frozen=True)
class PoseAccuracy:
    """Estimated poses against the truth, in ground-truth units after alignment."""

    frames_compared: int
    frames_true: int
    median_rotation_deg: float
    max_rotation_deg: float
    median_center_error: float
    max_center_error: float
    scene_extent: float
    """Diagonal of the 1st–99th percentile box of the true points (of the true camera centres when none)."""
    camera_extent: float
    """Diagonal of the bounding box of the true camera centres (a stricter yardstick)."""
    focal_ratio: float
    """Median estimated / true focal length over the compared frames."""
    median_pairwise_rotation_deg: float = 0.0
    """Median over all pairs of frames of the angle between the estimated and the true relative rotation: needs no
    alignment, so one badly placed camera cannot hide behind the fit."""
    p90_pairwise_rotation_deg: float = 0.0
    """90th percentile of the same angle."""

    @property
    def median_center_error_relative(self) -> float:
        """Median centre error as a fraction of ``scene_extent``."""
        return self.median_center_error / self.scene_extent if self.scene_extent > 0 else float("inf")

    def to_dict(self) -> dict:
        return {**asdict(self), "median_center_error_relative": self.median_center_error_relative}


def pose_accuracy(estimated: Scene, truth: Scene) -> PoseAccuracy:
    """Compare frames with the same name; raise ``InputError`` when fewer than 3 match."""
    true_frames = {frame.name: frame for frame in truth.frames}
    pairs = [(frame, true_frames[frame.name]) for frame in estimated.frames if frame.name in true_frames]
    if len(pairs) < 3:
        raise InputError(f"only {len(pairs)} frame names match the ground truth; at least 3 are needed to align")
    est_centers = np.array([e.center for e, _ in pairs])
    true_centers = np.array([t.center for _, t in pairs])
    scale, rotation, translation = similarity(est_centers, true_centers)
    aligned = scale * est_centers @ rotation.T + translation
    center_errors = np.linalg.norm(aligned - true_centers, axis=1)
    angles = []
    for est, true in pairs:
        # world_true = s·A·world_est + t, so the estimated camera's rotation in true world axes is R_est·A^T
        relative = true.rotation.T @ (est.rotation @ rotation.T)
        angles.append(np.degrees(np.arccos(np.clip((np.trace(relative) - 1.0) / 2.0, -1.0, 1.0))))
    angles_arr = np.array(angles)
    pairwise = pairwise_rotation_errors([e.rotation for e, _ in pairs], [t.rotation for _, t in pairs])
    true_points = truth.points.positions
    source = true_points if len(true_points) >= 10 else truth.centers()
    low, high = np.percentile(source, [1, 99], axis=0)
    all_true = truth.centers()
    focal = [
        estimated.cameras[e.camera_index].intrinsics[0] / truth.cameras[t.camera_index].intrinsics[0] for e, t in pairs
    ]
    return PoseAccuracy(
        frames_compared=len(pairs),
        frames_true=len(truth.frames),
        median_rotation_deg=float(np.median(angles_arr)),
        max_rotation_deg=float(angles_arr.max()),
        median_center_error=float(np.median(center_errors)),
        max_center_error=float(center_errors.max()),
        scene_extent=float(np.linalg.norm(high - low)),
        camera_extent=float(np.linalg.norm(all_true.max(0) - all_true.min(0))),
        focal_ratio=float(np.median(focal)),
        median_pairwise_rotation_deg=float(np.median(pairwise)),
        p90_pairwise_rotation_deg=float(np.percentile(pairwise, 90)),
    )


def pairwise_rotation_errors(estimated: list[np.ndarray], truth: list[np.ndarray]) -> np.ndarray:
    """Angles (degrees) between ``R_i R_jᵀ`` estimated and true, for every pair ``i < j`` of world→camera rotations."""
    errors = []
    for i in range(len(estimated)):
        for j in range(i + 1, len(estimated)):
            difference = (truth[i] @ truth[j].T).T @ (estimated[i] @ estimated[j].T)
            errors.append(np.degrees(np.arccos(np.clip((np.trace(difference) - 1.0) / 2.0, -1.0, 1.0))))
    return np.array(errors)
