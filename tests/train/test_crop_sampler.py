"""Tests of the crop sampler: geometry (a crop of a full render equals the render of the crop), ranges, determinism."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from adop.raster import RasterConfig, rasterize
from adop.train import SamplerConfig
from adop.scene.photos import load_scene_data
from adop.train.data import batch_for_step, sample_crop, step_generator, warp_crop


def _points(n: int = 4000) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    pos = torch.rand(n, 3, generator=gen) * torch.tensor([4.0, 3.0, 0.5]) - torch.tensor([2.0, 1.5, -4.0])
    return pos, torch.rand(n, 4, generator=gen)


def _render(pos: torch.Tensor, desc: torch.Tensor, k: list[float], size: tuple[int, int],
            crop: list[float] | None = None) -> tuple[torch.Tensor, ...]:
    out = rasterize(pos, desc, torch.zeros(4), torch.eye(3)[None], torch.zeros(1, 3), torch.tensor([k]), size,
                    crops=None if crop is None else torch.tensor([crop]), config=RasterConfig(dropout=0.0))
    return out.features


def test_crop_of_full_render_equals_render_of_crop() -> None:
    pos, desc = _points()
    k = [60.0, 60.0, 40.0, 32.0]
    full = _render(pos, desc, k, (80, 64))
    ox, oy = 16, 8  # multiples of 2^(layers-1): every pyramid layer is a plain slice
    crop = _render(pos, desc, k, (32, 24), [1.0, ox, oy])
    for layer, (f, c) in enumerate(zip(full, crop)):
        s = 2**layer
        expected = f[..., oy // s:oy // s + c.shape[-2], ox // s:ox // s + c.shape[-1]]
        torch.testing.assert_close(c, expected)


def test_zoomed_crop_matches_render_at_scaled_intrinsics() -> None:
    pos, desc = _points()
    zoom, ox, oy = 2.0, 24, 40
    full = _render(pos, desc, [120.0, 120.0, 80.0, 64.0], (160, 128))[0]  # K scaled by the zoom
    crop = _render(pos, desc, [60.0, 60.0, 40.0, 32.0], (48, 32), [zoom, ox, oy])[0]
    expected = full[..., oy:oy + 32, ox:ox + 48]
    mismatch = ((crop - expected).abs().amax(dim=1) > 1e-5).float().mean()
    assert float(mismatch) < 0.01  # identical up to float rounding of a few points on pixel edges


def test_warp_crop_geometry() -> None:
    photo = torch.arange(3 * 12 * 16, dtype=torch.float32).reshape(3, 12, 16) / 600.0
    target, inside = warp_crop(photo, torch.tensor([1.0, 3.0, 2.0]), (8, 6))
    torch.testing.assert_close(target, photo[:, 2:8, 3:11])
    assert bool((inside == 1).all())
    # zoom 2: crop pixel centre i + 0.5 samples u = (i + 0.5 + ox) / 2, between two photo pixels
    target2, _ = warp_crop(photo, torch.tensor([2.0, 4.0, 4.0]), (4, 4))
    col = (torch.arange(4) + 0.5 + 4.0) / 2 - 0.5  # continuous column index (pixel centres at integers)
    row = (1 + 0.5 + 4.0) / 2 - 0.5
    # the photo is linear in (row, col), so bilinear sampling reproduces the formula exactly
    torch.testing.assert_close(target2[0, 1, :], (row * 16 + col) / 600.0)
    _, outside = warp_crop(photo, torch.tensor([1.0, -4.0, 0.0]), (8, 6))
    assert outside[0, :, :4].sum() == 0 and outside[0, :, 4:].min() == 1


def test_sampler_ranges_and_border_preference() -> None:
    cfg = SamplerConfig(crop_width=32, crop_height=32, candidates=1)
    gen = step_generator(0, 9)
    touching = 0
    for _ in range(400):
        zoom, ox, oy = sample_crop((64, 48), (32, 32), cfg, gen, [])
        assert max(0.75, 32 / 48) <= zoom <= 1.5
        span_x, span_y = 64 * zoom - 32, 48 * zoom - 32
        assert 0 <= ox <= span_x + 1e-9 and 0 <= oy <= span_y + 1e-9
        touching += ox in (0.0, span_x) or oy in (0.0, span_y)
    assert touching > 0.3 * 400  # border-preferring offsets put many crops at an edge


def test_candidates_spread_crops_of_one_image() -> None:
    cfg = SamplerConfig(crop_width=16, crop_height=16, candidates=8)
    gen = step_generator(1, 2)
    earlier: list[tuple[float, float]] = []
    sample_crop((200, 200), (16, 16), cfg, gen, earlier)
    sample_crop((200, 200), (16, 16), cfg, gen, earlier)
    (x0, y0), (x1, y1) = earlier
    assert ((x0 - x1) ** 2 + (y0 - y1) ** 2) ** 0.5 > 30  # best of 8 candidates is far from the first crop


def test_batches_depend_only_on_seed_and_step(micro_scene: Path) -> None:
    data = load_scene_data(micro_scene)
    cfg = SamplerConfig(crop_width=32, crop_height=32, batch_size=3, inner_batch_size=2, border=4)
    a, b = batch_for_step(data, cfg, 0, 5), batch_for_step(data, cfg, 0, 5)
    assert torch.equal(a.frames, b.frames) and torch.equal(a.crops, b.crops) and torch.equal(a.target, b.target)
    assert not torch.equal(batch_for_step(data, cfg, 0, 6).crops, a.crops)
    assert a.target.shape == (6, 3, 32, 32) and a.mask.shape == (6, 1, 32, 32)
    assert float(a.mask.min()) == pytest.approx(cfg.mask_floor) and float(a.mask.max()) == 1.0
    assert not set(a.frames.tolist()) & set(data.heldout_indices.tolist())
    # one epoch visits every training image once (batch 3, 8 training images: 3 steps, the last wraps)
    seen = torch.cat([batch_for_step(data, cfg, 0, s).frames[::2] for s in range(3)]).tolist()
    assert set(seen) == set(data.train_indices.tolist())
