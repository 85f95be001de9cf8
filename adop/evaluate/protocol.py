"""The held-out protocol: fit a view's exposure and white balance on its left half, score on its right half.

A held-out photo was taken at an exposure and white balance the model never saw. Scoring it with the scene EV would
punish the model for the camera's metering; fitting the correction on the whole photo would let the tonemapper see
the target it is scored on. So the correction (EV and R/B gains, LBFGS, ``Tonemapper.fit_view_correction``) is fitted
on the left half and PSNR/SSIM (and LPIPS, given its weights) are computed on the right half only. A ``border``-pixel
frame is excluded from both halves, as ADOP's evaluation masks it; LPIPS is lpips' value of that right-half crop
(``adop.nn.lpips``). Baseline (b) (trained without the camera model, fixed gamma 2.2) gets the very
same EV + white-balance fit through its fixed response; baseline (a) has no tonemapper at all (display colours) and
gets a per-channel gain (``fit_gain``) instead. No method is scored on pixels it was fitted to.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

from adop.nn.lpips import LPIPS
from adop.nn.metrics import compute_metrics
from adop.nn.tonemapper import Tonemapper, ViewCorrection

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ViewScore:
    """One held-out view scored with the left/right protocol."""

    psnr: float
    """PSNR in dB on the right half (border excluded)."""
    ssim: float
    """Mean SSIM on the right half (window centres in the half)."""
    ldr: Tensor
    """``[1, 3, H, W]`` the full rendered view with the fitted correction, in [0, 1]."""
    correction: ViewCorrection | None
    """Fitted exposure and white balance (None for gain-fitted baselines)."""
    lpips: float | None = None
    """LPIPS (VGG, v0.1) on the right half (border excluded); None without LPIPS weights."""


def half_masks(height: int, width: int, border: int = 16) -> tuple[Tensor, Tensor]:
    """``(left, right)`` masks ``[1, 1, H, W]``: columns left/right of ``W // 2``, minus a ``border`` frame."""
    inner = torch.zeros(1, 1, height, width)
    b = border if 2 * border < min(height, width) - 22 else 0  # keep at least an SSIM window inside
    inner[..., b:height - b, b:width - b] = 1.0
    left = inner.clone()
    left[..., width // 2:] = 0.0
    return left, inner - left


def score_right(ldr: Tensor, photo: Tensor, right: Tensor, lpips: LPIPS | None = None
                ) -> tuple[float, float, float | None]:
    """PSNR, SSIM and LPIPS (None without ``lpips``) of ``ldr`` against ``photo`` on the ``right`` mask
    (``[1, 3, H, W]`` each)."""
    scores = compute_metrics(ldr, photo, mask=right, lpips=lpips)
    return float(scores.psnr[0]), float(scores.ssim[0]), None if scores.lpips is None else float(scores.lpips[0])


def _masked_mse(a: Tensor, b: Tensor, mask: Tensor) -> float:
    w = mask.expand_as(a)
    return float(((a.detach() - b) ** 2 * w).sum() / w.sum().clamp_min(1.0))


def fit_correction(
    tonemapper: Tonemapper, hdr: Tensor, photo: Tensor, mask: Tensor, *, camera_index: int = 0,
    ev_init: float | None = None, fit_white_balance: bool = True,
) -> ViewCorrection:
    """Robust exposure/white-balance fit of one view on ``mask``: a coarse EV grid, then LBFGS from its best point.

    ``Tonemapper.fit_view_correction`` alone can diverge when its start leaves every pixel clipped (its strong-Wolfe
    line search then extrapolates the EV to ±inf and the response lookup receives NaN); the grid (±4 stops in quarter
    stops, neutral white balance) puts LBFGS in the right basin, and its result is kept only if it is finite and no
    worse than the grid's.
    """
    start = float(tonemapper.scene_ev) if ev_init is None else float(ev_init)
    hdr = torch.nan_to_num(hdr.detach(), nan=0.0, posinf=1e6, neginf=-1e6)
    photo, mask = photo.detach(), mask.detach()
    grid = [start + 0.25 * k for k in range(-16, 17)]
    losses = [_masked_mse(tonemapper.apply(hdr, ev=ev, camera_index=camera_index), photo, mask) for ev in grid]
    best = int(min(range(len(grid)), key=lambda k: losses[k]))
    fallback = ViewCorrection(ev=grid[best], white_balance=(1.0, 1.0), loss=losses[best])
    try:
        with torch.enable_grad():
            corr = tonemapper.fit_view_correction(
                hdr, photo, mask=mask, camera_index=camera_index, ev_init=grid[best],
                fit_white_balance=fit_white_balance,
            )
    except RuntimeError as error:  # diverged line search (see docstring)
        log.info("LBFGS exposure fit diverged (%s); fitting with Adam from the grid estimate", error)
        corr = _adam_fit(tonemapper, hdr, photo, mask, camera_index, fallback.ev, fit_white_balance)
    values = [corr.ev, *corr.white_balance, corr.loss]
    if not all(math.isfinite(v) for v in values) or corr.loss > fallback.loss:
        return fallback
    return corr


def _adam_fit(tonemapper: Tonemapper, hdr: Tensor, photo: Tensor, mask: Tensor, camera_index: int, ev0: float,
              fit_white_balance: bool, steps: int = 150) -> ViewCorrection:
    """Slow but safe fallback: Adam on (EV, log R/B gains) through ``Tonemapper.apply`` (no line search)."""
    hdr, photo, mask = hdr.detach(), photo.detach(), mask.detach()
    ev = torch.tensor(ev0, dtype=hdr.dtype, device=hdr.device, requires_grad=True)
    log_wb = torch.zeros(2, dtype=hdr.dtype, device=hdr.device, requires_grad=fit_white_balance)
    params = [ev, log_wb] if fit_white_balance else [ev]
    opt = torch.optim.Adam(params, lr=0.02)
    w = mask.expand_as(hdr)
    with torch.enable_grad():
        for _ in range(steps):
            ldr = tonemapper.apply(hdr, ev=ev, white_balance=log_wb.exp(), camera_index=camera_index)
            loss = ((ldr - photo) ** 2 * w).sum() / w.sum().clamp_min(1.0)
            opt.zero_grad()
            loss.backward()
            opt.step()
    gains = log_wb.detach().exp()
    ldr = tonemapper.apply(hdr, ev=float(ev.detach()), white_balance=(float(gains[0]), float(gains[1])),
                           camera_index=camera_index)
    return ViewCorrection(ev=float(ev.detach()), white_balance=(float(gains[0]), float(gains[1])),
                          loss=_masked_mse(ldr, photo, mask))


@torch.no_grad()
def score_view(
    tonemapper: Tonemapper, hdr: Tensor, photo: Tensor, *, camera_index: int = 0, ev_init: float | None = None,
    border: int = 16, fit_white_balance: bool = True, lpips: LPIPS | None = None,
) -> ViewScore:
    """Fit the correction of a held-out view on its left half and score it on its right half.

    Args:
        tonemapper: the trained tonemapper (its learned vignette and response are used as they are).
        hdr: ``[1, 3, H, W]`` rendered linear HDR of the view.
        photo: ``[1, 3, H, W]`` the photo in [0, 1].
        camera_index: the view's camera (response curve).
        ev_init: starting EV100 of the fit (the view's EXIF EV).
        border: pixels excluded at the image edges.
        fit_white_balance: also fit R/B gains (only when the tonemapper models white balance).
        lpips: the LPIPS metric (``adop.nn.lpips.load_lpips_dir``); None leaves ``ViewScore.lpips`` None.

    Returns:
        The score and the fully corrected render.
    """
    h, w = hdr.shape[-2:]
    left, right = (m.to(hdr) for m in half_masks(h, w, border))
    corr = fit_correction(tonemapper, hdr, photo, left, camera_index=camera_index, ev_init=ev_init,
                          fit_white_balance=fit_white_balance)
    ldr = tonemapper.apply(hdr, ev=corr.ev, white_balance=corr.white_balance, camera_index=camera_index)
    p, s, lp = score_right(ldr, photo, right, lpips)
    return ViewScore(psnr=p, ssim=s, ldr=ldr.clamp(0.0, 1.0), correction=corr, lpips=lp)


def fit_gain(render: Tensor, photo: Tensor, mask: Tensor) -> Tensor:
    """Least-squares per-channel gain ``g`` minimising ``|g·render − photo|²`` on ``mask`` (``[1, 3, 1, 1]``)."""
    num = (render * photo * mask).sum(dim=(0, 2, 3), keepdim=True)
    den = (render * render * mask).sum(dim=(0, 2, 3), keepdim=True).clamp_min(1e-12)
    return num / den


@torch.no_grad()
def score_gain_view(render: Tensor, photo: Tensor, *, border: int = 16, lpips: LPIPS | None = None) -> ViewScore:
    """The protocol for a display-space render without a tonemapper: a per-channel gain fitted on the left half."""
    h, w = render.shape[-2:]
    left, right = (m.to(render) for m in half_masks(h, w, border))
    ldr = (render * fit_gain(render, photo, left)).clamp(0.0, 1.0)
    p, s, lp = score_right(ldr, photo, right, lpips)
    return ViewScore(psnr=p, ssim=s, ldr=ldr, correction=None, lpips=lp)
