"""ADOP's drop-out radius: the per-point size that decides at which pyramid layer a point stops being drawn.

The rasterizer's stochastic discarding (``RasterConfig.radius_threshold``) compares the projected radius with a pixel
threshold; the radius is fixed once per point, from its neighbourhood and a random factor (ADOP ``ComputeRadius``;
docs/method.md §2).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree


def knn_distance(positions: np.ndarray, k: int = 4) -> np.ndarray:
    """Distance of each point to its ``k``-th nearest other point (ADOP queries k+1 including the point)."""
    if len(positions) <= k:
        return np.zeros(len(positions))
    distances, _ = cKDTree(positions).query(positions, k=k + 1)
    return distances[:, k]


def drop_out_radius(positions: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """ADOP's ComputeRadius: 4th-neighbour distance × ``sqrt(1/u)``, ``u ~ U(0, 1]`` drawn once per point."""
    u = 1.0 - rng.random(len(positions))  # (0, 1]: never divides by zero
    return (knn_distance(positions) * np.sqrt(1.0 / u)).astype(np.float32)
