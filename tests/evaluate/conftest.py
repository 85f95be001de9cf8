"""Fixtures of the evaluation tests: a micro synthetic set and a micro training run with its comparison runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from adop.train import train_comparisons
from adop.nn.losses import LossConfig
from adop.synth import TINY, generate_capture_set
from adop.train import SamplerConfig, ScheduleConfig, TrainConfig, preset, train

EVAL_MICRO = TINY.with_changes(name="micro-eval", views=10, width=64, height=48, supersampling=1, heldout_views=2,
                               surface_points=20_000)


def eval_config(steps: int) -> TrainConfig:
    """cpu-fast shrunk to the micro set: 4 crops of 32², camera unlocked after one epoch."""
    return preset("cpu-fast").replace(
        sampler=SamplerConfig(crop_width=32, crop_height=32, batch_size=2, inner_batch_size=2, border=4),
        schedule=ScheduleConfig(lock_camera_epochs=1, lock_structure_epochs=1), loss=LossConfig(),
        image_scale=1.0, holdout_every=5, log_every=5, eval_every=0, checkpoint_every=steps, max_steps=steps,
    )


@pytest.fixture(scope="session")
def eval_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``OUT`` of a micro synthetic set with two held-out EXRs."""
    out = tmp_path_factory.mktemp("eval") / "set"
    generate_capture_set(out, preset=EVAL_MICRO, seed=1)
    return out


@pytest.fixture(scope="session")
def eval_run(eval_set: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 16-step run on the micro set plus 2-step comparison runs (baseline (b), oracle) under RUN/baselines."""
    run = tmp_path_factory.mktemp("eval-run") / "run"
    scene = eval_set / "ground_truth" / "scene"
    train(scene, run, eval_config(16), bar=False)
    train_comparisons(scene, run, eval_config(2), ground_truth_dir=eval_set / "ground_truth", bar=False)
    return run
