"""Tests of adop.nn.tonemapper: init, exposure semantics, anchoring, vignette crops, response leak, view fitting."""

from __future__ import annotations

import math

import pytest
import torch

from adop.errors import ShapeError
from adop.nn.tonemapper import Tonemapper, TonemapperConfig, crop_uv

torch.set_num_threads(2)
GAMMA = 1 / 2.2


def _ramp(n: int = 2001) -> torch.Tensor:
    return torch.linspace(0, 1, n, dtype=torch.float64).view(1, 1, 1, -1).expand(1, 3, 1, -1)


def test_init_is_gamma_within_piecewise_linear_error() -> None:
    tm = Tonemapper(num_images=1).double().eval()
    x = _ramp()
    with torch.no_grad():
        err = (tm.apply(x) - x**GAMMA).abs()[0, 0, 0]
    xs = x[0, 0, 0]
    h = 1 / 24
    # First segment: chord of x^p from 0 to h; its largest gap is at x* = h·p^(1/(1−p)).
    x_star = h * GAMMA ** (1 / (1 - GAMMA))
    first_bound = x_star**GAMMA - x_star * h ** (GAMMA - 1)
    # Elsewhere: h²/8 · max|f''| on [h, 1] = h²/8 · |f''(h)|.
    rest_bound = h**2 / 8 * GAMMA * (1 - GAMMA) * h ** (GAMMA - 2)
    assert float(err[xs <= h].max()) <= first_bound + 1e-6
    assert float(err[xs >= h].max()) <= rest_bound
    torch.testing.assert_close(tm.apply(x)[..., [0, -1]], x[..., [0, -1]])  # 0 -> 0, 1 -> 1


def test_identity_at_scene_ev() -> None:
    """EXIF-free init: exposure 0, white balance 1, vignette 1 — only the response curve acts."""
    tm = Tonemapper(num_images=3).eval()
    hdr = torch.rand(3, 3, 6, 7)
    out = tm(hdr, torch.arange(3), torch.zeros(3, dtype=torch.long))
    torch.testing.assert_close(out, tm.apply(hdr))


def test_plus_one_ev_halves_linear_values() -> None:
    tm = Tonemapper(num_images=2, exif_ev=torch.tensor([10.0, 12.0]))
    assert float(tm.scene_ev) == 11.0
    hdr = torch.rand(1, 3, 5, 4) * 4
    at_scene = tm.apply(hdr, ev=11.0, output="linear")
    torch.testing.assert_close(at_scene, hdr)
    torch.testing.assert_close(tm.apply(hdr, ev=12.0, output="linear"), hdr / 2)
    # Per-image EXIF: image 1 was shot 2 EV above image 0, so the same radiance lands 4× darker.
    plain = Tonemapper(TonemapperConfig(enable_response=False), num_images=2, exif_ev=torch.tensor([10.0, 12.0]))
    small = torch.rand(2, 3, 4, 4) * 0.2
    out = plain(torch.cat([small[:1], small[:1]]), torch.tensor([0, 1]), torch.tensor([0, 0]))
    torch.testing.assert_close(out[1], out[0] / 4)
    assert tm.view_correction(1).ev == pytest.approx(12.0)


