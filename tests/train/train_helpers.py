"""Micro scene and config helpers of the training tests (imported by the test modules; not a test file)."""

from __future__ import annotations

from adop.nn.losses import LossConfig
from adop.synth import TINY
from adop.train import SamplerConfig, ScheduleConfig, TrainConfig, preset

MICRO = TINY.with_changes(name="micro", views=10, width=64, height=48, supersampling=1, heldout_views=1,
                          surface_points=20_000)
"""10 views at 64×48, 20k ground-truth surface points: about a second to generate."""


def micro_config(base: str = "cpu-fast", **changes: object) -> TrainConfig:
    """A preset shrunk to 4 crops of 32² at full micro resolution, locks of one epoch, logging every step."""
    config = preset(base).replace(
        sampler=SamplerConfig(crop_width=32, crop_height=32, batch_size=2, inner_batch_size=2, border=4),
        schedule=ScheduleConfig(lock_camera_epochs=1, lock_structure_epochs=1, decay_patience=2),
        loss=LossConfig(), image_scale=1.0, log_every=1, eval_every=0, checkpoint_every=2, max_steps=4,
    )
    return config.replace(**changes)  # type: ignore[arg-type]
