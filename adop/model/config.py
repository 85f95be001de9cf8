"""Training configuration: nested frozen dataclasses with a docstring under every field, JSON round trip and hash.

Numbers default to ADOP's released Tanks-and-Temples config (ADOP ``configs/train_tank_and_temples_multi.ini``;
docs/method.md §9); the presets in ``adop.train.presets`` adapt them to a CPU. Only primitives, ``Path``s,
``Literal``s, tuples and nested dataclasses appear, so ``to_dict``/``from_dict`` are exact and ``config_hash`` is
stable across processes (it goes into cache keys).

Units: steps are optimiser steps (one batch); an **epoch** is ``ceil(train_images / batch_size)`` steps, i.e. every
training image once (ADOP's definition). Locks and the plateau patience count epochs, so a preset means the same
thing for a 20-image and a 200-image scene; ``max_steps`` and ``checkpoint_every`` count steps, because wall time
scales with steps.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import torch

from adop.config import Config
from adop.errors import InputError
from adop.nn.losses import LossConfig
from adop.nn.renderer import RendererConfig
from adop.nn.tonemapper import TonemapperConfig
from adop.raster import RasterConfig

OptimizerKind = Literal["sgd", "adam"]
DescriptorInit = Literal["random", "colors"]
CameraModelMode = Literal["learned", "fixed_gamma"]
Device = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class OptimConfig(Config):
    """Optimiser and learning rate of every parameter group (ADOP's T&T config; docs/method.md §9)."""

    lr_network: float = 2e-4
    """Adam learning rate of the U-Net."""
    lr_descriptors: float = 0.08
    """Adam learning rate of the point descriptors (ADOP ``lr_texture``)."""
    lr_background: float = 0.004
    """Adam learning rate of the background descriptor."""
    lr_environment: float = 0.02
    """Adam learning rate of the environment map (only when ``TrainConfig.environment_map``)."""
    lr_response: float = 1e-3
    """Adam learning rate of the camera response curve samples."""
    lr_white_balance: float = 1e-3
    """Adam learning rate of the per-image log white balance."""
    lr_exposure: float = 5e-4
    """Learning rate of the per-image EV (``exposure_optimizer``)."""
    lr_vignette: float = 5e-6
    """Learning rate of the vignetting coefficients and centre (``vignette_optimizer``)."""
    lr_poses: float = 0.005
    """Learning rate of the SE(3) pose tangents (``pose_optimizer``); 0 keeps the poses fixed."""
    exposure_optimizer: OptimizerKind = "sgd"
    """ADOP uses plain SGD; a CPU run of a few thousand steps needs Adam to move the EVs at all."""
    vignette_optimizer: OptimizerKind = "sgd"
    """ADOP uses plain SGD (tiny rate); Adam makes the vignette learnable within a short CPU run."""
    pose_optimizer: OptimizerKind = "sgd"
    """ADOP uses SGD on the tangent, applied with ``apply_pose_tangent`` and reset to zero after every step."""
    adam_eps: float = 1e-8
    """Adam epsilon for every Adam group (ADOP: 1e-8)."""


@dataclass(frozen=True)
class ScheduleConfig(Config):
    """Plateau learning-rate schedule and phase locks (ADOP ``adop_train.cpp``, saiga ``LRScheduler.h``;
    docs/method.md §9)."""

    decay_factor: float = 0.75
    """Multiply the learning rates of all unlocked groups by this when the epoch loss stops improving."""
    decay_patience: int = 10
    """Epochs without improvement before a decay (ADOP T&T: 10, boat: 15); the best loss is reset after a decay."""
    min_improvement: float = 1e-4
    """Relative improvement of the epoch loss that counts as progress."""
    lock_camera_epochs: int = 50
    """Epochs during which the tonemapper (exposure, white balance, vignette, response) is frozen."""
    lock_structure_epochs: int = 50
    """Epochs during which the poses are frozen."""


@dataclass(frozen=True)
class SamplerConfig(Config):
    """Random crops with zoom (saiga ``RandomImageCrop``; docs/method.md §8) and the loss mask (§7)."""

    crop_width: int = 512
    """Width of every training crop in pixels."""
    crop_height: int = 512
    """Height of every training crop in pixels."""
    batch_size: int = 4
    """Images per step."""
    inner_batch_size: int = 4
    """Crops per image per step (each one a rasterized view)."""
    zoom_min: float = 0.75
    """Lower zoom bound; raised to ``max(crop/size)`` so a crop never exceeds the zoomed image."""
    zoom_max: float = 1.5
    """Upper zoom bound (zoom > 1 magnifies)."""
    prefer_border: bool = True
    """Draw the offset from ``[−crop/2, max + crop/2]`` and clamp, so image borders are seen as often as centres."""
    candidates: int = 3
    """Candidate crops per crop; the one whose centre is farthest from earlier crops of the same image is kept."""
    border: int = 16
    """Pixels at every crop edge that get only ``mask_floor`` weight in the loss (ADOP ``train_mask_border``)."""
    mask_floor: float = 0.1
    """Minimum loss weight of masked pixels (border, outside the photo); ADOP clamps masks to 0.1."""


def _default_raster() -> RasterConfig:
    return RasterConfig()


@dataclass(frozen=True)
class TrainConfig(Config):
    """Everything a training run depends on; saved as ``RUN_DIR/config.json`` and hashed into cache keys."""

    raster: RasterConfig = field(default_factory=_default_raster)
    """Rasterizer options (training dropout 0.25; evaluation uses ``raster.evaluation()``)."""
    renderer: RendererConfig = field(default_factory=RendererConfig)
    """U-Net architecture; ``renderer.layers`` must equal ``raster.layers``."""
    tonemapper: TonemapperConfig = field(default_factory=TonemapperConfig)
    """Photometric camera model (exposure, white balance, vignette, response, anchoring)."""
    loss: LossConfig = field(default_factory=LossConfig)
    """L1 + (1 − SSIM) weights and the optional local VGG-19 weights file (never downloaded)."""
    optim: OptimConfig = field(default_factory=OptimConfig)
    """Optimisers and learning rates per parameter group."""
    schedule: ScheduleConfig = field(default_factory=ScheduleConfig)
    """Plateau schedule and phase locks."""
    sampler: SamplerConfig = field(default_factory=SamplerConfig)
    """Crops, batches and loss masks."""
    max_steps: int = 10_000
    """Optimiser steps of the whole run (a resumed run continues up to this count)."""
    checkpoint_every: int = 500
    """Write a checkpoint every this many steps (and always at the end)."""
    keep_checkpoints: int = 2
    """Checkpoints kept on disk; the older ones are deleted after a newer one is safely written."""
    log_every: int = 10
    """Steps between lines in ``train_log.jsonl`` (and log lines when not on a terminal)."""
    eval_every: int = 0
    """Steps between quick held-out PSNR evaluations written to ``train_log.jsonl`` (0: only at the end)."""
    holdout_every: int = 8
    """Frames whose index (in scene order) satisfies ``index % holdout_every == holdout_offset`` are held out for
    evaluation (TRIPS' modulo split, the ``llffhold = 8`` convention); 0 trains on every frame."""
    holdout_offset: int = 0
    """See ``holdout_every``."""
    seed: int = 0
    """Seeds parameter initialisation, and with the step number, the batch, crops and dropout of every step, so a
    resumed run draws exactly the data an uninterrupted one would."""
    descriptor_init: DescriptorInit = "random"
    """``random``: U(0, 1) as ADOP; ``colors``: the point colours (linearised) in the first three channels."""
    exposure_slope_anchor: bool = True
    """After every step, remove from the learned EV corrections (learned − EXIF) their linear trend in the EXIF EV.

    Images alone cannot tell exposure from gamma: ``(hdr, e, CRF, vignette)`` and ``(hdr^a, a·e, CRF∘x^(1/a),
    vignette^a)`` render identically, so the learned EVs drift to ``a·EXIF`` with ``a ≠ 1`` (measured: a ≈ 0.86 on the
    small synthetic set) and a render at "EV + 1" is no longer one stop darker. The EXIF exposure *ratios* are
    physically right, so this gauge fix pins ``a = 1``; it assumes the unrecorded deviations are uncorrelated with the
    recorded EVs. No-op when the EXIF EVs of the training images (nearly) agree."""
    white_balance_slope_anchor: bool = True
    """After every step, remove from the learned log white balance (R and B) its linear trend in the EXIF EV.

    The same gauge per colour channel: with one exposure shared by the channels, a per-channel gamma difference shows
    up as log white balance ∝ EV (measured on the small synthetic set: r(learned log WB, EXIF EV) ≈ 0.8 and the
    correlation with the true white balance fell from 0.92 to 0.55). Assumes the true white balance is uncorrelated
    with the recorded EV."""
    environment_map: bool = False
    """Learn ADOP's equirectangular environment map for empty pixels (both presets turn it on; see ``presets``)."""
    environment_size: tuple[int, int] = (256, 128)
    """Environment map ``(W, H)`` (ADOP: 1024×512)."""
    camera_model: CameraModelMode = "learned"
    """``learned``: the full tonemapper; ``fixed_gamma``: no exposure, white balance or vignette and a frozen gamma
    2.2 response (baseline (b) of the evaluation: the model without its camera model)."""
    image_scale: float = 1.0
    """Scale photos and cameras by this factor on load (0.5 halves both sides), to fit a CPU budget."""
    threads: int = 2
    """``torch.set_num_threads`` for the run: CPU threads used by training. The default of 2 suits small machines
    (the ``cpu-fast`` budget, docs/method.md §10) and leaves cores free where jobs share a host; raise it on bigger
    CPUs."""
    device: Device = "auto"
    """Where to train: ``auto`` picks CUDA when torch sees a GPU; ``cuda`` without one is an error."""

    def validate(self) -> None:
        if self.renderer.layers != self.raster.layers:
            raise InputError(
                f"renderer.layers ({self.renderer.layers}) must equal raster.layers ({self.raster.layers})"
            )
        if self.max_steps < 1 or self.checkpoint_every < 1 or self.keep_checkpoints < 1:
            raise InputError("max_steps, checkpoint_every and keep_checkpoints must be >= 1 (a run of 0 steps would "
                             "export an untrained model)")
        if self.holdout_every < 0 or not 0 < self.image_scale <= 1.0:
            raise InputError("holdout_every must be >= 0 and image_scale in (0, 1]")
        s = self.sampler
        if min(s.crop_width, s.crop_height, s.batch_size, s.inner_batch_size, s.candidates) < 1:
            raise InputError("crop sizes, batch sizes and candidates must be >= 1")
        if not 0 < s.zoom_min <= s.zoom_max:
            raise InputError(f"need 0 < zoom_min <= zoom_max, got {s.zoom_min}, {s.zoom_max}")

    def torch_device(self) -> torch.device:
        """The device ``device`` resolves to.

        Raises:
            InputError: ``cuda`` was asked for but torch sees no GPU.
        """
        if self.device == "cuda" and not torch.cuda.is_available():
            raise InputError("device 'cuda' was requested but torch sees no GPU; use device 'cpu' or 'auto'")
        if self.device == "cpu" or (self.device == "auto" and not torch.cuda.is_available()):
            return torch.device("cpu")
        return torch.device("cuda")

    def effective_tonemapper(self) -> TonemapperConfig:
        """The tonemapper config after ``camera_model`` (baseline (b) switches the learned parts off)."""
        if self.camera_model == "learned":
            return self.tonemapper
        return dataclasses.replace(
            self.tonemapper, enable_exposure=False, enable_white_balance=False, enable_vignette=False,
            enable_response=True,
        )

    def compatibility_hash(self) -> str:
        """Hash of what the *trajectory* depends on: the config without the run-length and bookkeeping fields.

        A run may be resumed with a larger ``max_steps``, another checkpoint interval or on another device, but not
        with, say, another learning rate: the optimiser states and schedule would no longer mean what they say.
        """
        data = self.to_dict()
        for key in _RUN_SHAPE_FIELDS:
            data.pop(key, None)
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


_RUN_SHAPE_FIELDS = (
    "max_steps", "checkpoint_every", "keep_checkpoints", "log_every", "eval_every", "threads", "device",
)
"""Fields that may change when a run is resumed (``TrainConfig.compatibility_hash``)."""
