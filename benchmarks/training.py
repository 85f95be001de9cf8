"""Training benchmark: seconds per step and per megapixel, and time-to-quality on a synthetic set.

Public API only (``adop.synth``, ``adop.reconstruct``, ``adop.train``, ``adop.evaluate``). Three modes:

``python benchmarks/training.py step-time SCENE_DIR [--preset cpu-fast] [--steps 30] [--warmup 5]``
    Times individual training steps through the progress callback (called after every step with ``log_every=1``)
    and prints the median and IQR seconds per step and per megapixel of crops (crops × crop area).

``python benchmarks/training.py small WORK_DIR [--preset cpu-fast] [--max-steps N] [--points sfm|sfm-x4|dense]``
    Generates the ``small`` synthetic set (if absent), reconstructs it with ``adop.reconstruct`` (if absent), trains
    the full model, baseline (b) and the oracle run, evaluates all with the ground truth, and prints the held-out PSNR
    against training time and the time to reach the final PSNR (first quick evaluation within 0.1 dB of the last).

``python benchmarks/training.py scene SCENE_DIR RUN_DIR [--preset cpu-fast] [--max-steps N]``
    The same for any scene folder (e.g. a reconstruction of ``tests/data/lund``): the full model and baseline (b),
    evaluated with baseline (a); no ground-truth metrics.

All modes write a JSON record (``--json PATH``) with the figures, torch version, thread count and the git commit.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def _meta() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                                cwd=Path(__file__).parent).stdout.strip()
    except OSError:
        commit = ""
    return {"commit": commit, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
            "load_avg": os.getloadavg()}


def step_time(scene_dir: Path, preset_name: str, steps: int, warmup: int) -> dict:
    """Median/IQR seconds per training step and per megapixel of crops for a preset."""
    from adop.train import preset, train

    config = preset(preset_name).replace(log_every=1, eval_every=0, checkpoint_every=10**9)
    stamps: list[float] = []

    def callback(step: int, total: int, metrics: dict) -> None:
        stamps.append(time.perf_counter())

    with tempfile.TemporaryDirectory() as tmp:
        train(scene_dir, Path(tmp) / "run", config, max_steps=warmup + steps, progress=callback, bar=False)
    times = np.diff(np.array(stamps))[warmup - 1:] if warmup > 0 else np.diff(np.array(stamps))
    s = config.sampler
    megapixels = s.batch_size * s.inner_batch_size * s.crop_width * s.crop_height / 1e6
    q1, med, q3 = (float(v) for v in np.percentile(times, [25, 50, 75]))
    return {"preset": preset_name, "scene": str(scene_dir), "steps_timed": int(len(times)),
            "crop_megapixels_per_step": megapixels, "median_s_per_step": med, "iqr_s_per_step": [q1, q3],
            "median_s_per_megapixel": med / megapixels, "image_scale": config.image_scale}


def _time_to_final(log_path: Path, tolerance: float = 0.1) -> dict:
    evals = [json.loads(ln) for ln in log_path.read_text().splitlines() if '"heldout_psnr"' in ln]
    if not evals:
        return {"curve": [], "time_to_final_s": None}
    final = evals[-1]["heldout_psnr"]
    reached = next(e for e in evals if e["heldout_psnr"] >= final - tolerance)
    return {"curve": [(e["step"], e["elapsed_s"], round(e["heldout_psnr"], 3)) for e in evals],
            "final_psnr": final, "time_to_final_s": reached["elapsed_s"], "step_to_final": reached["step"]}


def small(work: Path, preset_name: str, max_steps: int | None, points: str, comparisons: bool,
          run_name: str | None = None) -> dict:
    """The full small-set measurement (module docstring)."""
    from adop.evaluate import evaluate
    from adop.train import train_comparisons
    from adop.dense import DenseConfig
    from adop.reconstruct import CleanupConfig, build_scene, densify_scene, reconstruct
    from adop.synth import generate_capture_set
    from adop.train import preset, train

    capture = work / "small"
    if not (capture / "images").is_dir():
        generate_capture_set(capture, preset="small", seed=0)
    sfm_scene = work / "small_sfm"
    if not (sfm_scene / "scene.json").is_file():
        reconstruct(capture / "images", sfm_scene, dense_config=DenseConfig(method="off"))
    scene = sfm_scene
    if points == "dense":
        scene = work / "small_dense"
        if not (scene / "scene.json").is_file():
            densify_scene(sfm_scene / "sfm", capture / "images", scene)
    if points == "sfm-x4":
        scene = work / "small_sfm_x4"
        if not (scene / "scene.json").is_file():
            build_scene(sfm_scene / "sfm", capture / "images", scene, CleanupConfig(point_factor=4))
    config = preset(preset_name)
    run = work / (run_name or f"run_{preset_name}_{points}")
    started = time.perf_counter()
    result = train(scene, run, config, max_steps=max_steps, bar=False)
    record: dict = {"preset": preset_name, "points": points, "scene": str(scene), "steps": result.steps,
                    "train_elapsed_s": result.elapsed_s, **_time_to_final(run / "train_log.jsonl")}
    if comparisons:
        train_comparisons(scene, run, config, ground_truth_dir=capture / "ground_truth", max_steps=max_steps,
                          bar=False)
        for name in ("no_tonemapper", "oracle_points"):
            record[f"{name}_curve"] = _time_to_final(run / "baselines" / name / "train_log.jsonl")
    report = evaluate(run, ground_truth_dir=capture / "ground_truth")
    record["wall_s"] = time.perf_counter() - started
    record["report"] = report.report_path
    record["summary"] = Path(report.summary_path).read_text()
    return record


def scene(scene_dir: Path, run: Path, preset_name: str, max_steps: int | None, comparisons: bool) -> dict:
    """Train and evaluate one scene folder with baseline (b) (module docstring)."""
    from adop.evaluate import evaluate
    from adop.train import train_comparisons
    from adop.train import preset, train

    config = preset(preset_name)
    started = time.perf_counter()
    result = train(scene_dir, run, config, max_steps=max_steps, bar=False)
    record: dict = {"preset": preset_name, "scene": str(scene_dir), "steps": result.steps,
                    "train_elapsed_s": result.elapsed_s, **_time_to_final(run / "train_log.jsonl")}
    if comparisons:
        train_comparisons(scene_dir, run, config, max_steps=max_steps, bar=False)
        record["no_tonemapper_curve"] = _time_to_final(run / "baselines" / "no_tonemapper" / "train_log.jsonl")
    report = evaluate(run)
    record["wall_s"] = time.perf_counter() - started
    record["report"] = report.report_path
    record["summary"] = Path(report.summary_path).read_text()
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    st = sub.add_parser("step-time")
    st.add_argument("scene_dir", type=Path)
    st.add_argument("--preset", default="cpu-fast")
    st.add_argument("--steps", type=int, default=30)
    st.add_argument("--warmup", type=int, default=5)
    sm = sub.add_parser("small")
    sm.add_argument("work", type=Path)
    sm.add_argument("--preset", default="cpu-fast")
    sm.add_argument("--max-steps", type=int, default=None)
    sm.add_argument("--points", choices=["sfm", "sfm-x4", "dense"], default="dense")
    sm.add_argument("--no-comparisons", action="store_true")
    sm.add_argument("--run-name", default=None, help="run folder name under WORK (default run_PRESET_POINTS)")
    sc = sub.add_parser("scene")
    sc.add_argument("scene_dir", type=Path)
    sc.add_argument("run", type=Path)
    sc.add_argument("--preset", default="cpu-fast")
    sc.add_argument("--max-steps", type=int, default=None)
    sc.add_argument("--no-comparisons", action="store_true")
    for p in (st, sm, sc):
        p.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    if args.mode == "step-time":
        record = step_time(args.scene_dir, args.preset, args.steps, args.warmup)
    elif args.mode == "small":
        record = small(args.work, args.preset, args.max_steps, args.points, not args.no_comparisons, args.run_name)
    else:
        record = scene(args.scene_dir, args.run, args.preset, args.max_steps, not args.no_comparisons)
    record["meta"] = _meta()
    text = json.dumps(record, indent=1, default=str)
    print(text)
    if args.json is not None:
        args.json.write_text(text)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