def _optimise(tm: Tonemapper, steps: int = 25) -> None:
    """Adam on targets that want every image brighter and bluer: a global shift the anchor must refuse."""
    gen = torch.Generator().manual_seed(0)
    hdr = torch.rand(4, 3, 8, 8, generator=gen) * 0.5
    target_scale = torch.tensor([1.6, 2.0, 1.3, 1.8]).view(4, 1, 1, 1) * torch.tensor([0.8, 1.0, 1.5]).view(1, 3, 1, 1)
    with torch.no_grad():
        target = tm.apply(hdr * target_scale, vignette=False)
    opt = torch.optim.Adam([tm.exposure, tm.log_white_balance], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = (tm(hdr, torch.arange(4), torch.zeros(4, dtype=torch.long)) - target).abs().mean()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("anchor", ["zero_mean", "reference"])
def test_anchoring_keeps_global_level_fixed(anchor: str) -> None:
    exif = torch.tensor([9.0, 10.0, 11.0, 14.0])
    train = torch.tensor([True, True, True, False])
    cfg = TonemapperConfig(anchor=anchor)  # type: ignore[arg-type]
    tm = Tonemapper(cfg, num_images=4, exif_ev=exif, train_images=train)
    init = tm.effective_exposure().detach().clone()
    _optimise(tm)
    ev, wb = tm.effective_exposure().detach(), tm.effective_log_white_balance().detach()
    assert not torch.allclose(ev, init, atol=1e-3), "the corrections did not move at all"
    if anchor == "zero_mean":
        assert float(tm.scene_ev) == 10.0
        assert abs(float(ev[train].mean())) < 1e-5  # the EXIF mean of the training images, relative to scene EV
        assert float(wb[train].mean(dim=0).abs().max()) < 1e-5
    else:
        assert float(ev[0]) == pytest.approx(float(init[0]), abs=1e-6)
        assert float(wb[0].abs().max()) < 1e-6


def test_without_anchor_the_global_level_drifts() -> None:
    """Shows the anchoring test can fail: the same optimisation unanchored moves the mean EV."""
    tm = Tonemapper(TonemapperConfig(anchor="none"), num_images=4)
    _optimise(tm)
    assert abs(float(tm.effective_exposure().detach().mean())) > 0.2


def _vignetted() -> Tonemapper:
    tm = Tonemapper(TonemapperConfig(enable_response=False), num_images=1).double()
    with torch.no_grad():
        tm.vignette_alpha.copy_(torch.tensor([-0.3, 0.1, -0.05]))
        tm.vignette_centre.copy_(torch.tensor([0.1, -0.2]))
    return tm


def test_vignette_crop_equals_part_of_full_image() -> None:
    tm = _vignetted()
    full = torch.tensor([[40.0, 30.0]], dtype=torch.float64)
    whole = tm.vignette_factor(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), full, 30, 40)
    crop = tm.vignette_factor(torch.tensor([[1.0, 10.0, 7.0]], dtype=torch.float64), full, 12, 16)
    torch.testing.assert_close(crop, whole[..., 7:19, 10:26])
    # Zoom 2 of a 40×30 image samples the same uv as the 80×30 full image at double resolution.
    zoomed = tm.vignette_factor(torch.tensor([[2.0, 0.0, 0.0]], dtype=torch.float64), full, 60, 80)
    double = tm.vignette_factor(torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64), full * 2, 60, 80)
    torch.testing.assert_close(zoomed, double)
    assert float(whole.detach().min()) < 0.9  # the test is not vacuous
    # Through the whole forward pass, with a per-element crop and the full size as a tuple.
    hdr = torch.rand(1, 3, 30, 40, dtype=torch.float64) * 0.5
    out_full = tm(hdr, torch.tensor([0]), torch.tensor([0]), full_size=(40, 30))
    out_crop = tm(hdr[..., 7:19, 10:26], torch.tensor([0]), torch.tensor([0]),
                  crop=torch.tensor([[1.0, 10.0, 7.0]]), full_size=(40, 30))
    torch.testing.assert_close(out_crop, out_full[..., 7:19, 10:26])


def test_crop_uv_pixel_centres() -> None:
    u, v = crop_uv(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[4.0, 2.0]]), 2, 4)
    torch.testing.assert_close(u[0, 0], torch.tensor([-0.75, -0.25, 0.25, 0.75]))
    torch.testing.assert_close(v[0, :, 0], torch.tensor([-0.5, 0.5]))


def test_gradients_reach_every_learned_parameter() -> None:
    tm = Tonemapper(num_images=3, num_cameras=2).train()
    with torch.no_grad():
        tm.vignette_alpha.fill_(-0.1)  # at alpha = 0 the centre has no gradient (the factor is constant)
    hdr = torch.rand(3, 3, 6, 8) * 1.5
    out = tm(hdr, torch.tensor([0, 1, 2]), torch.tensor([0, 1, 1]), crop=torch.tensor([[1.0, 2.0, 1.0]] * 3),
             full_size=(12, 9))
    ((out - 0.3) ** 2).mean().backward()
    (tm.smoothness_loss()).backward()
    for name, param in tm.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, f"no gradient for {name}"


def test_fixed_exposure_is_not_learned() -> None:
    tm = Tonemapper(TonemapperConfig(learn_exposure=False), num_images=2, exif_ev=torch.tensor([8.0, 9.0]))
    assert not tm.exposure.requires_grad
    torch.testing.assert_close(tm.effective_exposure(), torch.tensor([-0.5, 0.5]))


