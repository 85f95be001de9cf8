"""Forward pass of the one-pixel rasterizer on hand-built scenes with known answers (CPU backends)."""

from __future__ import annotations

import math

import pytest
import torch
from raster_scenes import random_scene

from adop.errors import ShapeError
from adop.raster import RasterConfig, _cpp, rasterize
from adop.raster.projection import monotonic_radius2, project_points

torch.set_num_threads(2)

BACKENDS = [
    "torch",
    pytest.param("cpp", marks=pytest.mark.skipif(not _cpp.available(), reason="C++ extension could not be built")),
]
EYE = torch.eye(3)[None]
ZERO_T = torch.zeros(1, 3)
K = torch.tensor([[20.0, 20.0, 16.0, 12.0]])  # 32x24 image, principal point at the centre
SIZE = (32, 24)


def _render(points: torch.Tensor, desc: torch.Tensor, backend: str, **kw: object):
    cfg = kw.pop("config", RasterConfig(dropout=0.0, backend=backend))  # type: ignore[arg-type]
    return rasterize(points, desc, torch.full((desc.shape[1],), -1.0), EYE, ZERO_T, K, SIZE, config=cfg,
                     **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize("backend", BACKENDS)
def test_point_lands_on_floor_pixel_at_every_layer(backend: str) -> None:
    # u = 20 * 0.3 / 2 + 16 = 19.0 exactly, v = 20 * (-0.25) / 2 + 12 = 9.5 -> layer-0 pixel (19, 9).
    pts = torch.tensor([[0.3, -0.25, 2.0]])
    desc = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    out = _render(pts, desc, backend)
    assert out.backend == backend
    for layer, feat in enumerate(out.features):
        x, y = math.floor(19.0 * 2.0**-layer), math.floor(9.5 * 2.0**-layer)
        assert feat.shape == (1, 4, SIZE[1] >> layer, SIZE[0] >> layer)
        assert torch.equal(feat[0, :, y, x], desc[0])
        assert out.masks[layer].sum() == 1 and out.masks[layer][0, 0, y, x] == 1
        assert out.depths[layer][0, 0, y, x] == 2.0
        others = torch.ones_like(out.masks[layer][0, 0], dtype=torch.bool)
        others[y, x] = False
        assert torch.all(feat[0][:, others] == -1.0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_nearest_point_wins_and_points_within_one_percent_blend(backend: str) -> None:
    # Three points on the ray through pixel (16, 12): z = 2, 2.015 (within 1%), 2.5 (hidden).
    ray = torch.tensor([0.01, 0.01, 1.0])
    pts = torch.stack([ray * 2.0, ray * 2.015, ray * 2.5])
    desc = torch.tensor([[1.0, 0.0], [3.0, 0.0], [100.0, 100.0]])
    out = _render(pts, desc, backend)
    assert out.counts[0][0, 0, 12, 16] == 2
    assert torch.allclose(out.features[0][0, :, 12, 16], torch.tensor([2.0, 0.0]))
    assert out.depths[0][0, 0, 12, 16] == pytest.approx(2.0, rel=1e-6)
    # Outside the 1% band only the nearest survives.
    out = _render(torch.stack([ray * 2.5, ray * 2.0]), desc[:2], backend)
    assert torch.equal(out.features[0][0, :, 12, 16], desc[1])


@pytest.mark.parametrize("backend", BACKENDS)
def test_culling_behind_camera_and_back_faces(backend: str) -> None:
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.0, 0.0, -2.0], [0.5, 0.0, 2.0]])
    normals = torch.tensor([[0.0, 0.0, -1.0], [0.0, 0.0, -1.0], [0.0, 0.0, 1.0]])  # third faces away
    out = _render(pts, torch.eye(3), backend, normals=normals)
    assert out.masks[0].sum() == 1
    assert torch.equal(out.features[0][0, :, 12, 16], torch.tensor([1.0, 0.0, 0.0]))
    out = _render(pts, torch.eye(3), backend)  # no normals: no back-face culling
    assert out.masks[0].sum() == 2


@pytest.mark.parametrize("backend", BACKENDS)
def test_radius_discarding_stops_at_first_small_layer(backend: str) -> None:
    # Projected radius fx*r/z = 20 * 0.1 / 2 = 1 px at layer 0, 0.5 px at layer 1 (< 0.6): layer 0 only.
    pts = torch.tensor([[0.0, 0.0, 2.0], [0.4, 0.0, 2.0]])
    radius = torch.tensor([0.1, 0.5])  # second point: 5 px -> layers 0,1,2 (0.625 px at layer 3 survives too)
    out = _render(pts, torch.eye(2), backend, radius=radius)
    assert [int(m.sum()) for m in out.masks] == [2, 1, 1, 1]
    out = _render(pts, torch.eye(2), backend, radius=torch.tensor([0.1, 0.45]))  # 0.5625 px at layer 3: gone
    assert [int(m.sum()) for m in out.masks] == [2, 1, 1, 0]


