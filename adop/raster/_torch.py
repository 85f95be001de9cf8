"""Pure-PyTorch backend: the readable reference (and test oracle) of the one-pixel rasterizer passes.

Vectorised per layer with scatter ops (``scatter_reduce`` amin for the depth pre-pass, ``index_add_`` for the fuzzy
accumulate), no Python loop over points. Works on any device and dtype (float64 for ``gradcheck``). The compiled
backends implement the same passes; see ADOP ``PointRenderer.cu`` and docs/method.md §3–4.
"""

from __future__ import annotations

import torch
from torch import Tensor

from adop.raster._types import BackwardResult, ForwardResult, RasterInputs
from adop.raster.config import RasterConfig
from adop.raster.projection import project_points

BORDER = 2
"""Spatial gradients only come from pixels at least this far inside the layer (ADOP skips points near the border)."""


def _layer_hits(proj: Tensor, layer: int, width: int, height: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The (view, point) pairs that land inside layer ``layer``: view idx, point idx, flat pixel ``b·HW+y·W+x``, z."""
    u, v, z, nl = proj.unbind(-1)
    scale = 2.0**-layer
    x = torch.floor(u * scale)
    y = torch.floor(v * scale)
    hit = (nl > layer) & (x < width) & (y < height)
    b, n = hit.nonzero(as_tuple=True)
    pix = (b * height + y[b, n].long()) * width + x[b, n].long()
    return b, n, pix, z[b, n]


def forward(inp: RasterInputs, cfg: RasterConfig) -> ForwardResult:
    """Depth pre-pass, fuzzy accumulate and resolve for every layer (docs/method.md §3, passes 1-3)."""
    proj = project_points(
        inp.positions, inp.normals, inp.radius, inp.rotations, inp.translations, inp.intrinsics, inp.distortion,
        inp.crops, inp.max_radius2, inp.size, cfg.layers, cfg.threshold_f32, cfg.znear_f32,
    )
    num_views, channels = inp.num_views, inp.channels
    dtype, device = proj.dtype, proj.device
    features, weights, depths = [], [], []
    for layer in range(cfg.layers):
        width, height = inp.layer_size(layer)
        pixels = num_views * height * width
        b, n, pix, z = _layer_hits(proj, layer, width, height)
        depth = torch.full((pixels,), float("inf"), dtype=dtype, device=device)
        depth.scatter_reduce_(0, pix, z, reduce="amin")
        accept = z <= depth[pix] * cfg.accept_factor
        if inp.drop is not None:
            accept &= ~inp.drop[b, n]
        pix_a, n_a = pix[accept], n[accept]
        weight = torch.zeros(pixels, dtype=dtype, device=device).index_add_(
            0, pix_a, torch.ones_like(pix_a, dtype=dtype)
        )
        accum = torch.zeros(pixels, channels, dtype=dtype, device=device).index_add_(0, pix_a, inp.descriptors[n_a])
        covered = weight[:, None] > 0
        feature = torch.where(covered, accum / weight.clamp_min(1)[:, None], inp.background[None].to(dtype))
        features.append(feature.view(num_views, height, width, channels).permute(0, 3, 1, 2).contiguous())
        weights.append(weight.view(num_views, height, width))
        # Empty pixels read 0 (as the public output); backward only reads depths where the point itself wrote.
        depths.append(torch.where(torch.isinf(depth), torch.zeros_like(depth), depth).view(num_views, height, width))
    return ForwardResult(features=features, weights=weights, depths=depths, proj=proj)


def backward(
    inp: RasterInputs,
    cfg: RasterConfig,
    fwd: ForwardResult,
    grad_features: list[Tensor],
    need_descriptors: bool,
    need_background: bool,
    need_spatial: bool,
) -> BackwardResult:
    """Exact descriptor/background gradients and ADOP's screen-space ghost gradients (docs/method.md §4).

    The spatial part follows ``RenderBackward``: per layer, a selected point that passes the fuzzy test and lies at
    least ``BORDER`` pixels inside the layer adds ``½·(ΔR(x+) − ΔR(x−))/C`` (and likewise in y), where
    ``ΔR(x) = Σ_c (T_c − I_c(x))·G_c(x)`` is the loss change if the point overrode neighbour x. The layer-l pixel
    gradient is scaled by 2^-l into layer-0 crop pixels. A point occluded at one layer stops contributing at all
    coarser layers (ADOP's ``break``), one outside a layer only skips it.
    """
    proj, desc = fwd.proj, inp.descriptors
    num_views, num_points, channels = inp.num_views, inp.num_points, inp.channels
    dtype, device = proj.dtype, proj.device
    grad_desc = torch.zeros_like(desc) if need_descriptors else None
    grad_bg = torch.zeros(channels, dtype=dtype, device=device) if need_background else None
    screen = torch.zeros(num_views * num_points, 2, dtype=dtype, device=device) if need_spatial else None
    count = torch.zeros(num_views * num_points, dtype=dtype, device=device) if need_spatial else None
    keep = None if inp.drop is None else ~inp.drop
    if need_spatial:
        if cfg.ghost_gradients:
            selected = inp.drop if inp.drop is not None else torch.zeros(proj.shape[:2], dtype=torch.bool,
                                                                         device=device)
        else:
            selected = keep if keep is not None else torch.ones(proj.shape[:2], dtype=torch.bool, device=device)
        alive = torch.ones(proj.shape[:2], dtype=torch.bool, device=device)
    for layer in range(cfg.layers):
        width, height = inp.layer_size(layer)
        grad_img = grad_features[layer].to(dtype).permute(0, 2, 3, 1).reshape(-1, channels)
        weight = fwd.weights[layer].reshape(-1)
        depth = fwd.depths[layer].reshape(-1)
        if grad_bg is not None:
            grad_bg += (grad_img * (weight == 0)[:, None].to(dtype)).sum(dim=0)
        if grad_desc is None and screen is None:
            continue
        b, n, pix, z = _layer_hits(proj, layer, width, height)
        fuzzy = z <= depth[pix] * cfg.accept_factor
        if grad_desc is not None:
            acc = fuzzy if keep is None else fuzzy & keep[b, n]
            pa = pix[acc]
            grad_desc.index_add_(0, n[acc], grad_img[pa] / weight[pa][:, None])
        if screen is not None:
            x, y = pix % width, (pix // width) % height
            inner = (x >= BORDER) & (x < width - BORDER) & (y >= BORDER) & (y < height - BORDER)
            use = fuzzy & inner & alive[b, n] & selected[b, n]
            alive[b[~fuzzy], n[~fuzzy]] = False
            bu, nu, pu = b[use], n[use], pix[use]
            image = fwd.features[layer].to(dtype).permute(0, 2, 3, 1).reshape(-1, channels)
            own = desc[nu]

            def delta(offset: int, pu: Tensor = pu, own: Tensor = own, image: Tensor = image,
                      grad_img: Tensor = grad_img) -> Tensor:
                return ((own - image[pu + offset]) * grad_img[pu + offset]).sum(dim=-1)

            scale = 0.5 / channels * 2.0**-layer
            gx = (delta(1) - delta(-1)) * scale
            gy = (delta(width) - delta(-width)) * scale
            flat = bu * num_points + nu
            screen.index_add_(0, flat, torch.stack([gx, gy], dim=-1))
            count.index_add_(0, flat, torch.ones_like(gx))
    return BackwardResult(
        grad_descriptors=grad_desc,
        grad_background=grad_bg,
        screen_grad=None if screen is None else screen.view(num_views, num_points, 2),
        screen_count=None if count is None else count.view(num_views, num_points),
    )
