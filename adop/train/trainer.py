"""``train``: the training loop with checkpoints, resume, progress and the final export.

The nerfstudio "pipeline + trainer" part of the split, small enough to be one module: ``_Session`` glues data, model,
loss and optimisers for one step; ``train`` owns the run folder, checkpoints and resume. A run folder holds::

    RUN_DIR/
      run.json              scene folder, config hashes, adop version
      config.json           the resolved TrainConfig (TrainConfig.from_json reads it back)
      checkpoints/step-XXXXXXXX.pt   the last ``keep_checkpoints`` checkpoints (adop.train.checkpoint)
      train_log.jsonl       one JSON line per ``log_every`` steps (loss, lr, it/s, ETA) and per quick evaluation
      model/                the exported model (adop.model.trained), written at the end

Every step's batch, crops and dropout are drawn from generators seeded by ``(seed, step)``, and a checkpoint holds all
other state, so ``train(..., resume=True)`` after a SIGKILL continues exactly where the last checkpoint left off.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

import adop
from adop.errors import InputError, StageError
from adop.nn.losses import PhotometricLoss
from adop.storage import write_text_atomic
from adop.train.checkpoint import list_checkpoints, load_latest_checkpoint, rng_state, save_checkpoint, set_rng_state
from adop.model.config import TrainConfig
from adop.scene.photos import SceneData, load_scene_data
from adop.train.data import Batch, batch_for_step, step_generator, steps_per_epoch
from adop.model.trained import MODEL_DIR, export_model
from adop.model.scene_model import SceneModel
from adop.train.optim import PlateauSchedule, build_optimizers, unlocked
from adop.train.progress import ProgressCallback, ProgressReporter

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrainResult:
    """What a finished ``train`` call produced."""

    run_dir: Path
    """The run folder."""
    model_dir: Path
    """``RUN_DIR/model`` (load it with ``load_trained_model(run_dir)``)."""
    steps: int
    """Completed optimiser steps."""
    epochs: float
    """Completed epochs (steps / steps per epoch)."""
    final_loss: float
    """Mean training loss of the last logged window (NaN when no step ran in this call)."""
    elapsed_s: float
    """Training seconds over all sessions of the run."""
    resumed_from: int | None
    """Step of the checkpoint this call resumed from, None for a fresh start."""
    heldout_psnr: float | None
    """Mean held-out PSNR of the last quick evaluation (left/right protocol), None when none ran."""


@dataclass
class _LoopState:
    step: int = 0
    epoch_loss_sum: float = 0.0
    epoch_loss_count: int = 0
    window: list[float] | None = None
    elapsed: float = 0.0
    last_psnr: float | None = None


class _Session:
    """Data, model, loss and optimisers of one run; ``step()`` runs one optimiser step."""

    def __init__(self, config: TrainConfig, data: SceneData, device: torch.device | None = None) -> None:
        self.config, self.data = config, data
        self.device = device if device is not None else torch.device("cpu")
        self.model = SceneModel.from_scene_data(config, data).to(self.device)
        self.model.train()
        self.loss = PhotometricLoss(config.loss)
        self.groups = self.model.param_groups()
        self.optimizers = build_optimizers(self.groups, config.optim)
        self.schedule = PlateauSchedule(config.schedule)
        self.spe = steps_per_epoch(len(data.train_indices), config.sampler.batch_size)
        self.memory_parts = 1
        """In how many parts a step's crops are rendered (raised when the device runs out of memory)."""

    def step(self, step: int) -> dict[str, float]:
        """One optimiser step; out of device memory, the step is taken again in twice as many parts.

        The crops of a step can be rendered and back-propagated in parts whose gradients add up to the whole batch's
        (the loss is a mean over equally sized crops, so each part's loss is weighted by its share of the crops; only
        the dropout draws differ). A GPU that runs out of memory mid-run therefore does not end a night's training:
        the step is retried in 2, 4, … parts, and the run keeps the smallest number that fits. The parts are kept
        in ``memory_parts`` for the rest of this process.
        """
        batch = batch_for_step(self.data, self.config.sampler, self.config.seed, step).to(self.device)
        while True:
            try:
                return self._step_in_parts(step, batch, self.memory_parts)
            except torch.OutOfMemoryError:
                if self.memory_parts >= len(batch):
                    raise StageError(
                        f"step {step} does not fit in the memory of {self.device} even one crop at a time; use a "
                        "smaller sampler crop_width/crop_height or a device with more memory") from None
                self.memory_parts = min(len(batch), 2 * self.memory_parts)
                if self.device.type == "cuda":
                    torch.cuda.empty_cache()
                log.warning("step %d: out of memory on %s; taking the step in %d parts from now on", step,
                            self.device, self.memory_parts)

    def _step_in_parts(self, step: int, batch: Batch, parts: int) -> dict[str, float]:
        cfg = self.config
        epoch = step // self.spe
        active = [g for g in self.groups if unlocked(g, epoch, cfg.schedule)]
        size = (cfg.sampler.crop_width, cfg.sampler.crop_height)
        generator = step_generator(cfg.seed, 3, step, device=self.device)
        for opt in self.optimizers.values():
            opt.zero_grad(set_to_none=True)
        total_value, l1, ssim_value = 0.0, 0.0, 0.0
        for part in batch.split(parts):
            share = len(part) / len(batch)
            _, ldr = self.model.render_frames(part.frames, part.crops, size, poses_trainable="poses" in active,
                                              generator=generator)
            terms = self.loss(ldr, part.target, part.mask)
            loss = share * terms.total
            total_value += float(loss.detach())
            l1, ssim_value = l1 + share * terms.l1, ssim_value + share * terms.ssim
            loss.backward()
            del ldr, terms, loss
        if "response" in self.groups:
            smoothness = self.model.tonemapper.smoothness_loss()
            total_value += float(smoothness.detach())
            smoothness.backward()
        for group in active:
            self.optimizers[group].step()
        if "exposure" in active and cfg.exposure_slope_anchor:
            self.model.anchor_exposure_slope()
        if "white_balance" in active and cfg.white_balance_slope_anchor:
            self.model.anchor_white_balance_slope()
        if "poses" in active:
            self.model.apply_pose_step()
        return {"loss": total_value, "l1": l1, "ssim": ssim_value}

    def state(self, loop: _LoopState) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "optimizers": {k: v.state_dict() for k, v in self.optimizers.items()},
            "schedule": self.schedule.state_dict(),
            "rng": rng_state(),
            "loop": {"epoch_loss_sum": loop.epoch_loss_sum, "epoch_loss_count": loop.epoch_loss_count,
                     "elapsed": loop.elapsed, "last_psnr": loop.last_psnr, "window": list(loop.window or [])},
            "config_hash": self.config.compatibility_hash(),
        }

    def restore(self, document: dict[str, Any], loop: _LoopState) -> None:
        if document.get("config_hash") != self.config.compatibility_hash():
            raise InputError("the checkpoint was written with a different training config; use a new run folder")
        self.model.load_state_dict(document["model"])
        for name, opt in self.optimizers.items():
            opt.load_state_dict(document["optimizers"][name])
        self.schedule.load_state_dict(document["schedule"])
        self.schedule.apply(self.optimizers, self.config.optim)
        set_rng_state(document["rng"])
        state = document["loop"]
        loop.step = int(document["step"])
        loop.epoch_loss_sum, loop.epoch_loss_count = float(state["epoch_loss_sum"]), int(state["epoch_loss_count"])
        loop.elapsed, loop.last_psnr = float(state["elapsed"]), state.get("last_psnr")
        loop.window = [float(v) for v in state.get("window", [])]

    def learning_rates(self) -> dict[str, float]:
        return {g: self.schedule.learning_rate(g, self.config.optim) for g in self.groups}

    def quick_eval(self) -> tuple[float, float] | None:
        """Mean held-out PSNR/SSIM with the left/right protocol (None without held-out frames)."""
        from adop.evaluate.protocol import score_view

        held = self.data.heldout_indices
        if len(held) == 0:
            return None
        self.model.eval()
        scores = []
        for index in held:
            hdr = self.model.render_frame_hdr(int(index))
            scores.append(score_view(
                self.model.tonemapper, hdr, self.data.target(int(index)).to(self.device),
                camera_index=int(self.data.camera_index[index]), ev_init=float(self.data.exif_ev[index]),
                fit_white_balance=self.model.tonemapper.config.enable_white_balance,
            ))
        self.model.train()
        return sum(s.psnr for s in scores) / len(scores), sum(s.ssim for s in scores) / len(scores)