@pytest.mark.parametrize("backend", BACKENDS)
def test_dropped_points_write_depth_but_not_colour(backend: str) -> None:
    scene = random_scene(3, points=300, views=1)
    full = scene.render(RasterConfig(dropout=1.0, backend=backend))
    assert all(m.sum() == 0 for m in full.masks)
    assert all(torch.all(f == -1.0) for f in full.features)
    ref = scene.render(RasterConfig(dropout=0.0, backend=backend))
    for a, b in zip(full.depths, ref.depths):
        assert torch.equal(a, b)
    # A dropped front point leaves a hole: the hidden point behind it is not drawn either.
    ray = torch.tensor([0.0, 0.0, 1.0])
    out = _render(torch.stack([ray * 2.0, ray * 3.0]), torch.eye(2), backend,
                  config=RasterConfig(dropout=0.5, backend=backend), generator=torch.Generator().manual_seed(0))
    drawn = out.masks[0][0, 0, 12, 16]
    assert drawn == 0 or torch.equal(out.features[0][0, :, 12, 16], torch.tensor([1.0, 0.0]))


def test_dropout_rate_matches_config() -> None:
    scene = random_scene(4, points=4000, views=1, size=(160, 120), distorted=False)
    ref = scene.render(RasterConfig(dropout=0.0, layers=1), radius=None)
    out = scene.render(RasterConfig(dropout=0.25, layers=1), radius=None, seed=7)
    kept = out.counts[0].sum() / ref.counts[0].sum()
    assert 0.65 < float(kept) < 0.85  # hidden points reappear in a few holes, so not exactly 0.75


@pytest.mark.parametrize("backend", BACKENDS)
def test_crop_matches_full_render(backend: str) -> None:
    scene = random_scene(5, points=600, views=2, size=(64, 48))
    cfg = RasterConfig(dropout=0.0, backend=backend)
    full = scene.render(cfg)
    crops = torch.tensor([[1.0, 16.0, 8.0], [1.0, 24.0, 16.0]])
    crop = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                     scene.intrinsics, (32, 24), normals=scene.normals, radius=scene.radius,
                     distortion=scene.distortion, crops=crops, config=cfg)
    for layer in range(cfg.layers):
        s = 2**layer
        for b, (_, ox, oy) in enumerate(crops.tolist()):
            x0, y0 = int(ox) // s, int(oy) // s
            h, w = crop.features[layer].shape[-2:]
            assert torch.equal(crop.features[layer][b], full.features[layer][b, :, y0:y0 + h, x0:x0 + w])
            assert torch.equal(crop.depths[layer][b], full.depths[layer][b, :, y0:y0 + h, x0:x0 + w])
    # zoom 2 equals doubling the intrinsics (both scale exactly by a power of two)
    zoomed = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                       scene.intrinsics, (64, 48), distortion=scene.distortion,
                       crops=torch.tensor([[2.0, 32.0, 24.0]]).expand(2, 3), config=cfg)
    doubled = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                        scene.intrinsics * 2, (128, 96), distortion=scene.distortion, config=cfg)
    assert torch.equal(zoomed.features[0], doubled.features[0][:, :, 24:72, 32:96])


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_matches_single_views(backend: str) -> None:
    scene = random_scene(6, points=500, views=3)
    cfg = RasterConfig(dropout=0.0, backend=backend)
    desc = scene.descriptors.clone().requires_grad_()
    batch = rasterize(
        scene.positions, desc, scene.background, scene.rotations, scene.translations, scene.intrinsics, scene.size,
        normals=scene.normals, radius=scene.radius, distortion=scene.distortion, config=cfg)
    weights = [torch.rand_like(f) for f in batch.features]
    (grad_batch,) = torch.autograd.grad(sum((f * w).sum() for f, w in zip(batch.features, weights)), desc)
    grad_sum = torch.zeros_like(desc)
    for b in range(3):
        single = rasterize(scene.positions, desc, scene.background, scene.rotations[b:b + 1],
                           scene.translations[b:b + 1], scene.intrinsics[b:b + 1], scene.size, normals=scene.normals,
                           radius=scene.radius, distortion=scene.distortion[b:b + 1], config=cfg)
        for layer in range(cfg.layers):
            assert torch.equal(single.features[layer][0], batch.features[layer][b])
            assert torch.equal(single.depths[layer][0], batch.depths[layer][b])
        (g,) = torch.autograd.grad(sum((f * w[b:b + 1]).sum() for f, w in zip(single.features, weights)), desc)
        grad_sum += g
    torch.testing.assert_close(grad_batch, grad_sum)


