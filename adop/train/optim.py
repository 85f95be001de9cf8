"""Optimisers per parameter group, ADOP's phase locks and its plateau learning-rate schedule (docs/method.md §9).

One optimiser per group (rather than one optimiser with many param groups) mirrors ADOP, keeps SGD and Adam groups
apart, and makes a locked group trivially skippable: its optimiser simply does not step (ADOP zeroes the gradients of
locked groups instead, which is the same thing for SGD and Adam, whose state only changes on a step).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from adop.model.config import OptimConfig, ScheduleConfig
from adop.model.scene_model import CAMERA_GROUPS, STRUCTURE_GROUPS

log = logging.getLogger(__name__)


def base_learning_rate(group: str, cfg: OptimConfig) -> float:
    """The configured learning rate of a group."""
    return float(getattr(cfg, f"lr_{group}"))


def optimizer_kind(group: str, cfg: OptimConfig) -> str:
    """``sgd`` or ``adam`` for a group (only exposure, vignette and poses are configurable; ADOP's others are Adam)."""
    return {"exposure": cfg.exposure_optimizer, "vignette": cfg.vignette_optimizer, "poses": cfg.pose_optimizer}.get(
        group, "adam"
    )


def build_optimizers(groups: dict[str, list[nn.Parameter]], cfg: OptimConfig) -> dict[str, torch.optim.Optimizer]:
    """One optimiser per group, in the group's kind, at its base learning rate."""
    out: dict[str, torch.optim.Optimizer] = {}
    for name, params in groups.items():
        lr = base_learning_rate(name, cfg)
        if optimizer_kind(name, cfg) == "sgd":
            out[name] = torch.optim.SGD(params, lr=lr)
        else:
            out[name] = torch.optim.Adam(params, lr=lr, eps=cfg.adam_eps)
    return out


def unlocked(group: str, epoch: int, cfg: ScheduleConfig) -> bool:
    """Whether ``group`` is optimised in ``epoch`` (0-based): camera and structure groups wait for their lock."""
    if group in CAMERA_GROUPS:
        return epoch >= cfg.lock_camera_epochs
    if group in STRUCTURE_GROUPS:
        return epoch >= cfg.lock_structure_epochs
    return True


@dataclass
class PlateauSchedule:
    """ADOP's plateau schedule on the training epoch loss.

    When the epoch loss has not improved (relatively, by ``min_improvement``) for more than ``decay_patience`` epochs,
    every *unlocked* group's learning rate is multiplied by ``decay_factor`` and the best loss is reset, so the next
    decay needs another full patience window. Groups still locked keep their rate (ADOP: "camera and structure
    optimisers only start decaying once unlocked").
    """

    config: ScheduleConfig
    scale: dict[str, float] = field(default_factory=dict)
    best: float = float("inf")
    bad_epochs: int = 0
    decays: int = 0

    def epoch_end(self, loss: float, epoch: int, groups: list[str]) -> bool:
        """Record the mean loss of finished ``epoch``; return True when it triggered a decay."""
        if loss < self.best * (1.0 - self.config.min_improvement):
            self.best, self.bad_epochs = loss, 0
            return False
        self.bad_epochs += 1
        if self.bad_epochs <= self.config.decay_patience:
            return False
        for group in groups:
            if unlocked(group, epoch, self.config):
                self.scale[group] = self.scale.get(group, 1.0) * self.config.decay_factor
        self.best, self.bad_epochs = float("inf"), 0
        self.decays += 1
        log.info("epoch %d: loss plateaued at %.5f, learning rates × %.2f (decay %d)", epoch, loss,
                 self.config.decay_factor, self.decays)
        return True

    def learning_rate(self, group: str, cfg: OptimConfig) -> float:
        """Current learning rate of a group."""
        return base_learning_rate(group, cfg) * self.scale.get(group, 1.0)

    def apply(self, optimizers: dict[str, torch.optim.Optimizer], cfg: OptimConfig) -> None:
        """Write the current learning rates into the optimisers."""
        for name, opt in optimizers.items():
            for pg in opt.param_groups:
                pg["lr"] = self.learning_rate(name, cfg)

    def state_dict(self) -> dict[str, Any]:
        """Serializable state (for checkpoints)."""
        return {"scale": dict(self.scale), "best": self.best, "bad_epochs": self.bad_epochs, "decays": self.decays}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore ``state_dict`` output."""
        self.scale = {str(k): float(v) for k, v in state["scale"].items()}
        self.best, self.bad_epochs, self.decays = float(state["best"]), int(state["bad_epochs"]), int(state["decays"])
