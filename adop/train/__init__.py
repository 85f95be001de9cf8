"""Training of ADOP scene models: presets, the training loop with checkpoints, the comparison runs.

Public API::

    from adop.train import preset, train
    from adop.model import load_trained_model

    result = train(scene_dir, run_dir, preset("cpu-fast"))      # resumable; writes RUN_DIR (see adop.train.trainer)
    model = load_trained_model(run_dir)                          # no photos needed
    image = model.render(R, t, (fx, fy, cx, cy), (W, H), ev=11.0)  # [3, H, W] in [0, 1]

The split follows nerfstudio: ``adop.model`` holds what is trained (``SceneModel``, its config, the exported
``TrainedModel``); here are ``data`` (the crop sampler), ``optim`` (parameter groups, locks, plateau schedule),
``trainer`` (loop, checkpoints, resume) and ``comparisons`` (baseline and oracle runs for the evaluation).
"""

from adop.model.config import OptimConfig, SamplerConfig, ScheduleConfig, TrainConfig
from adop.train.comparisons import comparison_runs, train_comparisons
from adop.train.presets import PRESETS, preset, resolve_config
from adop.train.trainer import TrainResult, train

__all__ = [
    "PRESETS",
    "OptimConfig",
    "SamplerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "comparison_runs",
    "preset",
    "resolve_config",
    "train",
    "train_comparisons",
]
