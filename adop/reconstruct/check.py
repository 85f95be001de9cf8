"""An independent check of an SfM model: does the evidence in the feature database agree with it?

A mapper's own figures (registered images, mean reprojection error) are what its bundle adjustment minimised, so a
wrong model can look as good as a right one: a global mapper with a bad focal-length guess converged to pairwise
rotations off by 13° at the median while reporting 0.9 px. This check uses evidence the bundle adjustment did not
produce:

* **Two-view rotations.** For every well-supported verified pair (an essential or fundamental matrix with enough
  inliers; homography-explained pairs carry no reliable rotation), the relative pose is estimated again from the
  database's inlier matches alone (LO-RANSAC, the model's intrinsics) and its rotation compared with the model's
  relative rotation. A right model agrees on nearly every pair within a few degrees.
* **Focal length** against the EXIF prior, where the photos have one (a note, not a verdict: EXIF can be wrong).
* **Collapsed cameras**: many cameras on one spot is a known failure of global positioning.
* **Explained matches**: the fraction of the checked pairs' verified matches that the model triangulates as one point.

The result, with a verdict and the reasons for it, goes into ``sfm_report.json``, the reconstruction summary and the
quick-look caption. ``adop.reconstruct.sfm`` uses it to choose between mappers and to refuse a model none supports.
"""

from __future__ import annotations

import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from adop.native import pycolmap
from scipy.spatial import cKDTree

from adop.reconstruct.config import SfmConfig

_RELIABLE = {int(pycolmap.TwoViewGeometryConfiguration.CALIBRATED),
             int(pycolmap.TwoViewGeometryConfiguration.UNCALIBRATED)}
"""Two-view configurations whose matches determine a relative rotation (not PLANAR_OR_PANORAMIC etc.)."""
_MAX_MATCHES = 500
"""Inlier matches per pair used by the check (a seeded random subset of larger sets)."""


@dataclass(frozen=True)
class ModelCheck:
    """The evidence for (or against) one SfM model and the verdict it leads to."""

    consistent: bool
    """The verdict: the database's evidence supports the model."""
    reasons: tuple[str, ...]
    """Why the model is not consistent (empty when it is), one sentence each."""
    notes: tuple[str, ...]
    """Doubts that do not decide the verdict on their own (e.g. a focal length far from an EXIF value that may be
    wrong: phones and re-saved copies often carry a 35 mm equivalent that does not match the pixels)."""
    pairs_checked: int
    """Well-supported verified pairs between registered images whose rotation was compared."""
    pairs_agreeing: int
    """Of those, pairs whose two-view rotation agrees with the model within ``check_rotation_tolerance``."""
    median_disagreement_deg: float
    """Median angle between the two-view and the model's relative rotation over the checked pairs."""
    p90_disagreement_deg: float
    """90th percentile of the same angle."""
    explained_matches: float
    """Fraction of the checked pairs' verified inlier matches that the model triangulates as one 3-D point."""
    focal_prior_ratio: float | None
    """Median model focal length / EXIF prior focal length over the cameras with a prior (None: no prior)."""
    cameras_without_focal_prior: int
    """Cameras whose focal length started from a guess (1.2 × the long side), not from EXIF."""
    collapsed_cameras: int
    """Registered images whose camera centre (almost) coincides with another one's."""
    inconsistent_images: tuple[str, ...]
    """Images most of whose checked pairs disagree with the model."""
    seconds: float

    @property
    def agreement(self) -> float:
        """``pairs_agreeing / pairs_checked`` (0 when nothing could be checked)."""
        return self.pairs_agreeing / self.pairs_checked if self.pairs_checked else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "agreement": self.agreement, "reasons": list(self.reasons), "notes": list(self.notes),
                "inconsistent_images": list(self.inconsistent_images)}

    def summary(self) -> str:
        """One line for reports and captions."""
        verdict = "consistent" if self.consistent else "INCONSISTENT"
        return (f"check: {verdict}; {self.pairs_agreeing}/{self.pairs_checked} two-view rotations agree "
                f"(median {self.median_disagreement_deg:.2f}°, p90 {self.p90_disagreement_deg:.2f}°)")


def _angle_deg(rotation: np.ndarray) -> float:
    return float(np.degrees(np.arccos(np.clip((np.trace(rotation) - 1.0) / 2.0, -1.0, 1.0))))


