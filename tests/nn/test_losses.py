"""Tests of adop.nn.losses: SSIM against a scipy oracle, L1+SSIM, the local-only VGG-19 loader."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter

from adop.errors import InputError, ShapeError
from adop.nn.losses import (
    LossConfig,
    PhotometricLoss,
    VGG19Features,
    VGGPerceptualLoss,
    l1_ssim_loss,
    load_perceptual_loss,
    ssim,
)

torch.set_num_threads(2)


def _ssim_reference(x: np.ndarray, y: np.ndarray) -> float:
    """Wang et al. SSIM with scipy's Gaussian (sigma 1.5, radius 5 = 11×11), valid region, per channel, averaged."""
    c1, c2 = 0.01**2, 0.03**2
    values = []
    for xc, yc in zip(x, y):
        blur = lambda a: gaussian_filter(a, sigma=1.5, truncate=3.5)[5:-5, 5:-5]  # noqa: E731
        mx, my = blur(xc), blur(yc)
        vx, vy, cxy = blur(xc * xc) - mx**2, blur(yc * yc) - my**2, blur(xc * yc) - mx * my
        values.append(((2 * mx * my + c1) * (2 * cxy + c2)) / ((mx**2 + my**2 + c1) * (vx + vy + c2)))
    return float(np.mean(values))


def test_ssim_matches_reference() -> None:
    rng = np.random.default_rng(0)
    x = rng.random((3, 24, 20))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    ours = ssim(torch.from_numpy(x)[None], torch.from_numpy(y)[None])
    assert float(ours[0]) == pytest.approx(_ssim_reference(x, y), abs=1e-10)


def test_ssim_identical_and_noise() -> None:
    x = torch.rand(2, 3, 20, 20, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(ssim(x, x), torch.ones(2))
    noisy = [ssim(x, (x + s * torch.randn_like(x)).clamp(0, 1)).mean() for s in (0.02, 0.1, 0.3)]
    assert 1 > noisy[0] > noisy[1] > noisy[2]


def test_ssim_mask_selects_region() -> None:
    x = torch.rand(1, 3, 24, 24)
    y = x.clone()
    y[..., 12:] = torch.rand(1, 3, 24, 12)  # the right half differs
    left = torch.zeros(1, 1, 24, 24)
    left[..., :6] = 1.0  # window centres at columns 5..6 never see the right half
    assert float(ssim(x, y, mask=left)) == pytest.approx(1.0, abs=1e-6)
    assert float(ssim(x, y)) < 0.9


def test_ssim_gradcheck() -> None:
    x = torch.rand(1, 2, 12, 12, dtype=torch.float64, requires_grad=True)
    y = torch.rand(1, 2, 12, 12, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda a: ssim(a, y), (x,), fast_mode=True)


def test_ssim_exception() -> None:
    with pytest.raises(ShapeError):
        ssim(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8))  # smaller than the 11×11 window
    with pytest.raises(ShapeError):
        ssim(torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 17))


def test_l1_ssim_loss() -> None:
    x = torch.rand(2, 3, 16, 16)
    assert float(l1_ssim_loss(x, x)) == pytest.approx(0.0, abs=1e-6)
    y = (x + 0.1).clamp(0, 1)
    pred = y.clone().requires_grad_()
    loss = l1_ssim_loss(pred, x)
    assert float(loss.detach()) > float(torch.nn.functional.l1_loss(y, x))  # the SSIM term adds something
    loss.backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    mask = torch.zeros(2, 1, 16, 16)
    assert float(l1_ssim_loss(y, x, mask=mask)) == pytest.approx(0.0, abs=1e-6)


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised VGG-19 saved like a torchvision whole-model file (prefix, extra classifier keys)."""
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG19Features().state_dict().items()}
    state["features.30.weight"] = torch.zeros(512, 512, 3, 3)  # relu5_2 onwards: present in real files, unused
    state["classifier.0.weight"] = torch.zeros(4, 4)
    path = tmp_path_factory.mktemp("vgg") / "vgg19.pth"
    torch.save(state, path)
    return path


def test_vgg_layer_numbering() -> None:
    net = VGG19Features()
    relus = [i for i, layer in enumerate(net) if isinstance(layer, torch.nn.ReLU)]
    assert relus == [1, 3, 6, 8, 11, 13, 15, 17, 20, 22, 24, 26, 29]  # ADOP's taps = every ReLU up to relu5_1
    assert isinstance(net[4], torch.nn.AvgPool2d)


def test_vgg_loads_local_weights(vgg_file: Path) -> None:
    loss_fn = load_perceptual_loss(vgg_file)
    assert isinstance(loss_fn, VGGPerceptualLoss)
    saved = torch.load(vgg_file, weights_only=True)
    torch.testing.assert_close(loss_fn.features[28].weight, saved["features.28.weight"])
    x = torch.rand(1, 3, 32, 32)
    assert float(loss_fn(x, x)) == 0.0
    pred = torch.rand(1, 3, 32, 32, requires_grad=True)
    value = loss_fn(pred, x)
    value.backward()
    assert float(value.detach()) > 0 and pred.grad is not None and pred.grad.abs().sum() > 0
    assert all(p.grad is None for p in loss_fn.parameters()), "VGG weights must stay frozen"
    assert not loss_fn.train().features.training
    caffe = load_perceptual_loss(vgg_file, normalization="caffe")
    assert caffe is not None and float(caffe(pred.detach(), x)) != pytest.approx(float(value.detach()))


def test_vgg_missing_or_bad_weights(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="adop.nn.losses"):
        assert load_perceptual_loss(None) is None
        assert load_perceptual_loss(tmp_path / "absent.pth") is None
    assert "no weights path" in caplog.text and "not found" in caplog.text
    wrong = tmp_path / "wrong.pth"
    torch.save({"0.weight": torch.zeros(3)}, wrong)
    with pytest.raises(InputError, match="missing"):
        load_perceptual_loss(wrong)
    garbage = tmp_path / "garbage.pth"
    garbage.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="cannot read"):
        load_perceptual_loss(garbage)


def test_photometric_loss(vgg_file: Path) -> None:
    x, y = torch.rand(1, 3, 32, 32), torch.rand(1, 3, 32, 32)
    without = PhotometricLoss(LossConfig())(x, y)
    assert without.vgg is None
    assert float(without.total) == pytest.approx(without.l1 + 1 - without.ssim, rel=1e-5)
    with_vgg = PhotometricLoss(LossConfig(vgg_weights=vgg_file, vgg_weight=0.5))(x, y)
    assert with_vgg.vgg is not None and with_vgg.vgg > 0
    assert float(with_vgg.total) == pytest.approx(without.l1 + 1 - without.ssim + 0.5 * with_vgg.vgg, rel=1e-5)
