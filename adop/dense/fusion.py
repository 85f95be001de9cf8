"""Fusion of per-view depth maps into one point cloud: a depth is kept only where other views agree with it.

Each reference pixel's 3-D point is projected into the view's fusion neighbours; a neighbour agrees when its own
depth there, back-projected and projected again into the reference view, lands within ``max_reprojection_error``
pixels and ``max_depth_error`` of the reference depth (the forward–backward check of COLMAP's fusion and of
Gipuma's, Galliani et al. 2015). A pixel with at least ``min_consistent`` agreeing views becomes one point, the mean
of the agreeing points, with the mean normal; the neighbours' pixels it consumed are marked so that the same surface
point is not emitted again from another view. Views far apart see the same surface too, so the points are finally
merged per cell of a grid whose cell is about one pixel's footprint at the point (``merge_points``), a coarser grid
when the cloud would exceed ``max_points``. numpy only, one reference view at a time with the last few depth maps
loaded, its arithmetic in float32.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from adop.dense.config import DenseConfig
from adop.dense.sweep import DepthMap
from adop.dense.views import StereoView
from adop.scene.types import PointCloud


@dataclass(frozen=True)
class FusionStats:
    """What the fusion kept."""

    points_fused: int
    """Points after the consistency check, before merging."""
    points: int
    points_per_view: dict[str, int]


def _rays(view: StereoView, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``[N, 3]`` float32 camera-space rays ``K⁻¹ (x + ½, y + ½, 1)``."""
    inverse = np.linalg.inv(view.intrinsics).astype(np.float32)
    pixels = np.stack([xs.astype(np.float32) + 0.5, ys.astype(np.float32) + 0.5, np.ones(len(xs), np.float32)])
    return (inverse @ pixels).T


