"""Evaluation of trained runs (issue 5): held-out PSNR/SSIM with a left/right exposure protocol, baselines, and
camera-model and HDR error against a synthetic set's ground truth.

Public API::

    from adop.evaluate import evaluate, train_comparisons
    train_comparisons(scene_dir, run_dir, config, ground_truth_dir=gt)   # baseline (b) and the oracle run
    report = evaluate(run_dir, ground_truth_dir=gt)                       # RUN_DIR/eval/{report.json,summary.md,views}
"""

from adop.evaluate.compare import comparison_runs, train_comparisons
from adop.evaluate.protocol import ViewScore, half_masks, score_gain_view, score_view
from adop.evaluate.report import EvalReport, MethodResult, ViewResult, evaluate, summary_markdown
from adop.evaluate.synthetic import SyntheticMetrics, synthetic_metrics

__all__ = [
    "EvalReport",
    "MethodResult",
    "SyntheticMetrics",
    "ViewResult",
    "ViewScore",
    "comparison_runs",
    "evaluate",
    "half_masks",
    "score_gain_view",
    "score_view",
    "summary_markdown",
    "synthetic_metrics",
    "train_comparisons",
]
