"""Training batches: ADOP's random crop sampler over a scene's photos (``adop.scene.photos.SceneData``).

The nerfstudio "data manager" part of the split: ``batch_for_step`` turns a step number into a batch. The batch depends only on ``(seed, step)`` — the epoch's image
order comes from ``(seed, epoch)`` and every crop from ``(seed, step)`` — so a resumed run sees exactly the batches an
uninterrupted run would, with no data-loader state to checkpoint.

Photos are kept as stored (8-bit, camera response applied) and compared in [0, 1] (docs/conventions.md). Crops follow
the conventions' affine map ``u' = zoom·u − ox``; the target crop is the photo bilinearly resampled at the crop's
pixel centres, and the same ``(zoom, ox, oy)`` goes to the rasterizer, so render and target cover the same pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adop.model.config import SamplerConfig
from adop.scene.photos import SceneData


def step_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, *keys)`` via numpy's SeedSequence (well mixed, ordered)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))




@dataclass(frozen=True)
class Batch:
    """One training step's crops."""

    frames: Tensor  # [B] long frame indices
    crops: Tensor  # [B, 3] (zoom, ox, oy)
    target: Tensor  # [B, 3, h, w] float in [0, 1]
    mask: Tensor  # [B, 1, h, w] loss weights in [mask_floor, 1]

    def to(self, device: torch.device) -> Batch:
        """The batch on ``device``."""
        return Batch(*(t.to(device) for t in (self.frames, self.crops, self.target, self.mask)))

    def __len__(self) -> int:
        return len(self.frames)

    def split(self, parts: int) -> list[Batch]:
        """The batch as ``parts`` consecutive, nearly equal slices (fewer when it has fewer crops)."""
        tensors = [t.tensor_split(min(parts, len(self))) for t in (self.frames, self.crops, self.target, self.mask)]
        return [Batch(*slices) for slices in zip(*tensors)]


def epoch_images(train: np.ndarray, seed: int, epoch: int) -> np.ndarray:
    """The training frames of ``epoch`` in the order that epoch visits them (a permutation seeded by epoch)."""
    order = torch.randperm(len(train), generator=step_generator(seed, 1, epoch)).numpy()
    return train[order]


def steps_per_epoch(num_train: int, batch_size: int) -> int:
    """``ceil(num_train / batch_size)``: steps in which every training image is used once."""
    return max(1, math.ceil(num_train / batch_size))


def sample_crop(
    size: tuple[int, int], crop: tuple[int, int], cfg: SamplerConfig, gen: torch.Generator,
    earlier: list[tuple[float, float]],
) -> tuple[float, float, float]:
    """One ``(zoom, ox, oy)`` for an image of ``size`` (W, H): ADOP's zoom range, border-preferring offsets, and the
    candidate farthest from ``earlier`` crop centres of the same image (whose centre is appended)."""
    (w, h), (cw, ch) = size, crop
    zmin = max(cfg.zoom_min, cw / w, ch / h)
    zmax = max(cfg.zoom_max, zmin)
    best, best_dist = (1.0, 0.0, 0.0), -1.0
    for _ in range(cfg.candidates):
        u = torch.rand(3, generator=gen, dtype=torch.float64).tolist()
        zoom = zmin + (zmax - zmin) * u[0]
        offsets = []
        for span, c, r in ((w * zoom - cw, cw, u[1]), (h * zoom - ch, ch, u[2])):
            span = max(span, 0.0)
            lo, hi = (-c / 2, span + c / 2) if cfg.prefer_border else (0.0, span)
            offsets.append(min(max(lo + (hi - lo) * r, 0.0), span))
        centre = ((offsets[0] + cw / 2) / zoom, (offsets[1] + ch / 2) / zoom)
        dist = min((math.dist(centre, e) for e in earlier), default=0.0)
        if dist > best_dist:
            best, best_dist = (zoom, offsets[0], offsets[1]), dist
    zoom, ox, oy = best
    earlier.append(((ox + cw / 2) / zoom, (oy + ch / 2) / zoom))
    return best


def warp_crop(photo: Tensor, crop: Tensor, size: tuple[int, int]) -> tuple[Tensor, Tensor]:
    """Bilinear crop of a photo: crop pixel centre ``i + 0.5`` samples the photo at ``u = (i + 0.5 + ox) / zoom``.

    Args:
        photo: ``[3, H, W]`` uint8 or float.
        crop: ``[3]`` ``(zoom, ox, oy)``.
        size: crop ``(w, h)``.

    Returns:
        ``([3, h, w]`` float in [0, 1], ``[1, h, w]`` 1 where the sample lies inside the photo, else 0).
    """
    img = photo.float() / 255.0 if photo.dtype == torch.uint8 else photo.float()
    big_h, big_w = img.shape[1:]
    zoom, ox, oy = (float(v) for v in crop)
    cols = (torch.arange(size[0], dtype=torch.float64) + 0.5 + ox) / zoom
    rows = (torch.arange(size[1], dtype=torch.float64) + 0.5 + oy) / zoom
    gx = (2.0 * cols / big_w - 1.0).view(1, -1).expand(size[1], -1)
    gy = (2.0 * rows / big_h - 1.0).view(-1, 1).expand(-1, size[0])
    grid = torch.stack([gx, gy], dim=-1)[None].float()
    out = F.grid_sample(img[None], grid, mode="bilinear", padding_mode="border", align_corners=False)[0]
    inside = ((cols >= 0) & (cols <= big_w)).view(1, -1) & ((rows >= 0) & (rows <= big_h)).view(-1, 1)
    return out, inside[None].float()


def border_mask(height: int, width: int, border: int) -> Tensor:
    """``[1, H, W]``: 0 within ``border`` pixels of an edge, 1 inside."""
    mask = torch.zeros(1, height, width)
    if 2 * border < min(height, width):
        mask[:, border:height - border, border:width - border] = 1.0
    return mask


def batch_for_step(data: SceneData, cfg: SamplerConfig, seed: int, step: int) -> Batch:
    """The crops of one step: a slice of the epoch's image permutation, ``inner_batch_size`` crops per image."""
    train = data.train_indices
    spe = steps_per_epoch(len(train), cfg.batch_size)
    epoch, within = divmod(step, spe)
    order = np.concatenate([epoch_images(train, seed, epoch)] * (1 + cfg.batch_size // max(1, len(train))))
    images = order[within * cfg.batch_size:(within + 1) * cfg.batch_size]
    if len(images) < cfg.batch_size:  # the last step of an epoch wraps to its start
        images = np.concatenate([images, order[: cfg.batch_size - len(images)]])
    gen = step_generator(seed, 2, step)
    crop_size = (cfg.crop_width, cfg.crop_height)
    frames, crops, targets, masks = [], [], [], []
    border = border_mask(cfg.crop_height, cfg.crop_width, cfg.border)
    assert data.photos is not None
    for index in images:
        earlier: list[tuple[float, float]] = []
        size = (int(data.full_size[index, 0]), int(data.full_size[index, 1]))
        for _ in range(cfg.inner_batch_size):
            crop = torch.tensor(sample_crop(size, crop_size, cfg, gen, earlier))
            target, inside = warp_crop(data.photos[index], crop, crop_size)
            frames.append(int(index))
            crops.append(crop)
            targets.append(target)
            masks.append((border * inside).clamp_min(cfg.mask_floor))
    return Batch(
        frames=torch.tensor(frames, dtype=torch.long), crops=torch.stack(crops).float(),
        target=torch.stack(targets), mask=torch.stack(masks),
    )
