"""ADOP's point preprocessing (ADOP ``SceneData.cpp``, ``preprocess_pointcloud.cpp``; docs/method.md §2): duplicates,
lonely points, densification, Morton order and the drop-out radius.

Differences from ADOP, on purpose:

* Tolerances are relative to the cloud's extent instead of ADOP's absolute 1e-4, because SfM units are arbitrary.
* ADOP's block shuffle is left out: it only randomises order within 256-point blocks that are then sorted by radius
  anyway, so it affects ties only.
* The random factor ``sqrt(1/u)`` comes from a seeded generator, drawn in final point order, so the same input and
  seed give the same radii on every machine.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.spatial import cKDTree

from adop.raster.radius import drop_out_radius, knn_distance
from adop.scene.types import PointCloud

BLOCK = 256  # ADOP sorts each block of 256 points by radius (warp coherence in the rasterizer)


@dataclass(frozen=True)
class PreprocessStats:
    """Point counts through ADOP's preprocessing."""

    lonely_removed: int
    duplicates_removed: int
    points_added: int
    points_out: int
    median_radius: float


def extent(positions: np.ndarray) -> float:
    """Robust size of the cloud: diagonal of the 1st–99th percentile box (a few far outliers do not count)."""
    if len(positions) == 0:
        return 0.0
    low, high = np.percentile(positions, [1, 99], axis=0)
    return float(np.linalg.norm(high - low))


def remove_duplicates(cloud: PointCloud, tolerance: float) -> PointCloud:
    """Drop every point closer than ``tolerance`` to an earlier point (ADOP step 1)."""
    if len(cloud) < 2 or tolerance <= 0:
        return cloud
    pairs = cKDTree(cloud.positions).query_pairs(tolerance, output_type="ndarray")
    if len(pairs) == 0:
        return cloud
    keep = np.ones(len(cloud), dtype=bool)
    keep[np.maximum(pairs[:, 0], pairs[:, 1])] = False
    return cloud.subset(keep)


def remove_lonely(cloud: PointCloud, camera_centers: np.ndarray, ratio: float) -> PointCloud:
    """Drop points whose 5th-neighbour distance exceeds ``ratio`` × their distance to the nearest camera (step 2)."""
    if ratio <= 0 or len(cloud) < 6 or len(camera_centers) == 0:
        return cloud
    neighbor, _ = cKDTree(cloud.positions).query(cloud.positions, k=6)
    to_camera, _ = cKDTree(camera_centers).query(cloud.positions)
    return cloud.subset(neighbor[:, 5] <= ratio * np.maximum(to_camera, 1e-12))


def densify(cloud: PointCloud, point_factor: int, rng: np.random.Generator) -> PointCloud:
    """Add ``point_factor - 1`` copies of each point, jittered in its tangent plane (``preprocess_pointcloud``).

    Each copy lies at 0.25–2 × the point's 4th-neighbour distance in a random tangent direction and inherits the
    point's normal and colour.
    """
    if point_factor <= 1 or len(cloud) == 0:
        return cloud
    if cloud.normals is None:
        raise ValueError("densification needs normals (run the cleanup first)")
    normals = cloud.normals.astype(np.float64)
    radius = knn_distance(cloud.positions)
    copies = [cloud.positions]
    for _ in range(point_factor - 1):
        direction = rng.normal(size=cloud.positions.shape)
        direction -= np.einsum("ij,ij->i", direction, normals)[:, None] * normals
        direction /= np.maximum(np.linalg.norm(direction, axis=1, keepdims=True), 1e-12)
        distance = rng.uniform(0.25, 2.0, size=len(cloud)) * radius
        copies.append(cloud.positions + direction * distance[:, None])
    repeat = point_factor
    return PointCloud(
        positions=np.concatenate(copies),
        normals=np.tile(cloud.normals, (repeat, 1)),
        colors=None if cloud.colors is None else np.tile(cloud.colors, (repeat, 1)),
    )


def _spread_bits(values: np.ndarray) -> np.ndarray:
    """Insert two zero bits between each of the low 21 bits (the classic magic-number bit interleave)."""
    x = values.astype(np.uint64) & np.uint64(0x1FFFFF)
    for shift, mask in ((32, 0x1F00000000FFFF), (16, 0x1F0000FF0000FF), (8, 0x100F00F00F00F00F),
                        (4, 0x10C30C30C30C30C3), (2, 0x1249249249249249)):
        x = (x | (x << np.uint64(shift))) & np.uint64(mask)
    return x


def morton_codes(positions: np.ndarray) -> np.ndarray:
    """64-bit Morton (Z-order) codes of positions quantised to 21 bits per axis over their bounding box."""
    if len(positions) == 0:
        return np.zeros(0, dtype=np.uint64)
    low = positions.min(axis=0)
    span = np.maximum(positions.max(axis=0) - low, 1e-12)
    grid = np.floor((positions - low) / span * (2**21 - 1)).astype(np.uint64)
    return _spread_bits(grid[:, 0]) | (_spread_bits(grid[:, 1]) << np.uint64(1)) | (_spread_bits(grid[:, 2]) << np.uint64(2))


def preprocess_points(
    cloud: PointCloud, camera_centers: np.ndarray, *, duplicate_tolerance: float, lonely_ratio: float,
    point_factor: int, seed: int,
) -> tuple[PointCloud, PreprocessStats]:
    """The whole ADOP preprocessing, in ADOP's order; returns the cloud with ``radius`` set, Morton-ordered.

    Args:
        cloud: cleaned points with normals.
        camera_centers: ``[F, 3]`` for the lonely-point filter.
        duplicate_tolerance: fraction of the cloud's extent below which two points are duplicates.
        lonely_ratio: see ``CleanupConfig.lonely_ratio`` (0 disables).
        point_factor: densification factor (1 disables).
        seed: seeds the densification jitter and the radius factor.
    """
    rng = np.random.default_rng(seed)
    n_in = len(cloud)
    cloud = remove_lonely(cloud, camera_centers, lonely_ratio)
    lonely = n_in - len(cloud)
    before = len(cloud)
    cloud = remove_duplicates(cloud, duplicate_tolerance * extent(cloud.positions))
    duplicates = before - len(cloud)
    before = len(cloud)
    cloud = densify(cloud, point_factor, rng)
    added = len(cloud) - before
    cloud = cloud.subset(np.argsort(morton_codes(cloud.positions), kind="stable"))
    radius = drop_out_radius(cloud.positions, rng)
    order = np.lexsort((radius, np.arange(len(cloud)) // BLOCK))
    cloud = PointCloud(cloud.positions, cloud.normals, cloud.colors, radius).subset(order)
    median = float(np.median(cloud.radius)) if len(cloud) else 0.0
    return cloud, PreprocessStats(lonely, duplicates, added, len(cloud), median)