def _prepare_run_dir(run_dir: Path, scene_dir: Path, config: TrainConfig, resume: bool) -> None:
    """Create the run folder or check that an existing one belongs to this scene and config."""
    run_dir.mkdir(parents=True, exist_ok=True)
    meta_path = run_dir / "run.json"
    if meta_path.is_file():
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
        if not resume and (list_checkpoints(run_dir) or (run_dir / MODEL_DIR).exists()):
            raise InputError(f"{run_dir} already holds a training run; pass --resume or choose a new folder")
        if meta.get("compatibility_hash") != config.compatibility_hash():
            raise InputError(
                f"{run_dir} was trained with a different config (only max_steps, checkpoint_every, log_every, "
                "eval_every, keep_checkpoints and threads may change on resume); choose a new run folder"
            )
        if Path(meta["scene_dir"]) != scene_dir.absolute():
            raise InputError(f"{run_dir} was trained on {meta['scene_dir']}, not {scene_dir}; choose a new folder")
    meta = {"format": "adop-train-run", "version": 1, "adop_version": adop.__version__,
            "scene_dir": str(scene_dir.absolute()), "config_hash": config.config_hash(),
            "compatibility_hash": config.compatibility_hash()}
    write_text_atomic(meta_path, json.dumps(meta, indent=1))
    write_text_atomic(run_dir / "config.json", config.to_json())


