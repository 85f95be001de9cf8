"""A scene's photos in memory and the held-out split: what a model is trained on and scored against.

``SceneData`` holds the cameras and poses as tensors (scaled by ``image_scale``) and, optionally, the photos; training
(``adop.train``) draws crops from it and evaluation (``adop.evaluate``) scores held-out views against it. The split is
TRIPS' modulo rule (``index % every == offset``), the ``llffhold = 8`` convention.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from adop.errors import InputError
from adop.images import read_photo
from adop.scene.folder import load_scene
from adop.scene.types import Scene


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

