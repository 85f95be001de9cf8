"""Tests of adop.nn.renderer: shapes at awkward sizes, parameter count, gradient paths, a tiny overfit."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from adop.errors import ShapeError
from adop.nn.renderer import NeuralRenderer, RendererConfig, _upsample_to

torch.set_num_threads(2)


def _pyramid(
    batch: int, height: int, width: int, layers: int = 4, channels: int = 4, seed: int = 0
) -> list[torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(batch, channels, height >> lv, width >> lv, generator=gen) for lv in range(layers)]


def _expected_parameters(cfg: RendererConfig) -> int:
    """Count from the layout of saiga's ``MultiScaleUnet2d`` (docs/method.md §5), written out independently."""

    def gated(cin: int, cout: int) -> int:
        return 2 * (9 * cin * cout + cout)

    w = [cfg.base_channels * 2**lv for lv in range(cfg.layers)]
    total = gated(cfg.input_channels, w[0]) + w[0] * cfg.output_channels + cfg.output_channels
    for lv in range(1, cfg.layers):
        total += gated(w[lv - 1], w[lv] - cfg.input_channels)  # down block
        total += gated(w[lv], w[lv - 1]) + gated(2 * w[lv - 1], w[lv - 1])  # up block
    return total


@pytest.mark.parametrize("height,width", [(37, 51), (64, 48), (15, 9), (8, 8)])
def test_shapes(height: int, width: int) -> None:
    net = NeuralRenderer()
    out = net(_pyramid(2, height, width))
    assert out.shape == (2, 3, height, width)
    assert torch.isfinite(out).all()


def test_parameter_count() -> None:
    assert NeuralRenderer().num_parameters() == 574_651  # docs/method.md §5: "about 0.57 M"
    for cfg in (RendererConfig(layers=3, base_channels=8), RendererConfig(layers=5, input_channels=6)):
        assert NeuralRenderer.from_config(cfg).num_parameters() == _expected_parameters(cfg)


def test_configurable_depth_and_channels() -> None:
    cfg = RendererConfig(input_channels=6, layers=3, base_channels=8, output_channels=4)
    out = NeuralRenderer(cfg)(_pyramid(1, 21, 13, layers=3, channels=6))
    assert out.shape == (1, 4, 21, 13)


def test_gradient_reaches_every_pyramid_layer() -> None:
    torch.manual_seed(0)
    pyramid = [p.requires_grad_() for p in _pyramid(1, 33, 27)]
    NeuralRenderer()(pyramid).square().mean().backward()
    for level, layer in enumerate(pyramid):
        assert layer.grad is not None and layer.grad.abs().sum() > 0, f"no gradient into pyramid layer {level}"


def test_upsample_pads_only_the_far_edge() -> None:
    x = torch.rand(1, 2, 4, 5)
    up = _upsample_to(x, (9, 10))
    exact = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    torch.testing.assert_close(up[..., :8, :], exact)  # geometry of the u·2^-l map is untouched
    torch.testing.assert_close(up[..., 8, :], exact[..., 7, :])  # the extra row repeats the last one
    with pytest.raises(ShapeError):
        _upsample_to(x, (11, 10))


def test_exception() -> None:
    net = NeuralRenderer()
    with pytest.raises(ShapeError, match="4 layers"):
        net(_pyramid(1, 32, 32, layers=3))
    bad = _pyramid(1, 32, 32)
    bad[2] = torch.rand(1, 4, 9, 8)
    with pytest.raises(ShapeError, match="layer 2"):
        net(bad)
    with pytest.raises(ShapeError, match="too small"):
        net(_pyramid(1, 7, 32))
    with pytest.raises(ValueError):
        RendererConfig(input_channels=8, base_channels=4).validate()


def test_overfit_tiny_target() -> None:
    """A small net must fit a fixed image from a fixed pyramid; catches broken gradients or wiring."""
    torch.manual_seed(0)
    net = NeuralRenderer(RendererConfig(layers=3, base_channels=8))
    pyramid = _pyramid(1, 16, 16, layers=3, seed=1)
    target = 3.0 * pyramid[0][:, 1:] - 0.5  # a function of the input, in HDR (values below 0 and above 1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    first = None
    for _ in range(200):
        opt.zero_grad()
        loss = F.mse_loss(net(pyramid), target)
        loss.backward()
        opt.step()
        first = float(loss.detach()) if first is None else first
    assert float(loss.detach()) < 0.02 * first