def _trim_log(path: Path, step: int) -> None:
    """Drop log lines past ``step`` (written after the checkpoint a resume restarts from)."""
    if not path.is_file():
        return
    lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
    kept = [ln for ln in lines if json.loads(ln).get("step", 0) <= step]
    write_text_atomic(path, "".join(ln + "\n" for ln in kept))


def _append_log(path: Path, record: dict[str, Any]) -> None:
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def train(
    scene_dir: Path,
    run_dir: Path,
    config: TrainConfig,
    *,
    resume: bool = True,
    progress: ProgressCallback | None = None,
    max_steps: int | None = None,
    bar: bool | None = None,
) -> TrainResult:
    """Train an ADOP scene model on ``scene_dir``, writing checkpoints, a log and the final model into ``run_dir``.

    Args:
        scene_dir: scene folder (``adop.scene.load_scene``); its photos are read into memory once.
        run_dir: run folder (created); see the module docstring for its layout.
        config: the training config (e.g. ``adop.train.preset("cpu-fast")``).
        resume: continue from the newest valid checkpoint in ``run_dir`` if there is one (a finished run with the
            same step count returns at once). False refuses a folder that already holds a run.
        progress: optional ``(step, total, metrics)`` callback, called every ``log_every`` steps.
        max_steps: overrides ``config.max_steps`` (e.g. to extend a finished run).
        bar: force the rich progress bar on/off; None draws it only on a terminal.

    Returns:
        A ``TrainResult``.

    Raises:
        InputError: unusable scene, or a run folder that belongs to another scene or config.
    """
    scene_dir, run_dir = Path(scene_dir), Path(run_dir)
    cfg = config if max_steps is None else config.replace(max_steps=int(max_steps))
    torch.set_num_threads(cfg.threads)
    _prepare_run_dir(run_dir, scene_dir, cfg, resume)
    log_path = run_dir / "train_log.jsonl"
    data = load_scene_data(scene_dir, image_scale=cfg.image_scale, holdout_every=cfg.holdout_every,
                           holdout_offset=cfg.holdout_offset)
    session = _Session(cfg, data, cfg.torch_device())
    loop, resumed_from = _LoopState(window=[]), None
    latest = load_latest_checkpoint(run_dir) if resume else None
    if latest is not None:
        path, document = latest
        session.restore(document, loop)
        resumed_from = loop.step
        log.info("resuming %s from %s (step %d)", run_dir, path.name, loop.step)
    _trim_log(log_path, loop.step)
    if latest is None and log_path.exists():
        log_path.unlink()
    total, spe = cfg.max_steps, session.spe
    if loop.step > total:
        raise InputError(f"{run_dir} is already at step {loop.step}, past max_steps={total}")
    finished = (run_dir / MODEL_DIR / "model.pt").is_file()
    if loop.step == total and finished:
        return _result(run_dir, loop, spe, resumed_from, float("nan"))
    last_loss = float("nan")
    with ProgressReporter(total, loop.step, loop.elapsed, callback=progress, bar=bar) as reporter:
        while loop.step < total:
            metrics = session.step(loop.step)
            loop.step += 1
            loop.window.append(metrics["loss"])  # type: ignore[union-attr]
            loop.epoch_loss_sum += metrics["loss"]
            loop.epoch_loss_count += 1
            if loop.step % spe == 0:
                epoch = loop.step // spe - 1
                session.schedule.epoch_end(loop.epoch_loss_sum / loop.epoch_loss_count, epoch, list(session.groups))
                session.schedule.apply(session.optimizers, cfg.optim)
                loop.epoch_loss_sum, loop.epoch_loss_count = 0.0, 0
            loop.elapsed = reporter.elapsed
            emit = loop.step % cfg.log_every == 0 or loop.step == total
            if emit:
                last_loss = sum(loop.window) / len(loop.window)  # type: ignore[arg-type]
                record = {"step": loop.step, "epoch": round(loop.step / spe, 3), "loss": last_loss,
                          "l1": metrics["l1"], "ssim": metrics["ssim"], "lr": session.learning_rates()}
                _append_log(log_path, reporter.update(loop.step, record, emit=True))
                loop.window = []
            else:
                reporter.update(loop.step, {"loss": metrics["loss"]}, emit=False)
            if cfg.eval_every and (loop.step % cfg.eval_every == 0 or loop.step == total):
                _quick_eval(session, loop, log_path, reporter)
            if loop.step % cfg.checkpoint_every == 0 or loop.step == total:
                loop.elapsed = reporter.elapsed
                save_checkpoint(run_dir, loop.step, session.state(loop), keep=cfg.keep_checkpoints)
    _export(session, run_dir, scene_dir, loop.step)
    return _result(run_dir, loop, spe, resumed_from, last_loss)


