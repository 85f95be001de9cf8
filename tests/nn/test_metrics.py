"""Tests of adop.nn.metrics on known answers."""

from __future__ import annotations

import math

import pytest
import torch

from adop.errors import ShapeError
from adop.nn.metrics import compute_metrics, psnr, ssim

torch.set_num_threads(2)


def test_psnr_constant_offset() -> None:
    target = torch.full((2, 3, 8, 8), 0.5, dtype=torch.float64)
    for offset in (0.1, 0.05, 0.01):
        expected = -20 * math.log10(offset)  # MSE = offset², peak 1
        torch.testing.assert_close(psnr(target + offset, target), torch.full((2,), expected, dtype=torch.float64))
    assert math.isinf(float(psnr(target, target)[0]))


def test_psnr_clamp_and_mask() -> None:
    target = torch.ones(1, 3, 4, 4)
    assert math.isinf(float(psnr(target + 5, target)))  # clamped to 1: perfect
    assert float(psnr(target + 5, target, clamp=False)) == pytest.approx(10 * math.log10(1 / 25))
    pred = target.clone()
    pred[..., 2:] -= 0.1
    left = torch.zeros(1, 1, 4, 4)
    left[..., :2] = 1
    assert math.isinf(float(psnr(pred, target, mask=left)))
    assert float(psnr(pred, target, mask=1 - left)) == pytest.approx(20.0, abs=1e-4)
    with pytest.raises(ShapeError):
        psnr(pred, target[..., :3])


def test_ssim_known_answers() -> None:
    x = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    gen = torch.Generator().manual_seed(1)
    noise = torch.randn(x.shape, generator=gen)
    scores = [float(ssim((x + s * noise).clamp(0, 1), x).mean()) for s in (0.0, 0.05, 0.2)]
    assert scores[0] == pytest.approx(1.0) and scores[0] > scores[1] > scores[2]


def test_compute_metrics() -> None:
    target = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(2))
    m = compute_metrics(target * 3 - 1, target)  # clamping changes the prediction, so scores are finite
    assert m.psnr.shape == (2,) and m.ssim.shape == (2,) and m.lpips is None
    perfect = compute_metrics(target, target)
    assert torch.isinf(perfect.psnr).all() and torch.allclose(perfect.ssim, torch.ones(2))
