"""Training losses: SSIM, L1 + (1 − SSIM), and an optional VGG-19 perceptual term from local weights only.

ADOP trains with ``VGG + L1`` (ADOP ``Pipeline.cpp``; docs/method.md §7); adop uses ``L1 + (1 − SSIM)`` plus VGG
when weights are on disk. The VGG stacks are defined here (no torchvision dependency) with torchvision's
``vgg19().features`` / ``vgg16().features`` layer numbering, so a torchvision state dict — the ``features.`` part of
``vgg19-dcbb9e9d.pth`` (``vgg16-397923af.pth``) or a bare ``features`` state dict — loads directly. VGG-16 serves
LPIPS (``adop.nn.lpips``). Weights are never downloaded: a missing path turns the term off with a logged note.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adop.config import Config
from adop.errors import InputError, ShapeError

__all__ = [
    "LossConfig",
    "LossTerms",
    "PhotometricLoss",
    "VGG16Features",
    "VGG19Features",
    "VGGFeatures",
    "VGGPerceptualLoss",
    "l1_ssim_loss",
    "load_perceptual_loss",
    "read_state_dict",
    "ssim",
    "ssim_map",
]

log = logging.getLogger(__name__)

VGGNormalization = Literal["imagenet", "caffe"]
Pooling = Literal["avg", "max"]
_VGG = TypeVar("_VGG", bound="VGGFeatures")

# torchvision's VGG-19 ("E") feature stack up to relu5_1: conv widths, "P" = 2×2 pool.
_VGG19_STACK: tuple[int | str, ...] = (
    64, 64, "P", 128, 128, "P", 256, 256, 256, 256, "P", 512, 512, 512, 512, "P", 512,
)
# torchvision's VGG-16 ("D") feature stack up to relu5_3 (index 29; the last pool, index 30, has no weights).
_VGG16_STACK: tuple[int | str, ...] = (
    64, 64, "P", 128, 128, "P", 256, 256, 256, "P", 512, 512, 512, "P", 512, 512, 512,
)
# Feature taps of ADOP's VGG loss: relu1_1, relu1_2, relu2_1, relu2_2, relu3_1..4, relu4_1..4, relu5_1.
VGG_TAPS: tuple[int, ...] = (1, 3, 6, 8, 11, 13, 15, 17, 20, 22, 24, 26, 29)


def _gaussian_window(size: int, sigma: float, like: Tensor) -> Tensor:
    x = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def ssim_map(
    pred: Tensor,  # [B, C, H, W]
    target: Tensor,  # [B, C, H, W]
    *,
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:  # [B, C, H − window_size + 1, W − window_size + 1]
    """Local SSIM (Wang et al. 2004) with a Gaussian window, over the valid region (no padding).

    Standard constants ``C1 = (0.01·L)²``, ``C2 = (0.03·L)²`` and population (not sample) statistics, matching the
    reference MATLAB code and ``skimage``'s ``gaussian_weights=True, use_sample_covariance=False``. Differentiable.

    Raises:
        ShapeError: shapes differ, are not 4-D, or are smaller than the window.
    """
    if pred.shape != target.shape or pred.dim() != 4:
        raise ShapeError(
            f"ssim: expected two equal [B, C, H, W] tensors, got {list(pred.shape)} and {list(target.shape)}"
        )
    b, c, h, w = pred.shape
    if min(h, w) < window_size:
        raise ShapeError(f"ssim: image {w}×{h} is smaller than the {window_size}×{window_size} window")
    target = target.to(pred)
    g = _gaussian_window(window_size, sigma, pred)
    kx, ky = g.view(1, 1, 1, -1).expand(c, 1, 1, -1), g.view(1, 1, -1, 1).expand(c, 1, -1, 1)

    def blur(x: Tensor) -> Tensor:
        return F.conv2d(F.conv2d(x, kx, groups=c), ky, groups=c)

    mu_x, mu_y = blur(pred), blur(target)
    var_x = blur(pred * pred) - mu_x**2
    var_y = blur(target * target) - mu_y**2
    cov = blur(pred * target) - mu_x * mu_y
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    return ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / ((mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2))


def ssim(
    pred: Tensor,  # [B, C, H, W]
    target: Tensor,  # [B, C, H, W]
    *,
    mask: Tensor | None = None,  # [B, 1, H, W]
    data_range: float = 1.0,
    window_size: int = 11,
    sigma: float = 1.5,
) -> Tensor:  # [B]
    """Mean SSIM per image; with ``mask``, the SSIM map averaged with the mask's weights at each window centre.

    Example:
        >>> x = torch.rand(2, 3, 16, 16)
        >>> ssim(x, x)
        tensor([1., 1.])
    """
    smap = ssim_map(pred, target, data_range=data_range, window_size=window_size, sigma=sigma)
    if mask is None:
        return smap.mean(dim=(1, 2, 3))
    r = window_size // 2
    weight = mask.to(smap)[:, :, r : r + smap.shape[-2], r : r + smap.shape[-1]].expand_as(smap)
    return (smap * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-8)


def l1_ssim_loss(
    pred: Tensor,  # [B, 3, H, W]
    target: Tensor,  # [B, 3, H, W]
    *,
    mask: Tensor | None = None,  # [B, 1, H, W]
    ssim_weight: float = 1.0,
) -> Tensor:
    """``L1 + ssim_weight·(1 − SSIM)``, a scalar. With a mask both images are multiplied by it first, as ADOP does.

    L1 keeps colours and brightness right; the SSIM term rewards local structure and contrast, which plain L1
    under-weights in dark regions.
    """
    if mask is not None:
        pred, target = pred * mask, target * mask
    loss = F.l1_loss(pred, target)
    if ssim_weight:
        loss = loss + ssim_weight * (1.0 - ssim(pred, target).mean())
    return loss


def read_state_dict(path: Path, what: str, expected: str) -> dict:
    """The dict of tensors a torch file holds (``weights_only``: never runs code from the file).

    Raises:
        InputError: the file is unreadable or holds no dict; the message names ``what`` was read and what is
            ``expected``.
    """
    try:
        raw = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any load failure is the user's file
        raise InputError(f"cannot read {what} from {path}: {exc}; expected {expected}") from exc
    if not isinstance(raw, dict):
        raise InputError(f"{path} holds a {type(raw).__name__}, expected {expected}")
    return raw


class VGGFeatures(nn.Sequential):
    """A VGG convolutional stack numbered like torchvision's ``vggNN().features`` (3×3 conv + ReLU, 2×2 pools).

    Subclasses set ``stack`` (conv widths, ``"P"`` = pool), ``arch`` (the name in messages) and ``default_pooling``.

    Args:
        pooling: ``"avg"`` or ``"max"`` pooling; None takes the subclass's ``default_pooling``.
    """

    stack: tuple[int | str, ...] = ()
    arch: str = "VGG"
    default_pooling: Pooling = "max"

    def __init__(self, pooling: Pooling | None = None) -> None:
        pooling = self.default_pooling if pooling is None else pooling
        layers: list[nn.Module] = []
        channels = 3
        for item in self.stack:
            if item == "P":
                layers.append(nn.AvgPool2d(2) if pooling == "avg" else nn.MaxPool2d(2))
            else:
                layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1), nn.ReLU()]
                channels = int(item)
        super().__init__(*layers)

    @classmethod
    def from_state_dict_file(cls: type[_VGG], path: Path, *, pooling: Pooling | None = None) -> _VGG:
        """Load weights from a torch file holding a torchvision-numbered state dict of this VGG (no download, ever).

        Accepts keys ``N.weight``/``N.bias`` or ``features.N.*`` (a whole-model torchvision file); layers past the
        stack's last ReLU and the classifier are ignored.

        Raises:
            InputError: the file is unreadable or lacks a needed tensor, or a tensor has the wrong shape.
        """
        raw = read_state_dict(path, f"{cls.arch} weights", f"a torchvision {cls.arch} state dict")
        net = cls(pooling=pooling)
        needed = net.state_dict().keys()
        state = {str(k).removeprefix("features."): v for k, v in raw.items()}
        missing = [k for k in needed if k not in state]
        if missing:
            raise InputError(f"{path} is not a {cls.arch} features state dict: missing {missing[:4]} (and more?)")
        try:
            net.load_state_dict({k: state[k] for k in needed})
        except RuntimeError as exc:
            raise InputError(f"{path}: {cls.arch} tensors have the wrong shapes: {exc}") from exc
        return net


class VGG19Features(VGGFeatures):
    """VGG-19 up to relu5_1 (ADOP's perceptual loss); average pooling by default, as ADOP/saiga use it for smoother
    gradients."""

    stack = _VGG19_STACK
    arch = "VGG-19"
    default_pooling: Pooling = "avg"


class VGG16Features(VGGFeatures):
    """VGG-16 up to relu5_3 (LPIPS's trunk); max pooling by default, as torchvision's (and LPIPS's) network."""

    stack = _VGG16_STACK
    arch = "VGG-16"
    default_pooling: Pooling = "max"


class VGGPerceptualLoss(nn.Module):
    """Sum over ADOP's 13 VGG taps of the mean L1 distance between feature maps (weights frozen).

    Args:
        features: The VGG stack (its parameters are frozen here).
        normalization: ``"imagenet"`` for torchvision weights (RGB, mean/std of ImageNet); ``"caffe"`` for Caffe
            weights (BGR, 0..255, mean (103.939, 116.779, 123.68)).
    """

    def __init__(self, features: VGG19Features, normalization: VGGNormalization = "imagenet") -> None:
        super().__init__()
        self.features = features.eval().requires_grad_(False)
        if normalization == "imagenet":
            mean, scale, order = (0.485, 0.456, 0.406), (1 / 0.229, 1 / 0.224, 1 / 0.225), [0, 1, 2]
        else:
            mean, scale, order = (103.939 / 255, 116.779 / 255, 123.68 / 255), (255.0,) * 3, [2, 1, 0]
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(scale).view(1, 3, 1, 1))
        self.channel_order = order

    def train(self, mode: bool = True) -> VGGPerceptualLoss:
        """Keep the frozen VGG in eval mode whatever the trainer sets."""
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, pred: Tensor, target: Tensor) -> Tensor:  # [B, 3, H, W] each -> scalar
        """Perceptual distance of display images in [0, 1]."""
        x = torch.cat([pred, target.to(pred)], dim=0)[:, self.channel_order]
        x = (x - self.mean.to(x)) * self.scale.to(x)
        loss = x.new_zeros(())
        last = max(VGG_TAPS)
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in VGG_TAPS:
                fp, ft = x.chunk(2, dim=0)
                loss = loss + F.l1_loss(fp, ft)
            if index == last:
                break
        return loss


def load_perceptual_loss(
    path: Path | str | None, *, normalization: VGGNormalization = "imagenet"
) -> VGGPerceptualLoss | None:
    """The VGG term if its weights are on disk, else None with a logged note (the term is then off).

    Raises:
        InputError: the file exists but is not usable VGG-19 weights (a wrong file should not silently disable it).
    """
    if path is None:
        log.info("VGG perceptual loss off: no weights path configured")
        return None
    path = Path(path)
    if not path.is_file():
        log.warning("VGG perceptual loss off: weights file %s not found (weights are never downloaded)", path)
        return None
    return VGGPerceptualLoss(VGG19Features.from_state_dict_file(path), normalization=normalization)


@dataclass(frozen=True)
class LossConfig(Config):
    """Weights of the photometric loss terms."""

    l1_weight: float = 1.0
    """Weight of the L1 term."""
    ssim_weight: float = 1.0
    """Weight of the (1 − SSIM) term."""
    vgg_weight: float = 1.0
    """Weight of the VGG term when weights are available (ADOP: 1)."""
    vgg_weights: Path | None = None
    """Local VGG-19 state dict (torchvision numbering); None turns the VGG term off."""
    vgg_normalization: VGGNormalization = "imagenet"
    """Input normalisation matching how ``vgg_weights`` were trained."""


@dataclass(frozen=True)
class LossTerms:
    """The total training loss and its parts (detached parts, for logging)."""

    total: Tensor
    """Weighted sum to back-propagate."""
    l1: float
    """L1 term (unweighted)."""
    ssim: float
    """Mean SSIM (not 1 − SSIM)."""
    vgg: float | None
    """VGG term (unweighted), None when off."""


class PhotometricLoss(nn.Module):
    """``l1·L1 + s·(1 − SSIM) + v·VGG`` on masked display images (ADOP ``Pipeline.cpp`` plus SSIM; docs/method.md §7).

    Args:
        config: Term weights and the optional VGG weights path.
    """

    def __init__(self, config: LossConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else LossConfig()
        self.vgg = (
            load_perceptual_loss(self.config.vgg_weights, normalization=self.config.vgg_normalization)
            if self.config.vgg_weight
            else None
        )

    def forward(self, pred: Tensor, target: Tensor, mask: Tensor | None = None) -> LossTerms:
        """Loss of ``pred`` against ``target`` ([B, 3, H, W]); ``mask`` [B, 1, H, W] multiplies both first."""
        if mask is not None:
            pred, target = pred * mask, target * mask
        cfg = self.config
        l1 = F.l1_loss(pred, target)
        s = ssim(pred, target).mean()
        total = cfg.l1_weight * l1 + cfg.ssim_weight * (1.0 - s)
        vgg = None
        if self.vgg is not None:
            vgg_t = self.vgg(pred, target)
            total = total + cfg.vgg_weight * vgg_t
            vgg = float(vgg_t.detach())
        return LossTerms(total=total, l1=float(l1.detach()), ssim=float(s.detach()), vgg=vgg)
