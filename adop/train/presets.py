"""Named training presets: ``cpu-fast`` for small scenes on a laptop-class CPU, ``gpu-quality`` for ADOP's settings.

``gpu-quality`` is ADOP's released Tanks-and-Temples config (adop-reference §5.2, §6): 4 images × 4 crops of 512²,
the full environment map, SGD on exposure, vignette and poses at ADOP's rates, 50 locked epochs, plateau 0.75/10.
White balance is learned (TRIPS does; ADOP's configs switch it off), because mixed-white-balance captures are the
norm in studio work and the anchored tonemapper makes it safe.

``cpu-fast`` keeps the architecture and the loss but sizes the work for two CPU cores (shared/docs/cpu-budget.md:
about 4 s per megapixel of crops per step for the network): photos at half size, 4 crops of 128² per step, and ADOP's
environment map at 256×128 (it fills pixels no point reaches, sky and unreconstructed ground: +1.8 dB held-out PSNR on
lund, where SfM leaves the sky and the road empty, 13.81 → 15.65 dB; no change on the small synthetic set, 22.61 vs
22.51 dB, same EV/WB recovery; 2 % more time per step). A run of a few thousand steps sees each image a few hundred
times, so the locks are 10 epochs and the patience 15. ADOP's SGD rates on exposure and vignette (5e-4, 5e-6) barely move in that many steps, so those
groups use Adam with rates that converge within the run (exposure 0.01; vignette 5e-4, since at 2e-3 its weakly
constrained centre wandered by a third of the image on the small synthetic set); white balance and response get 5×
ADOP's Adam rate. Adam moves weakly determined directions as fast as well determined ones, which is why the
exposure–gamma gauge is pinned by ``TrainConfig.exposure_slope_anchor``.
"""

from __future__ import annotations

from adop.errors import InputError
from adop.model.losses import LossConfig
from adop.raster import RasterConfig
from adop.train.config import OptimConfig, SamplerConfig, ScheduleConfig, TrainConfig

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
