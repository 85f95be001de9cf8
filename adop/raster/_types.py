"""Internal containers passed between the autograd Function and the backends (not public API)."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

VIEW_PARAMS = 28
"""Floats per view in the packed layout the compiled kernels read: R(9) t(3) K(4) dist(8) crop(3) max_r²(1)."""


@dataclass(frozen=True)
class RasterInputs:
    """Everything a backend needs for one call; shapes as in :func:`adop.raster.rasterize`."""

    positions: Tensor  # [N,3]
    normals: Tensor | None  # [N,3]
    radius: Tensor | None  # [N]
    descriptors: Tensor  # [N,C]
    background: Tensor  # [C]
    rotations: Tensor  # [B,3,3]
    translations: Tensor  # [B,3]
    intrinsics: Tensor  # [B,4]
    distortion: Tensor  # [B,8]
    crops: Tensor  # [B,3]
    max_radius2: Tensor  # [B]
    drop: Tensor | None  # [B,N] bool, True = left out of the colour pass
    size: tuple[int, int]  # (W, H) of layer 0

    @property
    def num_views(self) -> int:
        return int(self.rotations.shape[0])

    @property
    def num_points(self) -> int:
        return int(self.positions.shape[0])

    @property
    def channels(self) -> int:
        return int(self.descriptors.shape[1])

    def layer_size(self, layer: int) -> tuple[int, int]:
        """``(W >> l, H >> l)`` as in conventions.md."""
        return self.size[0] >> layer, self.size[1] >> layer

    def split_layers(self, flat: Tensor, layers: int) -> list[Tensor]:
        """Views ``[B, H_l, W_l]`` into one flat buffer holding every layer back to back (how the kernels write)."""
        out, offset = [], 0
        for layer in range(layers):
            w, h = self.layer_size(layer)
            count = self.num_views * w * h
            out.append(flat[offset:offset + count].view(self.num_views, h, w))
            offset += count
        return out

    def packed_views(self) -> Tensor:
        """``[B, 28]`` float32 per-view parameters in the order the C++/CUDA kernels read them."""
        b = self.num_views
        parts = [
            self.rotations.reshape(b, 9),
            self.translations,
            self.intrinsics,
            self.distortion,
            self.crops,
            self.max_radius2[:, None],
        ]
        return torch.cat([p.to(torch.float32) for p in parts], dim=1).contiguous()


@dataclass(frozen=True)
class ForwardResult:
    """Per-layer outputs of the passes plus the per-(view, point) projection the backward pass reuses."""

    features: list[Tensor]  # L x [B,C,H_l,W_l], mean descriptor or background
    weights: list[Tensor]  # L x [B,H_l,W_l], number of blended points
    depths: list[Tensor]  # L x [B,H_l,W_l], nearest depth incl. dropped points, 0 where none
    proj: Tensor  # [B,N,4]: u, v (layer-0 crop pixels), z, layers reached (0 = culled); [0,4] for cpp (in extra)
    extra: tuple[Tensor, ...] = ()  # backend-private state saved for backward (e.g. the C++ band buckets)


@dataclass(frozen=True)
class BackwardResult:
    """Exact gradients plus the screen-space sums the shared chain rule (function.py) turns into spatial ones."""

    grad_descriptors: Tensor | None  # [N,C]
    grad_background: Tensor | None  # [C]
    screen_grad: Tensor | None  # [B,N,2], dL/d(u,v) in layer-0 crop pixels, summed over layers
    screen_count: Tensor | None  # [B,N], number of layers that contributed
