"""Learned image formation: the neural renderer (pyramid → linear HDR), the tonemapper (HDR → LDR), losses, metrics."""

from adop.nn.losses import LossConfig, LossTerms, PhotometricLoss, l1_ssim_loss, load_perceptual_loss, ssim
from adop.nn.lpips import LPIPS, load_lpips, load_lpips_dir
from adop.nn.metrics import ImageMetrics, compute_metrics, psnr
from adop.nn.renderer import NeuralRenderer, RendererConfig
from adop.nn.tonemapper import Tonemapper, TonemapperConfig, ViewCorrection

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
