"""Baseline (a): the point colours splatted with the same one-pixel rasterizer, holes filled, no network.

This is what the point cloud alone can show: every point writes its 8-bit colour into the pixel it projects to (the
rasterizer's fuzzy-depth mean, dropout off, no stochastic discarding so no point is thrown away), back faces culled,
and every empty pixel takes the colour of the nearest covered pixel (``scipy.ndimage.distance_transform_edt``
indices). The colours were averaged over photos of different exposures, so the protocol fits a per-channel gain on the
left half of each held-out view (``adop.evaluate.protocol.score_gain_view``) before scoring the right half.

Baseline (b), the model without its tonemapper, is a real training run (``TrainConfig.camera_model="fixed_gamma"``);
see ``adop.train.comparisons``.
"""

from __future__ import annotations

import numpy as np
import torch
from scipy.ndimage import distance_transform_edt
from torch import Tensor

from adop.raster import RasterConfig, rasterize


def fill_nearest(image: Tensor, mask: Tensor) -> Tensor:
    """Fill pixels where ``mask`` is 0 with the value of the nearest pixel where it is 1.

    Args:
        image: ``[C, H, W]``.
        mask: ``[H, W]`` (nonzero = valid).

    Returns:
        ``[C, H, W]``; unchanged if no pixel is valid.
    """
    valid = mask.numpy() > 0
    if valid.all() or not valid.any():
        return image.clone()
    _, (rows, cols) = distance_transform_edt(~valid, return_indices=True)
    arr = image.numpy()
    return torch.from_numpy(np.ascontiguousarray(arr[:, rows, cols]))


@torch.no_grad()
def splat_colors(
    positions: Tensor,  # [N, 3]
    colors: Tensor,  # [N, 3] uint8
    normals: Tensor | None,  # [N, 3]
    rotation: Tensor,  # [3, 3]
    translation: Tensor,  # [3]
    intrinsics: Tensor,  # [4]
    distortion: Tensor,  # [8]
    size: tuple[int, int],
) -> tuple[Tensor, float]:
    """Render baseline (a) for one view.

    Returns:
        ``([1, 3, H, W]`` display colours in [0, 1] with holes filled, the fraction of pixels covered by a point).
    """
    cfg = RasterConfig(layers=1, dropout=0.0)
    out = rasterize(
        positions.float(), colors.float() / 255.0, torch.zeros(3), rotation[None].float(), translation[None].float(),
        intrinsics[None].float(), size, normals=None if normals is None else normals.float(), radius=None,
        distortion=distortion[None].float(), config=cfg,
    )
    image, mask = out.features[0][0], out.masks[0][0, 0]
    return fill_nearest(image, mask)[None], float(mask.mean())
