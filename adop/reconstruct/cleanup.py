"""Point-cloud cleanup with open3d: statistical outliers, optional voxel grid, normals facing the cameras.

The rasterizer culls back faces with the normals (ADOP ``check_normal``; docs/method.md §1, §3), so a normal pointing
away from the cameras that photographed the point would hide it in exactly the views that matter. A fitted plane has
no sign; we give it the sign of the point's *view vector*, the sum of unit vectors from the point to every camera
that observed it, which SfM tracks give us for free (no global propagation as in
``orient_normals_consistent_tangent_plane``).
"""

from __future__ import annotations

import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
import logging
from dataclasses import dataclass

import numpy as np
import open3d as o3d
from adop.native import pycolmap
from scipy.spatial import cKDTree

from adop.reconstruct.config import CleanupConfig
from adop.scene.types import PointCloud

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CleanupStats:
    """Point counts through the cleanup."""

    points_in: int
    after_outliers: int
    after_voxel: int
    voxel_size: float
    """Voxel edge in scene units (0 when downsampling is off)."""


def view_vectors(reconstruction: pycolmap.Reconstruction, point_ids: list[int]) -> np.ndarray:
    """``[N, 3]`` sums of unit vectors from each point to the centres of the images observing it."""
    centers = {iid: np.asarray(reconstruction.image(iid).projection_center()) for iid in reconstruction.reg_image_ids()}
    rows: list[int] = []
    observers: list[np.ndarray] = []
    positions = np.zeros((len(point_ids), 3))
    for row, pid in enumerate(point_ids):
        point = reconstruction.points3D[pid]
        positions[row] = point.xyz
        for element in point.track.elements:
            if element.image_id in centers:
                rows.append(row)
                observers.append(centers[element.image_id])
    if not rows:
        return np.zeros_like(positions)
    index = np.asarray(rows)
    directions = np.asarray(observers) - positions[index]
    directions /= np.maximum(np.linalg.norm(directions, axis=1, keepdims=True), 1e-12)
    sums = np.zeros_like(positions)
    np.add.at(sums, index, directions)
    return sums


def median_spacing(positions: np.ndarray) -> float:
    """Median distance to the nearest other point (the data's own length unit; SfM scale is arbitrary)."""
    if len(positions) < 2:
        return 0.0
    distances, _ = cKDTree(positions).query(positions, k=2)
    return float(np.median(distances[:, 1]))


def clean_points(points: PointCloud, views: np.ndarray, config: CleanupConfig) -> tuple[PointCloud, CleanupStats]:
    """Remove outliers, optionally voxel-downsample, and estimate normals oriented towards the observing cameras.

    Args:
        points: the SfM points (positions, colours).
        views: ``[N, 3]`` view vectors (see ``view_vectors``); carried through the filters as open3d "normals" so
            that voxel averaging keeps them in step with the points.
        config: cleanup options.

    Returns:
        The cleaned cloud (positions, unit normals, colours) and the counts.
    """
    n_in = len(points)
    cloud = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(points.positions))
    colors = points.colors if points.colors is not None else np.full((n_in, 3), 255, np.uint8)
    cloud.colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
    cloud.normals = o3d.utility.Vector3dVector(np.asarray(views, dtype=np.float64))
    if config.outlier_std_ratio > 0 and n_in > config.outlier_neighbors:
        cloud, _ = cloud.remove_statistical_outlier(config.outlier_neighbors, config.outlier_std_ratio)
    elif config.outlier_std_ratio > 0:
        log.warning("only %d points: too few for outlier removal with %d neighbours; skipped", n_in,
                    config.outlier_neighbors)
    after_outliers = len(cloud.points)
    voxel = 0.0
    if config.voxel_factor > 0 and after_outliers > 1:
        voxel = config.voxel_factor * median_spacing(np.asarray(cloud.points))
        if voxel > 0:
            cloud = cloud.voxel_down_sample(voxel)
    after_voxel = len(cloud.points)
    views_kept = np.asarray(cloud.normals).copy()
    normals = _estimate_normals(cloud, views_kept, config.normal_neighbors)
    result = PointCloud(
        positions=np.asarray(cloud.points),
        normals=normals,
        colors=np.clip(np.round(np.asarray(cloud.colors) * 255.0), 0, 255).astype(np.uint8),
    )
    return result, CleanupStats(n_in, after_outliers, after_voxel, voxel)


def _estimate_normals(cloud: o3d.geometry.PointCloud, views: np.ndarray, neighbors: int) -> np.ndarray:
    """Plane-fit normals, flipped to face the view vector (the view vector itself where no plane can be fit)."""
    unit_views = views / np.maximum(np.linalg.norm(views, axis=1, keepdims=True), 1e-12)
    if len(cloud.points) < 3:
        return unit_views.astype(np.float32)
    cloud.normals = o3d.utility.Vector3dVector()  # otherwise open3d orients the fit to the old "normals"
    cloud.estimate_normals(o3d.geometry.KDTreeSearchParamKNN(min(neighbors, len(cloud.points) - 1)))
    normals = np.asarray(cloud.normals).copy()
    flip = np.einsum("ij,ij->i", normals, views) < 0
    normals[flip] *= -1.0
    return normals.astype(np.float32)
