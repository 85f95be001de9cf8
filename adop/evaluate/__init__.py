"""Evaluation of trained runs: held-out PSNR/SSIM/LPIPS with a left/right exposure protocol, baselines, and
camera-model and HDR error against a synthetic set's ground truth.

Public API::

    from adop.evaluate import evaluate
    report = evaluate(run_dir, ground_truth_dir=gt)   # RUN_DIR/eval/{report.json,summary.md,views}

The comparison runs it reports beside the full model (baseline (b), the oracle) are trained by
``adop.train.train_comparisons``.
"""

from adop.evaluate.protocol import ViewScore, half_masks, score_gain_view, score_view
from adop.evaluate.report import EvalReport, MethodResult, ViewResult, evaluate, heldout_metrics, summary_markdown
from adop.evaluate.synthetic import SyntheticMetrics, synthetic_metrics

__all__ = [
    "EvalReport",
    "MethodResult",
    "SyntheticMetrics",
    "ViewResult",
    "ViewScore",
    "evaluate",
    "half_masks",
    "heldout_metrics",
    "score_gain_view",
    "score_view",
    "summary_markdown",
    "synthetic_metrics",
]
