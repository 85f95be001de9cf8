"""Image quality metrics for evaluation: PSNR, SSIM and (with local weights) LPIPS on display images in [0, 1].

Predictions are clamped to [0, 1] before scoring, as ADOP's ``eval`` does, because the photos cannot hold values
outside it. SSIM is the same implementation as the training loss (``adop.nn.losses.ssim``).

LPIPS (VGG, lpips v0.1, ``adop.nn.lpips``) needs a pretrained VGG-16 and lpips' learned heads, which are never
downloaded: pass ``lpips=load_lpips_dir(DIR)`` (DIR holding ``vgg16.pth`` and ``vgg.pth``) to fill
``ImageMetrics.lpips``; without it the field is None. ``adop eval --lpips-weights DIR`` (or ``ADOP_LPIPS_WEIGHTS``)
does this for the evaluation report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adop.errors import ShapeError
from adop.nn.losses import ssim
from adop.nn.lpips import LPIPS

__all__ = ["ImageMetrics", "compute_metrics", "psnr", "ssim"]


def psnr(
    pred: Tensor,  # [B, C, H, W]
    target: Tensor,  # [B, C, H, W]
    *,
    mask: Tensor | None = None,  # [B, 1, H, W]
    data_range: float = 1.0,
    clamp: bool = True,
) -> Tensor:  # [B]
    """Peak signal-to-noise ratio per image, ``10·log10(L² / MSE)`` in dB (``inf`` for identical images).

    Args:
        pred: Rendered display image.
        target: Photo.
        mask: Optional pixel weights (e.g. the right half of a held-out view); MSE is the weighted mean.
        data_range: Peak value L.
        clamp: Clamp ``pred`` to ``[0, data_range]`` first (ADOP's evaluation does).

    Example:
        >>> x = torch.zeros(1, 3, 4, 4)
        >>> round(float(psnr(x + 0.1, x)), 3)
        20.0
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ShapeError(
            f"psnr: expected two equal [B, C, H, W] tensors, got {list(pred.shape)} and {list(target.shape)}"
        )
    if clamp:
        pred = pred.clamp(0.0, data_range)
    err = (pred - target.to(pred)) ** 2
    if mask is None:
        mse = err.mean(dim=(1, 2, 3))
    else:
        weight = mask.to(err).expand_as(err)
        mse = (err * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-12)
    return 10.0 * torch.log10(data_range**2 / mse)


@dataclass(frozen=True)
class ImageMetrics:
    """Per-image scores of one evaluation batch."""

    psnr: Tensor
    """[B] PSNR in dB."""
    ssim: Tensor
    """[B] mean SSIM."""
    lpips: Tensor | None = None
    """[B] LPIPS (VGG, v0.1); None when no LPIPS weights were given (module docstring)."""


@torch.no_grad()
def compute_metrics(
    pred: Tensor,  # [B, 3, H, W]
    target: Tensor,  # [B, 3, H, W]
    *,
    mask: Tensor | None = None,  # [B, 1, H, W]
    lpips: LPIPS | None = None,
) -> ImageMetrics:
    """PSNR, SSIM and, given the ``lpips`` metric (``adop.nn.lpips.load_lpips_dir``), LPIPS of clamped predictions
    against photos in [0, 1]."""
    pred = pred.clamp(0.0, 1.0)
    return ImageMetrics(
        psnr=psnr(pred, target, mask=mask), ssim=ssim(pred, target, mask=mask),
        lpips=None if lpips is None else lpips(pred, target, mask=mask),
    )
