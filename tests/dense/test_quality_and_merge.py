"""The cloud-quality measures (ETH3D-style) and the scene's merge of dense and SfM points."""

from __future__ import annotations

import numpy as np

from adop.dense.fusion import merge_points
from adop.dense.quality import surface_scores
from adop.reconstruct.build import merge_dense
from adop.reconstruct.config import CleanupConfig
from adop.scene.types import PointCloud


def _grid(step: float, extent: float = 1.0) -> np.ndarray:
    x, y = np.meshgrid(np.arange(0, extent, step), np.arange(0, extent, step))
    return np.column_stack([x.ravel(), y.ravel(), np.zeros(x.size)])


def test_scores_of_a_perfect_a_partial_and_a_noisy_cloud() -> None:
    samples = _grid(0.01)
    visible = np.ones(len(samples), dtype=bool)
    perfect = surface_scores(samples, samples, visible, extent=1.0, relative_tolerances=(0.01,))[0]
    assert perfect.accuracy == perfect.completeness == perfect.fscore == 1.0
    half = samples[samples[:, 0] < 0.5]
    partial = surface_scores(half, samples, visible, extent=1.0, relative_tolerances=(0.005,))[0]
    assert partial.accuracy == 1.0 and abs(partial.completeness - 0.5) < 0.02
    noisy = samples + np.array([0.0, 0.0, 0.02])  # 2 % off the surface
    far = surface_scores(noisy, samples, visible, extent=1.0, relative_tolerances=(0.01, 0.03))
    assert far[0].accuracy == 0.0 and far[1].accuracy == 1.0
    hidden = surface_scores(half, samples, samples[:, 0] < 0.5, extent=1.0, relative_tolerances=(0.005,))[0]
    assert hidden.completeness == 1.0, "only visible samples count towards completeness"


def test_merge_points_joins_copies_within_a_footprint() -> None:
    points = _grid(0.01)
    copies = np.concatenate([points, points + np.array([0.0005, 0.0005, 0.0])])  # a copy well within a footprint
    cloud = PointCloud(copies, np.tile([0, 0, 1.0], (len(copies), 1)), np.full((len(copies), 3), 90, np.uint8))
    merged = merge_points(cloud, np.full(len(copies), 0.01), 1.0)
    assert len(points) <= len(merged) <= 1.2 * len(points), "most copies merge (a few straddle a cell border)"
    assert np.allclose(merged.normals, [0, 0, 1]) and (merged.colors == 90).all()
    assert len(merge_points(cloud, np.full(len(copies), 0.01), 0.0)) == len(copies)


def test_sfm_points_are_kept_only_where_the_dense_cloud_has_none() -> None:
    dense = PointCloud(_grid(0.01), np.tile([0, 0, 1.0], (10000, 1)), np.full((10000, 3), 200, np.uint8))
    sparse = PointCloud(np.array([[0.5, 0.5, 0.001], [3.0, 3.0, 0.0]]), colors=np.zeros((2, 3), np.uint8))
    views = np.array([[0, 0, 1.0], [0, 1.0, 0]])
    merged, merged_views, kept = merge_dense(dense, sparse, views, CleanupConfig())
    assert kept == 1 and len(merged) == len(dense) + 1
    assert np.allclose(merged.positions[-1], [3.0, 3.0, 0.0]) and np.allclose(merged_views[-1], [0, 1.0, 0])
    alone, _, none = merge_dense(dense, sparse, views, CleanupConfig(sparse_fill=False))
    assert none == 0 and len(alone) == len(dense)