def _quick_eval(session: _Session, loop: _LoopState, log_path: Path, reporter: ProgressReporter) -> None:
    try:
        scores = session.quick_eval()
    except Exception:  # noqa: BLE001 - a diagnostic must never end a night of training
        log.exception("step %d: held-out evaluation failed; training continues", loop.step)
        session.model.train()
        return
    if scores is None:
        return
    loop.last_psnr = scores[0]
    _append_log(log_path, {"step": loop.step, "heldout_psnr": scores[0], "heldout_ssim": scores[1],
                           "elapsed_s": round(reporter.elapsed, 2)})
    log.info("step %d: held-out PSNR %.2f dB, SSIM %.4f", loop.step, scores[0], scores[1])


def _export(session: _Session, run_dir: Path, scene_dir: Path, step: int) -> None:
    data = session.data
    cams = [c.scaled(data.image_scale) if data.image_scale != 1.0 else c for c in data.scene.cameras]
    frames = [{"name": f.name, "camera": f.camera_index, "exif_ev": f.exposure_ev, "heldout": bool(data.heldout[i])}
              for i, f in enumerate(data.scene.frames)]
    session.model.eval()
    export_model(session.model, run_dir, frames=frames, cameras=cams, scene_dir=scene_dir, step=step)


def _result(run_dir: Path, loop: _LoopState, spe: int, resumed_from: int | None, loss: float) -> TrainResult:
    return TrainResult(
        run_dir=run_dir, model_dir=run_dir / MODEL_DIR, steps=loop.step, epochs=loop.step / spe,
        final_loss=loss if math.isfinite(loss) else float("nan"), elapsed_s=loop.elapsed, resumed_from=resumed_from,
        heldout_psnr=loop.last_psnr,
    )