def test_response_leak() -> None:
    tm = Tonemapper(num_images=1)
    x = torch.tensor([-2.0, -0.5, 0.5, 1.5, 3.0]).view(1, 1, 1, 5).repeat(1, 3, 1, 1).requires_grad_()
    y = tm.train()(x, torch.tensor([0]), torch.tensor([0]))[0, 0, 0]
    f = 0.01
    above = [1 + f - f / math.sqrt(v + 1e-4) for v in (1.5, 3.0)]
    expected = torch.tensor([f * -2.0, f * -0.5, 0.5**GAMMA, *above])
    torch.testing.assert_close(y, expected, atol=2e-3, rtol=0)  # 0.5: within the piecewise-linear error
    y.sum().backward()
    assert (x.grad[0, 0, 0] > 0).all(), "leaky region must pass gradients"
    x.grad = None
    y_eval = tm.eval()(x, torch.tensor([0]), torch.tensor([0]))
    assert float(y_eval.detach().min()) == 0.0 and float(y_eval.detach().max()) == 1.0
    y_eval.sum().backward()
    grad = x.grad[0, 0, 0]
    assert grad[[0, 1, 3, 4]].abs().max() == 0 and grad[2] > 0


def test_smoothness_loss() -> None:
    tm = Tonemapper(TonemapperConfig(response_smoothness=2.0), num_images=1, num_cameras=2)
    with torch.no_grad():
        tm.response.copy_(torch.linspace(0, 1, 25).expand(2, 3, 25))
    assert float(tm.smoothness_loss().detach()) == pytest.approx(0.0, abs=1e-9)  # a straight line through 0 is smooth
    with torch.no_grad():
        tm.response[1, 2, 5] += 0.1
    # Terms k = 4, 5, 6: (-0.05)² + 0.1² + (-0.05)² = 0.015, scale 25²·1e-5 = 0.00625, weight 2.
    assert float(tm.smoothness_loss().detach()) == pytest.approx(2 * 0.00625 * 0.015, rel=1e-4)
    assert float(Tonemapper(num_images=1).smoothness_loss().detach()) > 0  # the gamma start is curved


def test_apply_outputs_and_white_balance() -> None:
    tm = Tonemapper(num_images=1)
    hdr = torch.rand(2, 3, 4, 5) * 3
    assert tm.apply(hdr, output="raw") is hdr
    lin = tm.apply(hdr, white_balance=(2.0, 0.5), output="linear")
    torch.testing.assert_close(lin, hdr * torch.tensor([2.0, 1.0, 0.5]).view(1, 3, 1, 1))
    assert float(lin.detach().max()) > 1  # linear output is not clamped
    ldr = tm.apply(hdr, ev=torch.tensor([0.0, 1.0]), camera_index=0)
    assert float(ldr.detach().max()) <= 1 and float(ldr.detach().min()) >= 0


def test_fit_view_correction_recovers_exposure_and_white_balance() -> None:
    tm = Tonemapper(num_images=2, exif_ev=torch.tensor([10.0, 11.0])).eval()
    with torch.no_grad():
        tm.vignette_alpha.copy_(torch.tensor([-0.2, 0.0, 0.0]))
    hdr = torch.rand(1, 3, 16, 20, generator=torch.Generator().manual_seed(3)) * 0.8
    target = tm.apply(hdr, ev=11.1, white_balance=(1.2, 0.85))
    target[..., 10:] = 0.0  # the right half is "unknown": fitting must ignore it
    left = torch.zeros(1, 1, 16, 20)
    left[..., :10] = 1.0
    fit = tm.fit_view_correction(hdr, target, mask=left, ev_init=11.0)
    assert fit.ev == pytest.approx(11.1, abs=1e-3)
    assert fit.white_balance == pytest.approx((1.2, 0.85), abs=1e-3)
    assert fit.loss < 1e-8
    assert all(p.grad is None for p in tm.parameters()), "fitting must not touch the model"
    no_wb = tm.fit_view_correction(hdr, target, mask=left, fit_white_balance=False)
    assert no_wb.white_balance == (1.0, 1.0) and no_wb.loss > fit.loss


def test_exception() -> None:
    tm = Tonemapper(num_images=2)
    with pytest.raises(ShapeError):
        tm(torch.rand(1, 4, 3, 3), torch.tensor([0]), torch.tensor([0]))
    with pytest.raises(ShapeError):
        tm(torch.rand(1, 3, 3, 3), torch.tensor([0]), torch.tensor([1]))  # only camera 0 exists
    with pytest.raises(ShapeError):
        Tonemapper(num_images=2, exif_ev=torch.zeros(3))
    with pytest.raises(ValueError):
        Tonemapper(num_images=2, train_images=torch.zeros(2, dtype=torch.bool))
    with pytest.raises(ValueError):
        Tonemapper(TonemapperConfig(anchor="reference", reference_image=5), num_images=2)
