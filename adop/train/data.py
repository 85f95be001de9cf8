"""Training data: a scene's photos in memory, the held-out split, and ADOP's random crop sampler.

The nerfstudio "data manager" part of the split: ``SceneData`` holds what the model is compared with, and
``batch_for_step`` turns a step number into a batch. The batch depends only on ``(seed, step)`` — the epoch's image
order comes from ``(seed, epoch)`` and every crop from ``(seed, step)`` — so a resumed run sees exactly the batches an
uninterrupted run would, with no data-loader state to checkpoint.

Photos are kept as stored (8-bit, camera response applied) and compared in [0, 1] (docs/conventions.md). Crops follow
the conventions' affine map ``u' = zoom·u − ox``; the target crop is the photo bilinearly resampled at the crop's
pixel centres, and the same ``(zoom, ox, oy)`` goes to the rasterizer, so render and target cover the same pixels.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch
import torch.nn.functional as F
from torch import Tensor

from adop.errors import InputError
from adop.scene import Scene, load_scene
from adop.train.config import SamplerConfig

log = logging.getLogger(__name__)


def holdout_split(num_frames: int, every: int, offset: int = 0) -> np.ndarray:
    """Boolean ``[num_frames]``, True for held-out frames: ``index % every == offset`` (0 disables).

    Raises:
        InputError: the split leaves no training frame.
    """
    held = np.zeros(num_frames, dtype=bool)
    if every > 0:
        held[np.arange(num_frames) % every == offset % every] = True
    if num_frames and held.all():
        raise InputError(f"holdout_every={every} holds out all {num_frames} frames; nothing is left to train on")
    return held


def step_generator(seed: int, *keys: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A generator on ``device`` seeded from ``(seed, *keys)`` via numpy's SeedSequence (well mixed, ordered)."""
    state = np.random.SeedSequence([int(seed), *(int(k) for k in keys)]).generate_state(2, dtype=np.uint32)
    return torch.Generator(device=device).manual_seed(int(state[0]) << 32 | int(state[1]))


def read_photo(path: Path, scale: float = 1.0) -> Tensor:
    """Read an 8-bit RGB photo as ``[3, H, W]`` uint8, optionally area-downscaled by ``scale``.

    Raises:
        InputError: the file cannot be read.
    """
    image = oiio.ImageInput.open(str(path))
    if image is None:
        raise InputError(f"cannot open the photo {path}: {oiio.geterror()}")
    try:
        pixels = image.read_image("uint8")
    finally:
        image.close()
    if pixels is None:
        raise InputError(f"cannot read the photo {path}: {oiio.geterror()}")
    arr = np.asarray(pixels)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
    photo = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    if scale != 1.0:
        h, w = photo.shape[1:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = F.interpolate(photo[None].float(), size=size, mode="area")[0]
        photo = small.round().clamp(0, 255).to(torch.uint8)
    return photo


@dataclass
class SceneData:
    """A loaded scene: cameras and poses as tensors, points, and (optionally) the photos in memory.

    All per-frame tensors are indexed by frame index in scene order. Cameras are scaled by ``image_scale``.
    """

    scene: Scene
    scene_dir: Path
    image_scale: float
    intrinsics: Tensor  # [F, 4] float32 (fx, fy, cx, cy)
    distortion: Tensor  # [F, 8] float32 OpenCV order
    rotations: Tensor  # [F, 3, 3] float64 world->camera
    translations: Tensor  # [F, 3] float64
    full_size: Tensor  # [F, 2] long (W, H)
    camera_index: Tensor  # [F] long
    exif_ev: Tensor  # [F] float32
    heldout: np.ndarray  # [F] bool
    photos: list[Tensor] | None  # F × [3, H, W] uint8, None when not loaded

    @property
    def names(self) -> list[str]:
        """Frame image names in scene order."""
        return [f.name for f in self.scene.frames]

    @property
    def train_indices(self) -> np.ndarray:
        """Frame indices used for training."""
        return np.flatnonzero(~self.heldout)

    @property
    def heldout_indices(self) -> np.ndarray:
        """Frame indices held out for evaluation."""
        return np.flatnonzero(self.heldout)

    def target(self, index: int) -> Tensor:
        """Photo of frame ``index`` as ``[1, 3, H, W]`` float in [0, 1]."""
        if self.photos is None:
            raise InputError("photos were not loaded (load_scene_data(..., photos=True))")
        return self.photos[index][None].float() / 255.0


def load_scene_data(
    scene_dir: Path, *, image_scale: float = 1.0, holdout_every: int = 8, holdout_offset: int = 0,
    photos: bool = True, photo_indices: np.ndarray | None = None,
) -> SceneData:
    """Load a scene folder (``adop.scene.load_scene``) and its photos for training or evaluation.

    Args:
        scene_dir: the scene folder.
        image_scale: scale factor of photos and cameras.
        holdout_every: see ``TrainConfig.holdout_every``.
        holdout_offset: see ``TrainConfig.holdout_offset``.
        photos: read the photos into memory.
        photo_indices: read only these frames' photos (others are empty placeholders); None reads all.

    Raises:
        InputError: the scene has no frames or points, or a photo's size does not match its camera.
    """
    scene_dir = Path(scene_dir)
    scene = load_scene(scene_dir)
    if not scene.frames or len(scene.points) == 0:
        raise InputError(f"the scene {scene_dir} has no frames or no points; nothing to train")
    cams = [c.scaled(image_scale) if image_scale != 1.0 else c for c in scene.cameras]
    frames = scene.frames
    data = SceneData(
        scene=scene, scene_dir=scene_dir, image_scale=image_scale,
        intrinsics=torch.tensor(np.array([cams[f.camera_index].intrinsics for f in frames]), dtype=torch.float32),
        distortion=torch.tensor(np.array([cams[f.camera_index].distortion for f in frames]), dtype=torch.float32),
        rotations=torch.tensor(np.array([f.rotation for f in frames]), dtype=torch.float64),
        translations=torch.tensor(np.array([f.translation for f in frames]), dtype=torch.float64),
        full_size=torch.tensor([[cams[f.camera_index].width, cams[f.camera_index].height] for f in frames]),
        camera_index=torch.tensor([f.camera_index for f in frames], dtype=torch.long),
        exif_ev=torch.tensor([f.exposure_ev for f in frames], dtype=torch.float32),
        heldout=holdout_split(len(frames), holdout_every, holdout_offset),
        photos=None,
    )
    if photos:
        wanted = set(range(len(frames)) if photo_indices is None else (int(i) for i in photo_indices))
        loaded = []
        for i, frame in enumerate(frames):
            if i not in wanted:
                loaded.append(torch.zeros(3, 0, 0, dtype=torch.uint8))
                continue
            photo = read_photo(scene.image_path(frame, scene_dir), image_scale)
            w, h = (int(v) for v in data.full_size[i])
            if tuple(photo.shape[1:]) != (h, w):
                raise InputError(
                    f"photo {frame.name} is {photo.shape[2]}×{photo.shape[1]} but its camera says {w}×{h} "
                    f"(after scaling by {image_scale}); the scene folder does not match its images"
                )
            loaded.append(photo)
        data.photos = loaded
    return data


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
