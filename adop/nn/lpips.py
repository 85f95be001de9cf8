"""LPIPS (Zhang et al. 2018), the VGG variant of the ``lpips`` package v0.1, from local weights only.

The metric, as ``lpips.LPIPS(net="vgg", version="0.1")`` computes it:

1. images in [-1, 1] (ours are display images in [0, 1]: ``x·2 − 1``, as lpips' ``normalize=True``);
2. ``ScalingLayer``: ``(x − shift) / scale`` with shift ``(−.030, −.088, −.188)``, scale ``(.458, .448, .450)``;
3. torchvision's ``vgg16().features`` (max pooling), tapped after relu1_2, relu2_2, relu3_3, relu4_3, relu5_3
   (feature indices 3, 8, 15, 22, 29; 64, 128, 256, 512, 512 channels);
4. each tap unit-normalised over channels, ``f / (‖f‖₂ + 1e-10)``, and the two images' taps subtracted and squared;
5. a learned 1×1 convolution without bias per tap (``lin0 … lin4``, weights ``[1, C, 1, 1]``);
6. the spatial mean of each tap's map, summed over the taps.

Two files are needed and neither is ever downloaded: the VGG-16 trunk, a torchvision state dict (the ``features.`` part
of ``vgg16-397923af.pth`` or a bare ``features`` dict, ``VGG16Features.from_state_dict_file``), and lpips' heads
``lpips/weights/v0.1/vgg.pth`` (keys ``lin0.model.1.weight`` … ``lin4.model.1.weight``). ``load_lpips_dir`` takes a
folder holding them as ``vgg16.pth`` and ``vgg.pth``; ``adop eval --lpips-weights DIR`` and the environment variable
``ADOP_LPIPS_WEIGHTS`` name that folder.

Masks (the evaluation scores the right half of a view only): the images are cropped to the mask's bounding box first,
so pixels outside it cannot reach the score through VGG's receptive fields. Where the mask fills that box uniformly (a
rectangle, as the protocol's right half minus its border) the score is lpips' own value of the crop; otherwise it is
the mean over the mask of the per-pixel map that lpips' ``spatial=True`` gives (each tap's map upsampled bilinearly to
the crop size, then summed).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adop.errors import InputError, ShapeError
from adop.nn.losses import VGG16Features, read_state_dict

__all__ = [
    "BACKBONE_FILE",
    "ENV_VAR",
    "HEADS_FILE",
    "LPIPS",
    "LPIPS_CHANNELS",
    "LPIPS_TAPS",
    "load_lpips",
    "load_lpips_dir",
    "lpips_weights_dir",
]

LPIPS_TAPS: tuple[int, ...] = (3, 8, 15, 22, 29)
"""Indices in ``vgg16().features`` of relu1_2, relu2_2, relu3_3, relu4_3, relu5_3."""
LPIPS_CHANNELS: tuple[int, ...] = (64, 128, 256, 512, 512)
"""Channels of the taps (the heads' input widths)."""
BACKBONE_FILE = "vgg16.pth"
"""Name of the VGG-16 trunk in a weights folder (torchvision's ``vgg16-397923af.pth``, renamed)."""
HEADS_FILE = "vgg.pth"
"""Name of lpips' VGG heads in a weights folder (``lpips/weights/v0.1/vgg.pth``)."""
ENV_VAR = "ADOP_LPIPS_WEIGHTS"
"""Environment variable naming the weights folder when none is passed."""

_TORCHVISION_NAME = "vgg16-397923af.pth"  # accepted in the folder too, as torchvision caches it
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10
_MIN_SIZE = 16  # four 2×2 pools before relu5_3


def _unit_normalize(features: Tensor) -> Tensor:
    """lpips' ``normalize_tensor``: divide by the L2 norm over channels (plus 1e-10)."""
    return features / (features.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)


class LPIPS(nn.Module):
    """LPIPS-VGG (v0.1) distance of display images in [0, 1]; frozen and always in eval mode.

    Args:
        features: The VGG-16 trunk (torchvision numbering).
        heads: The five head weights ``[1, C, 1, 1]`` (lpips' ``lin0 … lin4``); None leaves them randomly initialised.
    """

    def __init__(self, features: VGG16Features, heads: Sequence[Tensor] | None = None) -> None:
        super().__init__()
        self.features = features
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in LPIPS_CHANNELS)
        if heads is not None:
            with torch.no_grad():
                for head, weight in zip(self.heads, heads, strict=True):
                    head.weight.copy_(weight)
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))
        self.requires_grad_(False)
        self.eval()

    def train(self, mode: bool = True) -> LPIPS:
        """Stay in eval mode whatever a caller sets (the metric has no training behaviour)."""
        return super().train(False)

    def tap_maps(self, pred: Tensor, target: Tensor) -> list[Tensor]:
        """Per tap, the head's output on the squared difference of unit-normalised features, ``[B, 1, h_k, w_k]``."""
        if pred.shape != target.shape or pred.dim() != 4 or pred.shape[1] != 3:
            raise ShapeError(
                f"lpips: expected two equal [B, 3, H, W] tensors, got {list(pred.shape)} and {list(target.shape)}"
            )
        if min(pred.shape[-2:]) < _MIN_SIZE:
            raise ShapeError(
                f"lpips: image {pred.shape[-1]}×{pred.shape[-2]} is smaller than {_MIN_SIZE}×{_MIN_SIZE}"
            )
        x = torch.cat([pred, target], dim=0).to(self.shift) * 2.0 - 1.0
        x = (x - self.shift) / self.scale
        maps = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in LPIPS_TAPS:
                fp, ft = _unit_normalize(x).chunk(2, dim=0)
                maps.append(self.heads[len(maps)]((fp - ft) ** 2))
                if len(maps) == len(LPIPS_TAPS):
                    break
        return maps

    def distance_map(self, pred: Tensor, target: Tensor) -> Tensor:  # [B, 1, H, W]
        """lpips' ``spatial=True`` map: each tap's map upsampled bilinearly to the image size, summed."""
        size = pred.shape[-2:]
        maps = [F.interpolate(m, size=size, mode="bilinear", align_corners=False) for m in self.tap_maps(pred, target)]
        return torch.stack(maps).sum(dim=0)

    def forward(
        self,
        pred: Tensor,  # [B, 3, H, W]
        target: Tensor,  # [B, 3, H, W]
        mask: Tensor | None = None,  # [B or 1, 1, H, W]
    ) -> Tensor:  # [B]
        """LPIPS per image (0 for identical images; larger is more different); ``mask`` as in the module docstring.

        Raises:
            ShapeError: shapes differ or are not ``[B, 3, H, W]``, the (cropped) image is under 16 px, or the mask
                selects no pixel.
        """
        if mask is not None:
            weight = mask.to(self.shift).expand(pred.shape[0], 1, *pred.shape[-2:])
            rows = torch.nonzero((weight > 0).any(dim=3).any(dim=1).any(dim=0)).flatten()
            cols = torch.nonzero((weight > 0).any(dim=2).any(dim=1).any(dim=0)).flatten()
            if rows.numel() == 0:
                raise ShapeError("lpips: the mask selects no pixel")
            box = (..., slice(int(rows[0]), int(rows[-1]) + 1), slice(int(cols[0]), int(cols[-1]) + 1))
            pred, target, weight = pred[box], target[box], weight[box]
            if not bool((weight == weight.amax()).all()):
                dist = self.distance_map(pred, target)
                return (dist * weight).sum(dim=(1, 2, 3)) / weight.sum(dim=(1, 2, 3)).clamp_min(1e-12)
        return torch.stack([m.mean(dim=(1, 2, 3)) for m in self.tap_maps(pred, target)]).sum(dim=0)


