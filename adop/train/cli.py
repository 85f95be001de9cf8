"""Plain functions behind ``adop train`` and ``adop eval`` (the typer app in ``adop/cli.py`` registers them) and
``python -m adop.train`` (used by the SIGKILL resume test and by scripts).

They only translate options into the library calls ``adop.train.train`` and ``adop.evaluate.evaluate`` and print a
short result; errors the user can fix are ``adop.errors.InputError``.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from pathlib import Path

from adop.errors import AdopError, InputError
from adop.train.config import TrainConfig
from adop.train.presets import PRESETS, preset
from adop.train.trainer import TrainResult, train

log = logging.getLogger(__name__)


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
        import dataclasses

        config = config.replace(loss=dataclasses.replace(config.loss, vgg_weights=Path(vgg_weights)))
    if checkpoint_every is not None:
        config = config.replace(checkpoint_every=int(checkpoint_every))
    return config


def train_command(
    scene_dir: Path,
    out: Path,
    preset: str = "cpu-fast",
    resume: bool = True,
    max_steps: int | None = None,
    config_file: Path | None = None,
    vgg_weights: Path | None = None,
    checkpoint_every: int | None = None,
) -> TrainResult:
    """``adop train SCENE_DIR --out RUN_DIR``: train (or resume) a scene model.

    Args:
        scene_dir: scene folder (``adop reconstruct`` output).
        out: run folder; rerunning with the same folder resumes from its newest checkpoint.
        preset: ``cpu-fast`` or ``gpu-quality`` (ignored when ``config_file`` is given).
        resume: continue an interrupted run in ``out``; False refuses a folder that already holds a run.
        max_steps: override the preset's step count.
        config_file: a ``config.json`` (e.g. from another run) instead of a preset.
        vgg_weights: local VGG-19 weights (torchvision numbering) to add the perceptual loss; never downloaded.
        checkpoint_every: override the checkpoint interval (steps).

    Returns:
        The ``TrainResult`` (also printed as one line).
    """
    config = resolve_config(preset, config_file=config_file, vgg_weights=vgg_weights,
                            checkpoint_every=checkpoint_every)
    result = train(Path(scene_dir), Path(out), config, resume=resume, max_steps=max_steps)
    psnr = "" if result.heldout_psnr is None else f", held-out PSNR {result.heldout_psnr:.2f} dB"
    print(f"trained {result.steps} steps ({result.epochs:.1f} epochs) in {result.elapsed_s / 60:.1f} min{psnr}; "
          f"model in {result.model_dir}")
    return result


def eval_command(
    run_dir: Path, json_output: bool = False, ground_truth: Path | None = None, baselines: bool = True,
    lpips_weights: Path | None = None,
) -> object:
    """``adop eval RUN_DIR [--json] [--ground-truth OUT/ground_truth] [--lpips-weights DIR]``: score the held-out views.

    Args:
        run_dir: a finished run folder.
        json_output: print the report as JSON (otherwise the Markdown summary).
        ground_truth: a synthetic set's ``ground_truth`` folder, for the camera-model and HDR metrics.
        baselines: include baseline (a) and the runs under ``RUN_DIR/baselines``.
        lpips_weights: folder holding ``vgg16.pth`` and ``vgg.pth`` for LPIPS (None: ``$ADOP_LPIPS_WEIGHTS``, if set).

    Returns:
        The ``EvalReport``.
    """
    from adop.evaluate import evaluate

    report = evaluate(Path(run_dir), ground_truth_dir=None if ground_truth is None else Path(ground_truth),
                      baselines=baselines, lpips_weights=lpips_weights)
    if json_output:
        print(Path(report.report_path).read_text(encoding="utf-8"))
    else:
        print(Path(report.summary_path).read_text(encoding="utf-8"))
    return report


def main(argv: list[str] | None = None) -> int:
    """``python -m adop.train SCENE_DIR --out RUN_DIR [...]``; returns the exit status."""
    parser = argparse.ArgumentParser(prog="python -m adop.train", description="Train an ADOP scene model.")
    parser.add_argument("scene_dir", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--preset", default="cpu-fast", choices=sorted(PRESETS))
    parser.add_argument("--config", type=Path, default=None, help="a config.json instead of a preset")
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--checkpoint-every", type=int, default=None)
    parser.add_argument("--vgg-weights", type=Path, default=None)
    parser.add_argument("--no-resume", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    try:
        train_command(args.scene_dir, args.out, args.preset, not args.no_resume, args.max_steps, args.config,
                      args.vgg_weights, args.checkpoint_every)
    except AdopError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
