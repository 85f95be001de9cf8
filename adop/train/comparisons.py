"""Training the comparison runs that ``evaluate`` puts in the same report as the full model.

* ``no_tonemapper`` (baseline (b)): the same config with ``camera_model="fixed_gamma"``: no exposure, white balance
  or vignette and a frozen gamma-2.2 response, so every photo's exposure has to be explained by the scene itself.
* ``oracle_points`` (synthetic sets only): the same config on the generator's dense ground-truth surface points and
  true poses (``OUT/ground_truth/scene``), separating renderer quality from point-cloud sparsity.

Both are ordinary, resumable training runs in ``RUN_DIR/baselines/<name>/``; ``evaluate(RUN_DIR)`` finds them.
"""

from __future__ import annotations

from pathlib import Path

from adop.model.config import TrainConfig
from adop.train.trainer import TrainResult, train
from adop.train.progress import ProgressCallback


def comparison_runs(run_dir: Path, ground_truth_dir: Path | None = None) -> dict[str, Path]:
    """The run folders of the comparison runs of ``run_dir`` (whether or not they exist yet)."""
    runs = {"no_tonemapper": Path(run_dir) / "baselines" / "no_tonemapper"}
    if ground_truth_dir is not None:
        runs["oracle_points"] = Path(run_dir) / "baselines" / "oracle_points"
    return runs


def train_comparisons(
    scene_dir: Path,
    run_dir: Path,
    config: TrainConfig,
    *,
    ground_truth_dir: Path | None = None,
    progress: ProgressCallback | None = None,
    max_steps: int | None = None,
    bar: bool | None = None,
) -> dict[str, TrainResult]:
    """Train (or resume, or reuse) the comparison runs of ``run_dir``.

    Args:
        scene_dir: the scene the main run was trained on.
        run_dir: the main run folder.
        config: the main run's config.
        ground_truth_dir: ``OUT/ground_truth`` of a synthetic set; adds the oracle run.
        progress: forwarded to ``train``.
        max_steps: forwarded to ``train``.
        bar: forwarded to ``train``.

    Returns:
        ``TrainResult`` per comparison name.
    """
    runs = comparison_runs(run_dir, ground_truth_dir)
    results = {
        "no_tonemapper": train(scene_dir, runs["no_tonemapper"], config.replace(camera_model="fixed_gamma"),
                               progress=progress, max_steps=max_steps, bar=bar),
    }
    if ground_truth_dir is not None:
        results["oracle_points"] = train(Path(ground_truth_dir) / "scene", runs["oracle_points"], config,
                                         progress=progress, max_steps=max_steps, bar=bar)
    return results