def _load_heads(path: Path) -> list[Tensor]:
    """The five head weights of lpips' ``vgg.pth`` (``lin{k}.model.1.weight``; ``model.0`` if saved without dropout)."""
    expected = "lpips' VGG heads (lpips/weights/v0.1/vgg.pth, keys lin0.model.1.weight … lin4.model.1.weight)"
    raw = read_state_dict(path, "LPIPS heads", expected)
    heads = []
    for k, channels in enumerate(LPIPS_CHANNELS):
        weight = raw.get(f"lin{k}.model.1.weight", raw.get(f"lin{k}.model.0.weight"))
        if not isinstance(weight, Tensor):
            raise InputError(f"{path} is not {expected}: lin{k}.model.1.weight is missing")
        if tuple(weight.shape) != (1, channels, 1, 1):
            raise InputError(f"{path}: lin{k} has shape {list(weight.shape)}, expected [1, {channels}, 1, 1] "
                             f"(the VGG file of lpips, not the AlexNet or SqueezeNet one?); expected {expected}")
        heads.append(weight.float())
    return heads


def load_lpips(backbone_path: Path | str, heads_path: Path | str) -> LPIPS:
    """LPIPS-VGG from a torchvision VGG-16 state dict file and lpips' ``vgg.pth`` (local files only).

    Raises:
        InputError: a file is missing or unreadable, lacks a tensor, or a tensor has the wrong shape; the message says
            which file is expected.
    """
    backbone_path, heads_path = Path(backbone_path), Path(heads_path)
    if not backbone_path.is_file():
        raise InputError(f"LPIPS backbone {backbone_path} not found: expected torchvision's VGG-16 ImageNet weights "
                         f"({_TORCHVISION_NAME} or its features state dict); weights are never downloaded")
    if not heads_path.is_file():
        raise InputError(f"LPIPS heads {heads_path} not found: expected vgg.pth of the lpips package "
                         "(lpips/weights/v0.1/vgg.pth); weights are never downloaded")
    return LPIPS(VGG16Features.from_state_dict_file(backbone_path), _load_heads(heads_path))


def load_lpips_dir(directory: Path | str) -> LPIPS:
    """LPIPS-VGG from a folder holding ``vgg16.pth`` (or ``vgg16-397923af.pth``) and ``vgg.pth``.

    Raises:
        InputError: the folder or a file in it is missing or unusable (``load_lpips``).
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise InputError(f"LPIPS weights folder {directory} not found: expected a folder holding {BACKBONE_FILE} "
                         f"(torchvision's VGG-16) and {HEADS_FILE} (lpips' v0.1 VGG heads)")
    backbone = directory / BACKBONE_FILE
    if not backbone.is_file() and (directory / _TORCHVISION_NAME).is_file():
        backbone = directory / _TORCHVISION_NAME
    return load_lpips(backbone, directory / HEADS_FILE)


def lpips_weights_dir(explicit: Path | str | None = None) -> Path | None:
    """The LPIPS weights folder to use: ``explicit``, else ``$ADOP_LPIPS_WEIGHTS``, else None (LPIPS off)."""
    if explicit is not None:
        return Path(explicit)
    value = os.environ.get(ENV_VAR, "").strip()
    return Path(value) if value else None
