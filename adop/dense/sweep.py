"""Plane-sweep stereo in PyTorch: one depth map per reference view, the same code on the CPU and on CUDA.

For each of ``depth_planes`` fronto-parallel planes of the reference camera (uniform in inverse depth), every source
photo is warped onto the reference view through the plane's homography (``grid_sample``) and compared with it by
zero-mean normalised cross-correlation over a small window: ZNCC ignores gain and offset, so photos taken stops apart
or with another white balance still match. A plane's score is the mean of the best ``best_sources`` sources among
those that see the window (a source that does not see the surface does not spoil it), the best plane wins, and a
parabola through its neighbours refines the depth below the plane spacing. With an up direction, families of planes
parallel to the ground and to the facades can be swept too; the best of all wins per pixel. Pixels without texture
or without a convincing match are left empty. Normals come from the depth map itself (facing the camera where a
pixel's neighbours have no depth: the scene stage fits normals again from the fused cloud and takes only their side
from these). Rows are swept in tiles, so memory is ``planes × tile rows × width`` whatever the photo size (Collins
1996; Gallup et al. 2007; docs/method.md §15).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adop.dense.config import DenseConfig
from adop.dense.views import PlaneFamily, StereoView

_LUMA = (0.299, 0.587, 0.114)


@dataclass
class DepthMap:
    """A view's depth map at its stereo size; 0 depth marks pixels without a trusted depth.

    Attributes:
        depth: ``[H, W]`` float32 camera-space z.
        normal: ``[H, W, 3]`` float32 unit normals in camera coordinates, facing the camera (0 where no depth).
        score: ``[H, W]`` float32 the winning plane's aggregated ZNCC.
        color: see below.
    """

    depth: np.ndarray
    normal: np.ndarray
    score: np.ndarray
    color: np.ndarray | None = None
    """``[H, W, 3]`` uint8 colours of the reference photo at the map's size (what fused points are coloured by)."""

    @property
    def valid(self) -> np.ndarray:
        return self.depth > 0

    @property
    def coverage(self) -> float:
        """Fraction of pixels with a depth."""
        return float(self.valid.mean()) if self.depth.size else 0.0


def grey(image: Tensor) -> Tensor:
    """``[3, H, W]`` RGB → ``[1, 1, H, W]`` luma."""
    weights = torch.tensor(_LUMA, dtype=image.dtype, device=image.device).view(3, 1, 1)
    return (image * weights).sum(0)[None, None]


def _box(x: Tensor, radius: int) -> Tensor:
    """Window mean (clipped at the borders, as ``avg_pool2d(count_include_pad=False)``), separably.

    Sums of shifted slices instead of ``avg_pool2d``: the same means (to float rounding) in well under half the time
    on the CPU, where pooling was most of a sweep's cost.
    """
    height, width = x.shape[-2:]
    total = _window_sum(_window_sum(x, radius, -1), radius, -2)
    return total * (1.0 / (_window_count(height, radius, x)[:, None] * _window_count(width, radius, x)))


def _window_sum(x: Tensor, radius: int, dim: int) -> Tensor:
    """Sum over ``[i - radius, i + radius]`` along ``dim``, clipped at the ends."""
    total = x.clone()
    length = x.shape[dim]
    for shift in range(1, min(radius, length - 1) + 1):
        total.narrow(dim, shift, length - shift).add_(x.narrow(dim, 0, length - shift))
        total.narrow(dim, 0, length - shift).add_(x.narrow(dim, shift, length - shift))
    return total


def _window_count(length: int, radius: int, like: Tensor) -> Tensor:
    index = torch.arange(length, device=like.device)
    return (torch.clamp(index + radius + 1, max=length) - torch.clamp(index - radius, min=0)).to(like.dtype)


