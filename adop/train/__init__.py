"""Training of ADOP scene models (issue 5): config and presets, the training loop with checkpoints, the export.

Public API::

    from adop.train import TrainConfig, preset, train, load_trained_model

    result = train(scene_dir, run_dir, preset("cpu-fast"))      # resumable; writes RUN_DIR (see adop.train.trainer)
    model = load_trained_model(run_dir)                          # no photos needed
    image = model.render(R, t, (fx, fy, cx, cy), (W, H), ev=11.0)  # [3, H, W] in [0, 1]

The split follows nerfstudio: ``data`` (photos, split, crop sampler), ``model`` (``SceneModel``), ``optim``
(parameter groups, locks, plateau schedule), ``trainer`` (loop, checkpoints, resume), ``export`` (``TrainedModel``).
"""

from adop.train.config import OptimConfig, SamplerConfig, ScheduleConfig, TrainConfig
from adop.train.data import holdout_split
from adop.train.export import TrainedModel, load_trained_model
from adop.train.presets import PRESETS, preset
from adop.train.trainer import TrainResult, train

__all__ = [
    "PRESETS",
    "OptimConfig",
    "SamplerConfig",
    "ScheduleConfig",
    "TrainConfig",
    "TrainResult",
    "TrainedModel",
    "holdout_split",
    "load_trained_model",
    "preset",
    "train",
]
