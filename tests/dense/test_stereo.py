"""The plane sweep and the fusion on a scene with exact depth: accuracy, exposure invariance, rejection, normals."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from adop.dense import DenseConfig
from adop.dense.fusion import fuse_depth_maps
from adop.dense.sweep import DepthMap, _box, _mean_of_best, plane_sweep
from adop.dense.views import choose_sources, stereo_view, visibility_by_projection

from tests.dense.plane_scene import plane_scene, render_view

CONFIG = DenseConfig(depth_planes=48, window_radius=3, min_texture=0.02, neighbours=4, best_sources=2,
                     min_consistent=2, coarse_size=1000, merge_footprint=1.0)


def _photo(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1).float() / 255.0


def _sweep(scene, texture, index: int = 2, config: DenseConfig = CONFIG, device: str = "cpu",
           **render) -> tuple[DepthMap, np.ndarray]:
    views = [stereo_view(scene, i, 0) for i in range(len(scene.frames))]
    images = [_photo(render_view(scene, texture, i, **(render if i != index else {}))[0]).to(device)
              for i in range(len(views))]
    truth = render_view(scene, texture, index)[1]
    sources = [(images[i], views[i]) for i in range(len(views)) if i != index]
    return plane_sweep(images[index], views[index], sources, 2.0, 5.0, config), truth


def _relative_error(depth_map: DepthMap, truth: np.ndarray) -> np.ndarray:
    valid = depth_map.valid
    return np.abs(depth_map.depth[valid] - truth[valid]) / truth[valid]


@pytest.mark.parametrize("radius", [1, 3, 8])
def test_window_means_are_those_of_average_pooling_clipped_at_the_borders(radius: int) -> None:
    x = torch.rand(3, 4, 37, 53, generator=torch.Generator().manual_seed(radius))
    size = 2 * radius + 1
    pooled = torch.nn.functional.avg_pool2d(x, size, stride=1, padding=radius, count_include_pad=False)
    assert torch.allclose(_box(x, radius), pooled, atol=1e-6)


def test_the_mean_of_the_best_sources_is_that_of_the_highest_scores() -> None:
    scores = torch.rand(4, 5, 6, generator=torch.Generator().manual_seed(0)) * 2 - 1
    for count in (1, 2, 3, 4):
        expected = scores.sort(dim=0, descending=True).values[:count].mean(0)
        assert torch.allclose(_mean_of_best(scores, count), expected, atol=1e-6)


def test_a_window_seen_by_fewer_sources_than_the_best_count_takes_the_mean_of_those_that_see_it() -> None:
    unseen = -1.0  # what the ZNCC of a window outside a source is
    scores = torch.tensor([[0.9, unseen, unseen], [0.5, 0.7, unseen], [unseen, unseen, unseen]]).T[:, :, None]
    best = _mean_of_best(scores, 2)[:, 0]
    assert torch.allclose(best, torch.tensor([0.9, 0.6, -1.0]))


def test_plane_sweep_recovers_the_plane_below_the_plane_spacing() -> None:
    scene, texture = plane_scene()
    depth_map, truth = _sweep(scene, texture)
    error = _relative_error(depth_map, truth)
    spacing = (1 / 2.0 - 1 / 5.0) / (CONFIG.depth_planes - 1) * truth.mean()  # one plane, as a relative depth step
    assert depth_map.coverage > 0.7
    assert np.median(error) < 0.3 * spacing, (np.median(error), spacing)
    assert np.percentile(error, 95) < 0.01


def test_tiles_give_the_same_map_as_one_sweep() -> None:
    scene, texture = plane_scene()
    whole, _ = _sweep(scene, texture, config=CONFIG.replace(tile_rows=128))
    tiled, _ = _sweep(scene, texture, config=CONFIG.replace(tile_rows=16))
    assert np.array_equal(whole.valid, tiled.valid)
    assert np.allclose(whole.depth, tiled.depth, rtol=1e-5)


def test_coarse_to_fine_is_nearly_as_accurate_as_the_full_sweep() -> None:
    scene, texture = plane_scene()
    full, truth = _sweep(scene, texture)
    refined, _ = _sweep(scene, texture, config=CONFIG.replace(coarse_size=32))  # 96×72 → 48×36 → 96×72
    assert refined.coverage > 0.9 * full.coverage
    assert np.median(_relative_error(refined, truth)) < 1.5 * np.median(_relative_error(full, truth))
    assert np.percentile(_relative_error(refined, truth), 95) < 0.01


def test_sources_photographed_stops_apart_give_the_same_depths() -> None:
    """ZNCC ignores gain and offset: sources two stops darker with an offset still match."""
    scene, texture = plane_scene()
    same, truth = _sweep(scene, texture)
    darker, _ = _sweep(scene, texture, gain=0.25, offset=0.1)
    assert darker.coverage > 0.9 * same.coverage
    assert np.median(_relative_error(darker, truth)) < 2 * np.median(_relative_error(same, truth)) + 1e-3


def test_flat_regions_get_no_depth() -> None:
    scene, texture = plane_scene()
    box = (-0.6, -0.4, 0.6, 0.4)
    views = [stereo_view(scene, i, 0) for i in range(len(scene.frames))]
    images = [_photo(render_view(scene, texture, i, flat_box=box)[0]) for i in range(len(views))]
    flat_map = plane_sweep(images[2], views[2], [(images[i], views[i]) for i in (0, 1, 3, 4)], 2.0, 5.0, CONFIG)
    centre = flat_map.depth[30:42, 40:56]
    assert (centre == 0).mean() > 0.9, "a flat grey patch has no texture to match and must stay empty"
    assert flat_map.coverage > 0.3, "the textured rest of the plane still gets depths"


def test_normals_face_the_camera_and_match_the_plane() -> None:
    scene, texture = plane_scene()
    depth_map, _ = _sweep(scene, texture)
    frame = scene.frames[2]
    normals_world = depth_map.normal[depth_map.valid] @ frame.rotation
    assert np.median(normals_world[:, 2]) > 0.98, "the plane's normal is +z, towards the cameras above it"


def test_fusion_keeps_agreeing_depths_and_drops_a_wrong_view() -> None:
    scene, texture = plane_scene()
    views = {i: stereo_view(scene, i, 0) for i in range(len(scene.frames))}
    maps = {}
    for i in views:
        _, depth = render_view(scene, texture, i)
        normal = np.broadcast_to(scene.frames[i].rotation @ np.array([0, 0, 1.0]), (*depth.shape, 3)).astype(np.float32)
        maps[i] = DepthMap(depth.astype(np.float32), normal.copy(), np.ones_like(depth, np.float32),
                           np.full((*depth.shape, 3), 100, np.uint8))
    maps[4] = DepthMap(maps[4].depth * 1.2, maps[4].normal, maps[4].score, maps[4].color)  # a view that is wrong
    neighbours = {i: [j for j in views if j != i] for i in views}
    cloud, stats = fuse_depth_maps(views, maps.get, neighbours, CONFIG.replace(min_consistent=2))
    assert len(cloud) > 0.5 * views[0].width * views[0].height
    assert np.abs(cloud.positions[:, 2]).max() < 0.01, "every fused point lies on the plane z = 0"
    assert stats.points_per_view["view_04.png"] == 0, "the wrong view agrees with nobody"
    assert np.median(cloud.normals[:, 2]) > 0.99
    assert stats.points <= stats.points_fused


def test_sources_are_chosen_by_shared_points_and_parallax() -> None:
    scene, _ = plane_scene(num_views=6)
    visibility = visibility_by_projection(scene)
    sources = choose_sources(scene, visibility, 3, min_shared=10, min_angle_deg=1.0, max_angle_deg=45.0)
    assert all(i not in found for i, found in enumerate(sources))
    assert sources[0][0] == 1, "the nearest neighbour along the row has the most shared points"
    none = choose_sources(scene, visibility, 3, min_shared=10, min_angle_deg=80.0, max_angle_deg=89.0)
    assert none == [[] for _ in scene.frames], "without parallax in range no view qualifies"


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_depth_maps_match_the_cpu() -> None:
    scene, texture = plane_scene()
    cpu, truth = _sweep(scene, texture)
    cuda, _ = _sweep(scene, texture, device="cuda")
    both = cpu.valid & cuda.valid
    assert both.sum() > 0.95 * min(cpu.valid.sum(), cuda.valid.sum())
    assert np.median(np.abs(cpu.depth[both] - cuda.depth[both]) / truth[both]) < 1e-4


def test_planes_parallel_to_the_ground_match_a_road_seen_at_a_grazing_angle() -> None:
    from adop.dense.views import PlaneFamily

    scene, texture = plane_scene(grazing=True)
    views = [stereo_view(scene, i, 0) for i in range(len(scene.frames))]
    images = [_photo(render_view(scene, texture, i)[0]) for i in range(len(views))]
    truth = render_view(scene, texture, 2)[1]
    near, far = np.percentile(truth[truth > 0], [1, 99]) * np.array([0.8, 1.25])
    sources = [(images[i], views[i]) for i in (0, 1, 3, 4)]
    config = CONFIG.replace(min_ncc=0.5)
    fronto = plane_sweep(images[2], views[2], sources, near, far, config)
    up = scene.frames[2].rotation @ np.array([0.0, 0.0, 1.0])
    both = plane_sweep(images[2], views[2], sources, near, far, config, [PlaneFamily(up, 0.8, 1.25)])
    good = lambda m: m.valid & (truth > 0) & (np.abs(m.depth - truth) < 0.01 * np.maximum(truth, 1e-6))  # noqa: E731
    assert good(both).sum() > 1.2 * good(fronto).sum(), "fronto-parallel windows fit a grazing road badly"
    two_sided = plane_sweep(images[2], views[2], sources, near, far, config, [PlaneFamily(up, 0.8, 1.25, True)])
    assert good(two_sided).sum() > 1.2 * good(fronto).sum(), "a family on both sides fits the side it is on"


def test_facade_planes_are_vertical_along_the_view_and_span_the_walls_distances() -> None:
    from adop.dense.views import facade_planes
    from adop.scene import Camera, Frame, PointCloud, Scene

    rng = np.random.default_rng(0)
    walls = np.column_stack([rng.choice([-1.0, 1.0], 200), rng.uniform(1, 10, 200), rng.uniform(-1, 2, 200)])
    rotation = np.array([[1.0, 0, 0], [0, 0, -1], [0, 1, 0]])  # looking along +y, image down = world -z
    frame = Frame("street.png", 0, rotation, np.zeros(3))
    scene = Scene([Camera("PINHOLE", 64, 48, (50.0, 50.0, 32.0, 24.0))], [frame], PointCloud(walls))
    family = facade_planes(scene, 0, np.arange(len(walls)), np.array([0.0, 0.0, 1.0]), 0.25)
    assert family is not None and family.two_sided
    assert np.allclose(np.abs(family.normal), [1.0, 0.0, 0.0], atol=1e-9)
    assert family.nearest == pytest.approx(0.8) and family.farthest == pytest.approx(1.25)
    on_its_side = Frame("portrait.png", 0, rotation, np.zeros(3))  # the world's up is this camera's right axis
    assert facade_planes(Scene(scene.cameras, [on_its_side], scene.points), 0, np.arange(len(walls)),
                         np.array([1.0, 0.0, 0.0]), 0.25) is None