def _pixel_rays(view: StereoView, rows: range, device: torch.device) -> Tensor:
    """``[3, h·W]`` camera-space rays ``K⁻¹ (u, v, 1)`` of the pixel centres in ``rows``."""
    u, v = np.meshgrid(np.arange(view.width) + 0.5, np.asarray(rows) + 0.5)
    pixels = np.stack([u.ravel(), v.ravel(), np.ones(u.size)])
    return torch.from_numpy(np.linalg.inv(view.intrinsics) @ pixels).to(device=device, dtype=torch.float32)


def _source_projection(ref: StereoView, src: StereoView, device: torch.device) -> tuple[Tensor, Tensor]:
    """``(M, b)`` with source pixel ``~ d · M · ray + b`` for a reference ray at depth ``d``."""
    relative = src.rotation @ ref.rotation.T
    offset = src.translation - relative @ ref.translation
    to = dict(device=device, dtype=torch.float32)
    return torch.from_numpy(src.intrinsics @ relative).to(**to), torch.from_numpy(src.intrinsics @ offset).to(**to)


def plane_sweep(reference: Tensor, ref_view: StereoView, sources: list[tuple[Tensor, StereoView]],
                near: float, far: float, config: DenseConfig, families: Sequence[PlaneFamily] = ()) -> DepthMap:
    """The reference view's depth map from its source views over ``[near, far]``.

    Views larger than ``2 × config.coarse_size`` are swept coarse to fine: the full plane sweep runs on a
    half-size copy (recursively), and the full-size pass then tries only ``config.refine_planes`` depths per pixel,
    half a plane apart, around the coarse depth (holes filled from their neighbours, bilinearly upsampled, so that
    the hypotheses of neighbouring pixels form a smooth, possibly slanted surface). It costs about a tenth of a full
    sweep; structures thinner than a coarse pixel can be lost, and depths are a little less precise.

    Args:
        reference: ``[3, H, W]`` float photo of the reference view (undistorted, at ``ref_view``'s size), on the
            device the sweep runs on.
        ref_view: its pinhole view.
        sources: the source photos (same device) and their views.
        near: nearest depth swept (> 0).
        far: farthest depth swept.
        config: sweep parameters.
        families: more families of planes (parallel to the ground, to the facades), swept too at the coarsest
            level; the best of all wins per pixel.
    """
    ref_grey = grey(reference)
    src_grey = [(grey(image), view) for image, view in sources]
    score, inverse, var_i = _sweep_level(ref_grey, ref_view, src_grey, 1.0 / near, 1.0 / far, config, families)
    texture = var_i[0, 0].sqrt()
    keep = (score >= config.min_ncc) & (texture >= config.min_texture) & (inverse > 0)
    depth = torch.where(keep, 1.0 / inverse.clamp_min(1e-12), torch.zeros_like(inverse))
    normal = normals_from_depth(depth, ref_view)
    rays = _pixel_rays(ref_view, range(ref_view.height), depth.device).T.reshape(ref_view.height, ref_view.width, 3)
    facing = -rays / rays.norm(dim=-1, keepdim=True)
    missing = (normal.abs().sum(-1, keepdim=True) == 0) & (depth > 0)[..., None]
    normal = torch.where(missing, facing, normal)  # no neighbourhood to fit: facing the camera (fusion checks depth)
    return DepthMap(depth.cpu().numpy(), normal.cpu().numpy(), score.cpu().numpy())


def _half(image: Tensor, view: StereoView) -> tuple[Tensor, StereoView]:
    height, width = max(1, round(view.height / 2)), max(1, round(view.width / 2))
    return F.interpolate(image, size=(height, width), mode="area"), view.resized(width, height)


