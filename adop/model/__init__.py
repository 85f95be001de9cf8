"""Learned image formation: the neural renderer (pyramid → linear HDR), the tonemapper (HDR → LDR), losses, metrics."""

from adop.model.losses import LossConfig, LossTerms, PhotometricLoss, l1_ssim_loss, load_perceptual_loss, ssim
from adop.model.lpips import LPIPS, load_lpips, load_lpips_dir
from adop.model.metrics import ImageMetrics, compute_metrics, psnr
from adop.model.renderer import NeuralRenderer, RendererConfig
from adop.model.tonemapper import Tonemapper, TonemapperConfig, ViewCorrection

__all__ = [
    "ImageMetrics",
    "LPIPS",
    "LossConfig",
    "LossTerms",
    "NeuralRenderer",
    "PhotometricLoss",
    "RendererConfig",
    "Tonemapper",
    "TonemapperConfig",
    "ViewCorrection",
    "compute_metrics",
    "l1_ssim_loss",
    "load_lpips",
    "load_lpips_dir",
    "load_perceptual_loss",
    "psnr",
    "ssim",
]
