"""How good a fused cloud is against a known surface (synthetic sets), ETH3D-style (Schöps et al. 2017).

accuracy = fraction of fused points within τ of the true surface; completeness = fraction of the *visible* true
surface samples within τ of a fused point; F-score = their harmonic mean. The fused cloud is in SfM coordinates, so it
is first mapped onto the truth by the similarity that best aligns the estimated camera centres with the true ones.
"True surface" is a dense area-uniform sample of it; a sample counts as visible when it is the nearest surface along
its pixel's ray in at least ``min_views`` of the true cameras (a z-buffer of the samples themselves).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from scipy.spatial import cKDTree

from adop.errors import InputError
from adop.scene.align import similarity_transform
from adop.scene.types import Scene


@dataclass(frozen=True)
class SurfaceScores:
    """Accuracy, completeness and F-score of a cloud at one tolerance."""

    tolerance: float
    """τ in ground-truth units."""
    tolerance_relative: float
    """τ as a fraction of the scene extent."""
    accuracy: float
    completeness: float
    fscore: float
    points: int
    visible_samples: int

    def to_dict(self) -> dict:
        return asdict(self)


def align_to_truth(points: np.ndarray, estimated: Scene, truth: Scene) -> np.ndarray:
    """``points`` (in the estimated scene's frame) in the truth's frame, via the camera centres of same-named
    frames."""
    true_frames = {f.name: f for f in truth.frames}
    pairs = [(f.center, true_frames[f.name].center) for f in estimated.frames if f.name in true_frames]
    if len(pairs) < 3:
        raise InputError(f"only {len(pairs)} frame names match the ground truth; at least 3 are needed to align")
    scale, rotation, translation = similarity_transform(np.array([p[0] for p in pairs]),
                                                        np.array([p[1] for p in pairs]))
    return scale * points @ rotation.T + translation


def visible_samples(samples: np.ndarray, truth: Scene, *, min_views: int = 2, scale: float = 0.5,
                    depth_tolerance: float = 0.01) -> np.ndarray:
    """Boolean mask of the surface samples seen (front-most in their pixel, within ``depth_tolerance``) by at least
    ``min_views`` true cameras, each z-buffered at ``scale`` × its size."""
    seen = np.zeros(len(samples), dtype=np.int32)
    for frame in truth.frames:
        camera = truth.cameras[frame.camera_index].scaled(scale)
        uv, front = camera.project(frame.to_camera(samples))
        z = frame.to_camera(samples)[:, 2]
        px, py = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
        inside = front & (px >= 0) & (px < camera.width) & (py >= 0) & (py < camera.height)
        pixel = np.where(inside, py * camera.width + px, 0)
        nearest = np.full(camera.width * camera.height, np.inf)
        np.minimum.at(nearest, pixel[inside], z[inside])
        seen += inside & (z <= nearest[pixel] * (1 + depth_tolerance))
    return seen >= min_views


def surface_scores(points: np.ndarray, samples: np.ndarray, visible: np.ndarray, extent: float,
                   relative_tolerances: tuple[float, ...] = (0.005, 0.01)) -> list[SurfaceScores]:
    """Scores of ``points`` (already in the truth's frame) against the surface ``samples`` at each tolerance."""
    if len(samples) == 0 or extent <= 0:
        raise InputError("the true surface has no samples (or no extent) to score against")
    to_surface = cKDTree(samples).query(points)[0] if len(points) else np.zeros(0)
    targets = samples[visible]
    to_cloud = cKDTree(points).query(targets)[0] if len(points) else np.full(len(targets), np.inf)
    scores = []
    for relative in relative_tolerances:
        tau = relative * extent
        accuracy = float(np.mean(to_surface <= tau)) if len(points) else 0.0
        completeness = float(np.mean(to_cloud <= tau)) if len(targets) else 0.0
        f = 2 * accuracy * completeness / (accuracy + completeness) if accuracy + completeness > 0 else 0.0
        scores.append(SurfaceScores(tau, relative, accuracy, completeness, f, len(points), int(visible.sum())))
    return scores


def scene_extent(samples: np.ndarray) -> float:
    """Diagonal of the 1st–99th percentile box of the samples (robust to a few far points)."""
    low, high = np.percentile(samples, [1, 99], axis=0)
    return float(np.linalg.norm(high - low))
