"""Named training presets: ``cpu-fast`` for small scenes on a laptop-class CPU, ``gpu-quality`` for ADOP's settings.

``gpu-quality`` is ADOP's released Tanks-and-Temples config (ADOP ``configs/train_tank_and_temples_multi.ini``;
docs/method.md §9): 4 images × 4 crops of 512², the full environment map, SGD on exposure, vignette and poses at
ADOP's rates, 50 locked epochs, plateau 0.75/10. White balance is learned (TRIPS does; ADOP's configs switch it off),
because mixed-white-balance captures are the norm in studio work and the anchored tonemapper makes it safe.

``cpu-fast`` keeps the architecture and the loss but sizes the work for a two-core CPU and about an hour of training
(docs/method.md §10; the network's cost scales with the crop pixels of a step): photos at half size, 4 crops of 128²
per step, and ADOP's environment map at 256×128 (it fills pixels no point reaches, such as sky and unreconstructed
ground that SfM leaves empty in street captures, for a small extra cost per step). A run of a few thousand steps sees
each image a few hundred times, so the locks are 10 epochs and the patience 15. ADOP's SGD rates on exposure and
vignette (5e-4, 5e-6) barely move in that many steps, so those groups use Adam with rates that converge within the run
(exposure 0.01; vignette 5e-4, low because a higher rate lets its weakly constrained centre wander); white balance and
response get 5× ADOP's Adam rate. Adam moves weakly determined directions as fast as well determined ones, which is
why the exposure–gamma gauge is pinned by ``TrainConfig.exposure_slope_anchor``.

The measured figures behind these choices (environment-map gain, cost per step, vignette rate) are in
``benchmarks/results/presets.md``.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

from adop.errors import InputError
from adop.nn.losses import LossConfig
from adop.raster import RasterConfig
from adop.model.config import OptimConfig, SamplerConfig, ScheduleConfig, TrainConfig

CPU_FAST = TrainConfig(
    raster=RasterConfig(),
    loss=LossConfig(),
    optim=OptimConfig(
        lr_exposure=0.01, exposure_optimizer="adam", lr_vignette=5e-4, vignette_optimizer="adam",
        lr_white_balance=5e-3, lr_response=5e-3,
    ),
    schedule=ScheduleConfig(decay_patience=15, lock_camera_epochs=10, lock_structure_epochs=10),
    sampler=SamplerConfig(crop_width=128, crop_height=128, batch_size=4, inner_batch_size=1),
    max_steps=3000,
    checkpoint_every=200,
    log_every=10,
    eval_every=250,
    image_scale=0.5,
    environment_map=True,
)
"""Small scenes (tens of photos, up to a few hundred thousand points) on 2 CPU cores within about an hour."""

GPU_QUALITY = TrainConfig(
    sampler=SamplerConfig(crop_width=512, crop_height=512, batch_size=4, inner_batch_size=4),
    environment_map=True,
    environment_size=(1024, 512),
    max_steps=40_000,
    checkpoint_every=2000,
    log_every=50,
    eval_every=5000,
)
"""ADOP's released settings (T&T config) on a 40 GB GPU; 40k steps ≈ 400 epochs of a 400-image scene."""

PRESETS: dict[str, TrainConfig] = {"cpu-fast": CPU_FAST, "gpu-quality": GPU_QUALITY}
"""All named presets."""


def preset(name: str) -> TrainConfig:
    """The named preset.

    Raises:
        InputError: unknown name (the message lists the valid ones).
    """
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown training preset {name!r}; choose one of {', '.join(PRESETS)}") from None


def resolve_config(
    preset_name: str = "cpu-fast", *, config_file: Path | None = None, vgg_weights: Path | None = None,
    checkpoint_every: int | None = None,
) -> TrainConfig:
    """The config a command line asks for: a preset, or a saved ``config.json``, with a few overrides."""
    if config_file is not None:
        try:
            config = TrainConfig.from_json(Path(config_file).read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as error:
            raise InputError(f"cannot read the training config {config_file}: {error}") from None
    else:
        config = preset(preset_name)
    if vgg_weights is not None:
        config = config.replace(loss=dataclasses.replace(config.loss, vgg_weights=Path(vgg_weights)))
    if checkpoint_every is not None:
        config = config.replace(checkpoint_every=int(checkpoint_every))
    return config
