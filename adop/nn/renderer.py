"""The neural renderer: ADOP's multi-scale gated U-Net from a point-feature pyramid to linear HDR.

Layout (saiga ``MultiScaleUnet2d`` with ADOP's released configs; docs/method.md §5): level ``l`` has width
``base_channels · 2^l``. The start block maps pyramid layer 0 to level 0; each down block average-pools, applies a
gated 3×3 convolution to ``width_l − input_channels`` channels and concatenates pyramid layer ``l``; each up block
upsamples bilinearly, applies a gated convolution without activation, concatenates the skip and applies a gated
convolution with ELU. A 1×1 convolution gives 3 channels of **unbounded linear HDR** (no output activation, no
normalisation anywhere). See docs/conventions.md for tensor layout and the pyramid sizes ``(W >> l, H >> l)``.

Sizes not divisible by ``2^(layers−1)``: 2×2 average pooling with floor rounding gives exactly the pyramid sizes
``H >> l``, so the down path needs no fix. On the up path a layer of size ``h`` is upsampled by exactly 2
(``align_corners=False``, i.e. the ``u · 2^-l`` map of the conventions) to ``2h``; where the skip is ``2h + 1`` the last
row/column is replicate-padded. ADOP centre-crops instead, which shrinks the output and forces the trainer to crop
targets, masks and uv too; interpolating to the skip size would keep H×W but stretch the grid by up to half a coarse
pixel, misaligning it with the pyramid. Padding keeps the output exactly H×W *and* every pixel where the pyramid puts
it.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from adop.config import Config
from adop.errors import InputError, ShapeError

__all__ = ["GatedConv", "NeuralRenderer", "RendererConfig"]


@dataclass(frozen=True)
class RendererConfig(Config):
    """Architecture of the neural renderer (defaults are ADOP's released configs)."""

    input_channels: int = 4
    """Channels of every pyramid layer (the point descriptor size)."""
    layers: int = 4
    """U-Net levels; the pyramid must have exactly this many layers."""
    base_channels: int = 16
    """Width of level 0; level l has ``base_channels · 2^l`` (16/32/64/128 at defaults, ADOP feature_factor 4)."""
    output_channels: int = 3
    """Output channels: linear HDR RGB."""

    def widths(self) -> list[int]:
        """Per-level channel widths ``base_channels · 2^l``."""
        return [self.base_channels * 2**level for level in range(self.layers)]

    def validate(self) -> None:
        """Raise ``InputError`` if the widths cannot hold the concatenated pyramid channels."""
        if self.layers < 1 or self.input_channels < 1 or self.output_channels < 1:
            raise InputError(f"layers, input_channels and output_channels must be >= 1, got {self}")
        if self.layers > 1 and self.base_channels * 2 <= self.input_channels:
            raise InputError(
                f"base_channels·2 = {self.base_channels * 2} must exceed input_channels = {self.input_channels}: "
                "each down block outputs width − input_channels channels before the pyramid layer is concatenated"
            )


class GatedConv(nn.Module):
    """Gated 3×3 convolution: ``act(conv_f(x)) · sigmoid(conv_g(x))`` (saiga's gated block; docs/method.md §5).

    The gate lets the network suppress pixels that the one-pixel rasterizer left empty or filled with occluded points,
    which is why ADOP uses it instead of a plain convolution.

    Args:
        in_channels: Input channels.
        out_channels: Output channels.
        activation: ``"elu"`` on the feature branch, or ``"identity"`` (ADOP's first convolution of an up block).
    """

    def __init__(self, in_channels: int, out_channels: int, activation: str = "elu") -> None:
        super().__init__()
        if activation not in ("elu", "identity"):
            raise ValueError(f"activation must be 'elu' or 'identity', got {activation!r}")
        self.feature = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.gate = nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1)
        self.activation = activation

    def forward(self, x: Tensor) -> Tensor:  # [B, Cin, H, W] -> [B, Cout, H, W]
        """Apply the gated convolution."""
        feature = self.feature(x)
        if self.activation == "elu":
            feature = F.elu(feature)
        return feature * torch.sigmoid(self.gate(x))