def _sweep_level(ref_grey: Tensor, ref_view: StereoView, src_grey: list[tuple[Tensor, StereoView]],
                 inverse_near: float, inverse_far: float, config: DenseConfig,
                 families: Sequence[PlaneFamily] = ()) -> tuple[Tensor, Tensor, Tensor]:
    """``(score, inverse depth, reference window variance)`` at this level; 0 inverse depth where none won."""
    device = ref_grey.device
    planes = torch.linspace(inverse_near, inverse_far, config.depth_planes, device=device)
    step = (inverse_far - inverse_near) / (config.depth_planes - 1)
    lowest, highest = min(inverse_near, inverse_far), max(inverse_near, inverse_far)
    if max(ref_view.width, ref_view.height) < 2 * config.coarse_size:
        def uniform(rows: slice) -> Tensor:
            return planes[:, None]
        score, inverse, var_i = _sweep(ref_grey, ref_view, src_grey, uniform, config)
        for family in families:
            slope = _slope(ref_view, family, device)
            offsets = torch.linspace(family.nearest, family.farthest, config.depth_planes, device=device)

            def parallel(rows: slice, slope: Tensor = slope, offsets: Tensor = offsets) -> Tensor:
                candidates = slope[rows].reshape(1, -1) / offsets[:, None]
                return torch.where((candidates >= lowest) & (candidates <= highest), candidates,
                                   torch.zeros_like(candidates))
            family_score, family_inverse, _ = _sweep(ref_grey, ref_view, src_grey, parallel, config)
            better = family_score > score
            score, inverse = torch.where(better, family_score, score), torch.where(better, family_inverse, inverse)
        return score, inverse, var_i
    coarse_ref, coarse_view = _half(ref_grey, ref_view)
    coarse_src = [_half(image, view) for image, view in src_grey]
    coarse_score, coarse_inverse, _ = _sweep_level(coarse_ref, coarse_view, coarse_src, inverse_near, inverse_far,
                                                   config, families)
    trusted = torch.where(coarse_score >= config.min_ncc, coarse_inverse, torch.zeros_like(coarse_inverse))
    centre = F.interpolate(_fill_holes(trusted)[None, None], size=(ref_view.height, ref_view.width),
                           mode="bilinear", align_corners=False)
    centre = _box(centre, config.window_radius)[0, 0]
    reach = config.refine_planes // 2
    offsets = torch.arange(-reach, reach + 1, device=device, dtype=torch.float32) * (step / 2)

    def around_coarse(rows: slice) -> Tensor:
        start = centre[rows].reshape(1, -1)
        return (start + offsets[:, None]).clamp(lowest, highest)
    return _sweep(ref_grey, ref_view, src_grey, around_coarse, config)


def _slope(view: StereoView, family: PlaneFamily, device: torch.device) -> Tensor:
    """``[H, W]`` per pixel ``-(n · ray)`` (``|n · ray|`` for a two-sided family): a pixel's inverse depth on the
    family's plane at distance ``h`` is this / h (0 for rays that do not go towards the planes)."""
    normal = torch.as_tensor(family.normal, dtype=torch.float32, device=device)
    slope = -(normal @ _pixel_rays(view, range(view.height), device)).reshape(view.height, view.width)
    return slope.abs() if family.two_sided else slope.clamp_min(0.0)


def _fill_holes(inverse: Tensor, passes: int = 6) -> Tensor:
    """Pixels without a coarse depth take the mean of their neighbours' (growing windows), so that the refined
    level searches around a plausible depth and neighbouring pixels search around similar ones; whatever is still
    empty takes the median of the map."""
    filled = inverse.clone()
    for radius in (1, 2, 4, 8, 16, 32)[:passes]:
        known = (filled > 0).float()[None, None]
        if bool(known.all()):
            break
        total = _box(filled[None, None] * known, radius)
        weight = _box(known, radius)
        guess = torch.where(weight > 0, total / weight.clamp_min(1e-12), torch.zeros_like(total))[0, 0]
        filled = torch.where(filled > 0, filled, guess)
    if bool((filled > 0).any()):
        filled = torch.where(filled > 0, filled, filled[filled > 0].median())
    return filled