def _project(view: StereoView, world: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Pixel coordinates and depth of world points in ``view`` (one 3×4 projection, float32)."""
    projection = view.projection.astype(np.float32)
    image = world @ projection[:, :3].T + projection[:, 3]
    z = image[:, 2]
    uv = image[:, :2] / np.where(z > 1e-9, z, np.float32(1.0))[:, None]
    return uv, z


def fuse_depth_maps(views: dict[int, StereoView], load: Callable[[int], DepthMap | None],
                    neighbours: dict[int, list[int]], config: DenseConfig) -> tuple[PointCloud, FusionStats]:
    """One cloud from the depth maps of ``views`` (frame index → view); ``load(index)`` gives a view's map (with
    ``color``), or None when the view has none."""
    maps = functools.lru_cache(maxsize=16)(load)  # a view's neighbourhood: mostly the same few views
    used = {index: np.zeros((view.height, view.width), dtype=bool) for index, view in views.items()}
    positions, normals, colors, footprints = [], [], [], []
    per_view: dict[str, int] = {}
    for index, view in views.items():
        depth_map = maps(index)
        if depth_map is None:
            continue
        ys, xs = np.nonzero(depth_map.valid & ~used[index])
        depth = depth_map.depth[ys, xs].astype(np.float32)
        cam = _rays(view, xs, ys) * depth[:, None]
        world = ((cam - view.translation) @ view.rotation).astype(np.float32)
        normal = depth_map.normal[ys, xs].astype(np.float32) @ view.rotation.astype(np.float32)
        total, normal_sum = world.copy(), normal.copy()
        agree_count = np.zeros(len(xs), dtype=np.int32)
        claims: list[tuple[int, np.ndarray, np.ndarray, np.ndarray]] = []
        for other in neighbours.get(index, []):
            other_map, other_view = maps(other), views.get(other)
            if other_map is None or other_view is None:
                continue
            uv, z = _project(other_view, world)
            px, py = np.floor(uv[:, 0]).astype(np.int64), np.floor(uv[:, 1]).astype(np.int64)
            inside = (z > 0) & (px >= 0) & (px < other_view.width) & (py >= 0) & (py < other_view.height)
            px, py = np.where(inside, px, 0), np.where(inside, py, 0)
            other_depth = np.where(inside, other_map.depth[py, px], 0.0).astype(np.float32)
            seen = other_depth > 0
            other_world = ((_rays(other_view, px, py) * other_depth[:, None] - other_view.translation) @
                           other_view.rotation).astype(np.float32)
            back_uv, back_z = _project(view, other_world)
            error = np.hypot(back_uv[:, 0] - (xs + 0.5), back_uv[:, 1] - (ys + 0.5))
            agree = seen & (error <= config.max_reprojection_error) & (
                np.abs(back_z - depth) <= config.max_depth_error * depth)
            agree_count += agree
            total[agree] += other_world[agree]
            normal_sum[agree] += other_map.normal[py[agree], px[agree]].astype(np.float32) @ \
                other_view.rotation.astype(np.float32)
            claims.append((other, agree, py, px))
        keep = agree_count >= config.min_consistent
        for other, agree, py, px in claims:
            taken = agree & keep
            used[other][py[taken], px[taken]] = True
        count = (agree_count[keep] + 1).astype(np.float32)[:, None]
        positions.append(total[keep] / count)
        unit = normal_sum[keep]
        normals.append(unit / np.maximum(np.linalg.norm(unit, axis=1, keepdims=True), np.float32(1e-12)))
        colors.append(depth_map.color[ys[keep], xs[keep]] if depth_map.color is not None
                      else np.full((int(keep.sum()), 3), 128, dtype=np.uint8))
        footprints.append(depth[keep] / view.intrinsics[0, 0])
        per_view[view.name] = int(keep.sum())
    if not positions:
        return PointCloud.empty(), FusionStats(0, 0, per_view)
    fused = PointCloud(np.concatenate(positions), np.concatenate(normals), np.concatenate(colors))
    footprint = np.concatenate(footprints)
    del positions, normals, colors, footprints
    factor = config.merge_footprint
    cloud = merge_points(fused, footprint, factor)
    while len(cloud) > config.max_points:
        factor = max(factor, 1.0) * 1.5
        cloud = merge_points(fused, footprint, factor)
    return cloud, FusionStats(len(fused), len(cloud), per_view)


def merge_points(cloud: PointCloud, footprint: np.ndarray, cell_factor: float) -> PointCloud:
    """Average the points that fall into one cell of a grid sized to their footprint (cells of ``cell_factor`` ×
    footprint, footprints rounded to powers of two so that near and far points each get their own grid); 0 keeps
    every point."""
    if cell_factor <= 0 or len(cloud) == 0:
        return cloud
    level = np.floor(np.log2(np.maximum(footprint * cell_factor, 1e-12))).astype(np.int64)
    cell = np.floor(cloud.positions / np.exp2(level)[:, None]).astype(np.int64)
    cell -= cell.min(axis=0)
    span = cell.max(axis=0) + 1
    levels = level - level.min()
    if float(np.prod(span.astype(np.float64))) * (int(levels.max()) + 1) < 2**62:  # one integer per cell: fast
        key = ((levels * span[0] + cell[:, 0]) * span[1] + cell[:, 1]) * span[2] + cell[:, 2]
        _, group, counts = np.unique(key, return_inverse=True, return_counts=True)
    else:
        _, group, counts = np.unique(np.column_stack([level, cell]), axis=0, return_inverse=True, return_counts=True)
    group = group.reshape(-1)

    def mean(values: np.ndarray) -> np.ndarray:
        return np.column_stack([np.bincount(group, weights=values[:, c], minlength=len(counts))
                                for c in range(values.shape[1])]) / counts[:, None]

    normals = mean(cloud.normals.astype(np.float64))
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)
    colors = mean(cloud.colors.astype(np.float64)).round().clip(0, 255).astype(np.uint8)
    return PointCloud(mean(cloud.positions), normals, colors)