def _upsample_to(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Upsample ``x`` by exactly 2 (bilinear) and replicate-pad bottom/right to ``size`` (see module docstring)."""
    up = F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)
    pad_h, pad_w = size[0] - up.shape[-2], size[1] - up.shape[-1]
    if pad_h < 0 or pad_w < 0 or pad_h > 1 or pad_w > 1:
        raise ShapeError(f"skip of size {size} does not match an upsampled layer of size {tuple(up.shape[-2:])}")
    if pad_h or pad_w:
        up = F.pad(up, (0, pad_w, 0, pad_h), mode="replicate")
    return up


class NeuralRenderer(nn.Module):
    """ADOP's multi-scale gated U-Net: a ``layers``-level feature pyramid in, linear HDR out.

    Args:
        config: Architecture; ``RendererConfig()`` (ADOP defaults, 574,651 parameters) when omitted.

    Example:
        >>> net = NeuralRenderer(RendererConfig())
        >>> pyramid = [torch.zeros(1, 4, 37 >> l, 50 >> l) for l in range(4)]
        >>> net(pyramid).shape
        torch.Size([1, 3, 37, 50])
    """

    def __init__(self, config: RendererConfig | None = None) -> None:
        super().__init__()
        self.config = config if config is not None else RendererConfig()
        cin, widths = self.config.input_channels, self.config.widths()
        self.start = GatedConv(cin, widths[0])
        self.down = nn.ModuleList(GatedConv(widths[lv - 1], widths[lv] - cin) for lv in range(1, self.config.layers))
        # up[i] brings level i+1 back to level i.
        self.up_pre = nn.ModuleList(
            GatedConv(widths[lv + 1], widths[lv], activation="identity") for lv in range(self.config.layers - 1)
        )
        self.up_post = nn.ModuleList(GatedConv(2 * widths[lv], widths[lv]) for lv in range(self.config.layers - 1))
        self.final = nn.Conv2d(widths[0], self.config.output_channels, kernel_size=1)

    @classmethod
    def from_config(cls, config: RendererConfig) -> NeuralRenderer:
        """Build the renderer from its config (house style: explicit construction, no reflection)."""
        return cls(config)

    def num_parameters(self) -> int:
        """Number of learnable scalars."""
        return sum(p.numel() for p in self.parameters())

    def _check_pyramid(self, pyramid: list[Tensor]) -> None:
        if len(pyramid) != self.config.layers:
            raise ShapeError(f"expected a pyramid of {self.config.layers} layers, got {len(pyramid)}")
        base = pyramid[0]
        if base.dim() != 4 or base.shape[1] != self.config.input_channels:
            expected0 = f"[B, {self.config.input_channels}, H, W]"
            raise ShapeError(f"pyramid layer 0: expected {expected0}, got {list(base.shape)}")
        b, c, h, w = base.shape
        for level, layer in enumerate(pyramid):
            expected = [b, c, h >> level, w >> level]
            if list(layer.shape) != expected:
                raise ShapeError(
                    f"pyramid layer {level}: expected {expected} (sizes H>>l, W>>l), got {list(layer.shape)}"
                )
        if min(h, w) >> (self.config.layers - 1) < 1:
            raise ShapeError(f"image {w}×{h} is too small for {self.config.layers} levels")

    def forward(self, pyramid: list[Tensor]) -> Tensor:
        """Render linear HDR from a feature pyramid.

        Args:
            pyramid: ``layers`` tensors; layer ``l`` is ``[B, input_channels, H >> l, W >> l]``.

        Returns:
            ``[B, output_channels, H, W]`` unbounded linear HDR radiance (no activation; the tonemapper maps it to LDR).

        Raises:
            ShapeError: wrong number of layers, channels or layer sizes.
        """
        self._check_pyramid(pyramid)
        skips = [self.start(pyramid[0])]
        for level, block in enumerate(self.down, start=1):
            x = block(F.avg_pool2d(skips[-1], kernel_size=2))
            skips.append(torch.cat([x, pyramid[level]], dim=1))
        x = skips[-1]
        for level in range(self.config.layers - 2, -1, -1):
            skip = skips[level]
            x = self.up_pre[level](_upsample_to(x, (skip.shape[-2], skip.shape[-1])))
            x = self.up_post[level](torch.cat([x, skip], dim=1))
        return self.final(x)