def _sweep(ref_grey: Tensor, ref_view: StereoView, src_grey: list[tuple[Tensor, StereoView]],
           hypotheses: Callable[[slice], Tensor], config: DenseConfig) -> tuple[Tensor, Tensor, Tensor]:
    """Score every inverse-depth hypothesis (``hypotheses(rows)``: ``[D, 1]`` planes or ``[D, rows·W]`` per pixel,
    spaced evenly; 0 marks a pixel's hypothesis as not applicable) of every pixel; the best, parabola-refined,
    wins."""
    device = ref_grey.device
    radius = config.window_radius
    height, width = ref_view.height, ref_view.width
    best_k = min(config.best_sources, len(src_grey))
    mean_i = _box(ref_grey, radius)
    var_i = (_box(ref_grey * ref_grey, radius) - mean_i * mean_i).clamp_min(0)
    projections = [_source_projection(ref_view, view, device) for _, view in src_grey]
    best_score = torch.full((height, width), -1.0, device=device)
    best_inverse = torch.zeros((height, width), device=device)
    for top in range(0, height, config.tile_rows):
        bottom = min(height, top + config.tile_rows)
        lo, hi = max(0, top - radius), min(height, bottom + radius)
        rays = _pixel_rays(ref_view, range(lo, hi), device)
        candidates = hypotheses(slice(lo, hi))
        count = candidates.shape[0]
        chunk = max(1, (1 << 22) // max(1, width * (hi - lo)))
        tile_i, tile_mean, tile_var = ref_grey[..., lo:hi, :], mean_i[..., lo:hi, :], var_i[..., lo:hi, :]
        volume = torch.empty((count, hi - lo, width), device=device)
        for start in range(0, count, chunk):
            inverse = candidates[start:start + chunk]
            depths = 1.0 / inverse.clamp_min(1e-12)
            scores = torch.stack([
                _zncc(tile_i, tile_mean, tile_var, image, view, matrix, offset, rays, depths, radius, hi - lo)
                for (image, view), (matrix, offset) in zip(src_grey, projections)
            ])
            usable = (inverse > 0).expand(len(inverse), (hi - lo) * width).reshape(len(inverse), hi - lo, width)
            volume[start:start + len(inverse)] = torch.where(usable, _mean_of_best(scores, best_k), -1.0)
        rows = slice(top - lo, top - lo + bottom - top)
        grid = candidates.expand(count, (hi - lo) * width).reshape(count, hi - lo, width)[:, rows]
        best_score[top:bottom], best_inverse[top:bottom] = _winner(volume[:, rows], grid)
    return best_score, best_inverse, var_i


def _mean_of_best(scores: Tensor, count: int) -> Tensor:
    """Per pixel, the mean of the ``count`` highest scores along dim 0 among the sources that see its window (scored
    exactly -1 otherwise), of fewer where fewer see it, -1 where none does.

    Near surfaces at the borders of a photo taken moving forward are seen only by the source views behind it: a
    plain mean of the best two would count the unseen one and reject them all.
    """
    sources = scores.shape[0]
    if count == sources:
        best = scores.sum(0)
    elif count == sources - 1:
        best = scores.sum(0) - scores.amin(0)
    else:
        best = scores.topk(count, dim=0).values.sum(0)
    seen = (scores > -1).sum(0).clamp(max=count)
    best = best + (count - seen)  # the unseen among the best count each added -1
    return torch.where(seen > 0, best / seen.clamp_min(1), torch.full_like(best, -1.0))


def _zncc(tile_i: Tensor, tile_mean: Tensor, tile_var: Tensor, source: Tensor, view: StereoView, matrix: Tensor,
          offset: Tensor, rays: Tensor, depths: Tensor, radius: int, rows: int) -> Tensor:
    """``[B, h, W]`` ZNCC of the reference tile with the source warped by each of the ``B`` depth hypotheses
    (``depths``: ``[B, 1]`` planes or ``[B, h·W]`` per pixel); -1 where the window is not fully inside the source."""
    projected = depths[:, None, :] * (matrix @ rays)[None] + offset.view(1, 3, 1)  # [B, 3, h·W]
    z = projected[:, 2]
    in_front = z > 1e-6
    z = torch.where(in_front, z, torch.ones_like(z))
    u, v = projected[:, 0] / z, projected[:, 1] / z
    inside = in_front & (u >= 0) & (u < view.width) & (v >= 0) & (v < view.height)
    width = tile_i.shape[-1]
    grid = torch.stack([u / view.width * 2 - 1, v / view.height * 2 - 1], dim=-1).view(-1, rows, width, 2)
    warped = F.grid_sample(source.expand(len(depths), -1, -1, -1), grid, mode="bilinear", padding_mode="border",
                           align_corners=False)
    stacked = _box(torch.cat([warped, warped * warped, warped * tile_i, inside.view(-1, 1, rows, width).float()], 1),
                   radius)
    mean_j = stacked[:, :1]
    var_j = (stacked[:, 1:2] - mean_j * mean_j).clamp_min(0)
    cross = stacked[:, 2:3] - mean_j * tile_mean
    ncc = cross / (var_j * tile_var + 1e-10).sqrt()
    covered = stacked[:, 3:4] > 0.999
    return torch.where(covered, ncc, torch.full_like(ncc, -1.0))[:, 0]


def _winner(volume: Tensor, inverse: Tensor) -> tuple[Tensor, Tensor]:
    """Best hypothesis per pixel (``volume``, ``inverse``: ``[D, h, W]`` scores and inverse depths, evenly spaced
    along D), refined by a parabola through its neighbours' scores; a winner at either end of the hypotheses gives
    no depth (the surface is probably outside them)."""
    count = volume.shape[0]
    score, index = volume.max(0)
    inner = (index > 0) & (index < count - 1)
    at = index.clamp(1, count - 2)
    before = volume.gather(0, (at - 1)[None])[0]
    here = volume.gather(0, at[None])[0]
    after = volume.gather(0, (at + 1)[None])[0]
    curvature = before - 2 * here + after
    shift = torch.where(curvature < -1e-6, 0.5 * (before - after) / curvature.clamp(max=-1e-6), torch.zeros_like(here))
    shift = torch.where(inner, shift.clamp(-0.5, 0.5), torch.zeros_like(shift))
    centre = inverse.gather(0, index[None])[0]
    step = inverse.gather(0, at[None] + 1)[0] - inverse.gather(0, at[None])[0]
    refined = centre + shift * step
    return score, torch.where(inner & (refined > 0), refined, torch.zeros_like(refined))


def normals_from_depth(depth: Tensor, view: StereoView, max_step: float = 0.05) -> Tensor:
    """``[H, W, 3]`` camera-space normals from central differences of the unprojected depth map, facing the camera;
    0 where a neighbour has no depth or the depth jumps by more than ``max_step`` (relative) to it."""
    height, width = depth.shape
    rays = _pixel_rays(view, range(height), depth.device).T.reshape(height, width, 3)
    points = rays * depth[..., None]
    valid = depth > 0
    padded = F.pad(points.permute(2, 0, 1)[None], (1, 1, 1, 1), mode="replicate")[0].permute(1, 2, 0)
    ok = F.pad(valid.float()[None, None], (1, 1, 1, 1))[0, 0] > 0
    dx = padded[1:-1, 2:] - padded[1:-1, :-2]
    dy = padded[2:, 1:-1] - padded[:-2, 1:-1]
    smooth = (dx[..., 2].abs() <= max_step * depth * 2) & (dy[..., 2].abs() <= max_step * depth * 2)
    neighbours = ok[1:-1, 2:] & ok[1:-1, :-2] & ok[2:, 1:-1] & ok[:-2, 1:-1]
    normal = torch.linalg.cross(dx, dy, dim=-1)
    length = normal.norm(dim=-1, keepdim=True)
    normal = normal / length.clamp_min(1e-12)
    facing = (normal * points).sum(-1, keepdim=True)
    normal = torch.where(facing > 0, -normal, normal)
    good = valid & neighbours & smooth & (length[..., 0] > 0)
    return torch.where(good[..., None], normal, torch.zeros_like(normal))