def check_model(model: pycolmap.Reconstruction, database: Path, config: SfmConfig = SfmConfig()) -> ModelCheck:
    """Weigh ``model`` against the verified two-view geometries in ``database`` (module docstring)."""
    started = time.perf_counter()
    registered = {int(i) for i in model.reg_image_ids()}
    db = pycolmap.Database.open(str(database))
    try:
        pair_ids, geometries = db.read_two_view_geometries()
        candidates = []
        for pair_id, geometry in zip(pair_ids, geometries):
            a, b = (int(i) for i in pycolmap.pair_id_to_image_pair(pair_id))
            inliers = geometry.inlier_matches
            if (a in registered and b in registered and int(geometry.config) in _RELIABLE
                    and len(inliers) >= config.check_min_pair_inliers):
                candidates.append((len(inliers), a, b, inliers))
        candidates.sort(key=lambda c: -c[0])
        candidates = candidates[: config.check_max_pairs]
        keypoints = {i: db.read_keypoints(i)[:, :2].astype(np.float64)
                     for i in {image for _, a, b, _ in candidates for image in (a, b)}}
        prior_focals = {int(c.camera_id): (bool(c.has_prior_focal_length), float(c.mean_focal_length()))
                        for c in db.read_all_cameras()}
    finally:
        db.close()

    ransac = pycolmap.RANSACOptions()
    ransac.max_error, ransac.random_seed = 2.0, config.seed
    ransac.min_num_trials = 100  # verified inliers: nearly all are inliers, so RANSAC settles in few trials
    rng = np.random.default_rng(config.seed)
    disagreements: list[float] = []
    per_image: dict[int, list[bool]] = defaultdict(list)
    tracks: dict[int, np.ndarray] = {}
    explained = total = 0
    for _, a, b, inliers in candidates:
        if len(inliers) > _MAX_MATCHES:  # a few hundred inliers fix a rotation; thousands only cost time
            inliers = inliers[np.sort(rng.choice(len(inliers), _MAX_MATCHES, replace=False))]
        image_a, image_b = model.image(a), model.image(b)
        estimate = pycolmap.estimate_relative_pose(
            model.cameras[image_a.camera_id], keypoints[a][inliers[:, 0]],
            model.cameras[image_b.camera_id], keypoints[b][inliers[:, 1]], ransac,
        )
        if estimate is None:
            angle = 180.0
        else:
            two_view = estimate["cam2_from_cam1"].rotation.matrix()
            relative = image_b.cam_from_world().rotation.matrix() @ image_a.cam_from_world().rotation.matrix().T
            angle = _angle_deg(two_view.T @ relative)
        disagreements.append(angle)
        agrees = angle <= config.check_rotation_tolerance
        per_image[a].append(agrees)
        per_image[b].append(agrees)
        for image in (image_a, image_b):
            if image.image_id not in tracks:
                tracks[image.image_id] = np.array(
                    [p.point3D_id if p.has_point3D() else -1 for p in image.points2D], dtype=np.int64)
        ids_a, ids_b = tracks[a][inliers[:, 0]], tracks[b][inliers[:, 1]]
        explained += int(np.sum((ids_a >= 0) & (ids_a == ids_b)))
        total += len(inliers)

    focal_ratios = [float(model.cameras[cid].mean_focal_length()) / focal
                    for cid, (has_prior, focal) in prior_focals.items()
                    if has_prior and cid in model.cameras and focal > 0]
    without_prior = sum(1 for cid, (has_prior, _) in prior_focals.items() if not has_prior and cid in model.cameras)
    collapsed = _collapsed_cameras(model)
    inconsistent = tuple(sorted(
        model.image(i).name for i, votes in per_image.items() if len(votes) >= 2 and sum(votes) < len(votes) / 2
    ))
    angles = np.array(disagreements) if disagreements else np.array([np.nan])
    agreeing = int(np.sum(angles <= config.check_rotation_tolerance))
    focal_ratio = float(np.median(focal_ratios)) if focal_ratios else None

    reasons = []
    if not candidates:
        reasons.append("no verified image pair is strong enough to check the model against")
    elif agreeing < config.check_min_agreement * len(candidates):
        reasons.append(f"only {agreeing} of {len(candidates)} well-matched image pairs agree with the model's relative "
                       f"rotations within {config.check_rotation_tolerance:g}° (median disagreement "
                       f"{np.median(angles):.1f}°)")
    notes = []
    if focal_ratio is not None and abs(focal_ratio - 1.0) > config.check_max_focal_deviation:
        notes.append(f"the model's focal length is {focal_ratio:.2f}× the EXIF focal length")
    if collapsed > config.check_max_collapsed_fraction * len(registered):
        reasons.append(f"{collapsed} of {len(registered)} cameras sit on top of another camera")
    return ModelCheck(
        consistent=not reasons, reasons=tuple(reasons), notes=tuple(notes), pairs_checked=len(candidates), pairs_agreeing=agreeing,
        median_disagreement_deg=float(np.median(angles)), p90_disagreement_deg=float(np.percentile(angles, 90)),
        explained_matches=explained / total if total else 0.0, focal_prior_ratio=focal_ratio,
        cameras_without_focal_prior=without_prior, collapsed_cameras=collapsed,
        inconsistent_images=inconsistent, seconds=time.perf_counter() - started,
    )


def _collapsed_cameras(model: pycolmap.Reconstruction) -> int:
    """Cameras whose nearest other centre is closer than 1/1000 of the centres' median spread."""
    centers = np.array([model.image(i).projection_center() for i in model.reg_image_ids()])
    if len(centers) < 3:
        return 0
    spread = float(np.median(np.linalg.norm(centers - np.median(centers, axis=0), axis=1)))
    nearest = cKDTree(centers).query(centers, k=2)[0][:, 1]  # k=1 is the centre itself
    return int(np.sum(nearest < 1e-3 * max(spread, 1e-12)))