def test_projection_follows_opencv_model() -> None:
    # Reference values computed by hand from the conventions.md formulas in float64.
    pts = torch.tensor([[0.3, -0.2, 2.0]], dtype=torch.float64)
    dist = torch.tensor([[-0.1, 0.05, 0.001, -0.002, 0.01, 0.02, 0.003, 0.001]], dtype=torch.float64)
    k = torch.tensor([[500.0, 510.0, 320.0, 240.0]], dtype=torch.float64)
    proj = project_points(pts, None, None, torch.eye(3, dtype=torch.float64)[None], torch.zeros(1, 3).double(), k,
                          dist, torch.tensor([[1.0, 0.0, 0.0]]).double(), monotonic_radius2(dist), (640, 480), 4,
                          0.6, 1e-4)
    x, y = 0.15, -0.1
    k1, k2, p1, p2, k3, k4, k5, k6 = dist[0].tolist()
    r2 = x * x + y * y
    rad = (1 + k1 * r2 + k2 * r2**2 + k3 * r2**3) / (1 + k4 * r2 + k5 * r2**2 + k6 * r2**3)
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    assert proj[0, 0, 0].item() == pytest.approx(500 * xd + 320, abs=1e-9)
    assert proj[0, 0, 1].item() == pytest.approx(510 * yd + 240, abs=1e-9)
    assert proj[0, 0, 3].item() == 4


@pytest.mark.parametrize("backend", BACKENDS)
def test_points_beyond_monotonic_distortion_range_are_culled(backend: str) -> None:
    # k1 = -0.5: r(1 - 0.5 r²) peaks at r = 0.816, so a point at r = 1.2 would fold back into the image.
    dist = torch.tensor([[-0.5, 0, 0, 0, 0, 0, 0, 0]], dtype=torch.float32)
    assert monotonic_radius2(dist).sqrt().item() == pytest.approx(0.8, abs=0.021)
    pts = torch.tensor([[1.2 * 2.0, 0.0, 2.0], [0.2, 0.0, 2.0]])
    out = _render(pts, torch.eye(2), backend, distortion=dist)
    assert out.masks[0].sum() == 1
    assert out.features[0][0, 1].max() == 1.0  # the near-axis point (descriptor [0, 1]) is drawn
    assert out.features[0][0, 0].max() == 0.0  # the folded one (descriptor [1, 0]) is gone


def test_environment_map_fills_empty_pixels() -> None:
    env = torch.zeros(2, 8, 16)
    env[0] = 5.0  # constant channel: every empty pixel gets background + 5
    env[1] = torch.linspace(0, 1, 16)[None].expand(8, 16)
    pts = torch.tensor([[0.0, 0.0, 2.0]])
    out = _render(pts, torch.eye(2)[:1], "torch", environment_map=env)
    f = out.features[0][0]
    assert f[0, 12, 16] == 1.0  # covered pixel untouched
    empty = out.masks[0][0, 0] == 0
    assert torch.allclose(f[0][empty], torch.full_like(f[0][empty], 4.0))
    # camera looks along +z: u = frac(atan2(-1, 0) / 2pi) = 0.75 -> column 0.75 * 15 of the ramp
    assert f[1, 11, 15].item() == pytest.approx(-1.0 + 0.75, abs=0.05)


def test_exceptions() -> None:
    pts, desc = torch.zeros(3, 3), torch.zeros(3, 4)
    with pytest.raises(ShapeError):
        rasterize(pts, torch.zeros(2, 4), torch.zeros(4), EYE, ZERO_T, K, SIZE)
    with pytest.raises(ShapeError):
        rasterize(pts, desc, torch.zeros(3), EYE, ZERO_T, K, SIZE)
    with pytest.raises(ValueError, match="CUDA"):
        rasterize(pts, desc, torch.zeros(4), EYE, ZERO_T, K, SIZE, config=RasterConfig(backend="cuda"))
    with pytest.raises(ValueError, match="pose_tangent"):
        rasterize(pts, desc, torch.zeros(4), EYE.clone().requires_grad_(), ZERO_T, K, SIZE)
    with pytest.raises(TypeError):
        rasterize(pts.double(), desc.double(), torch.zeros(4).double(), EYE, ZERO_T, K, SIZE,
                  config=RasterConfig(backend="cpp"))
    with pytest.raises(ValueError):
        RasterConfig(layers=6)
