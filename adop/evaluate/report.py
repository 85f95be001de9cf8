"""``evaluate``: score a trained run and its baselines on the held-out views; write JSON, Markdown and PNGs.

Writes into ``RUN_DIR/eval/``: ``report.json`` (everything in ``EvalReport``), ``summary.md`` (the tables) and
``views/<method>__<view>.png`` (render | photo | error ×4, the fitted correction applied to the whole view; the left
half was used for fitting, the right half is scored). Methods:

* ``full``: the trained model (points, descriptors, U-Net, learned tonemapper).
* ``splat_colors``: baseline (a), point colours splatted with the same rasterizer, holes filled (``baselines``).
* any finished run under ``RUN_DIR/baselines/<name>/`` (``adop.train.comparisons`` trains ``no_tonemapper``,
  baseline (b), and on synthetic sets ``oracle_points``), scored on the same held-out views by name.

LPIPS (VGG, lpips v0.1, ``adop.nn.lpips``) needs pretrained weights that are never downloaded: give a folder
holding ``vgg16.pth`` (torchvision's VGG-16) and ``vgg.pth`` (lpips' heads) as ``evaluate(..., lpips_weights=DIR)``,
``adop eval --lpips-weights DIR`` or the environment variable ``ADOP_LPIPS_WEIGHTS``; it is then scored for every
method on the same right half as PSNR/SSIM. Without weights it is reported as null.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from adop.evaluate.baselines import splat_colors
from adop.evaluate.protocol import ViewScore, score_gain_view, score_view
from adop.evaluate.synthetic import SyntheticMetrics, synthetic_metrics
from adop.nn.lpips import LPIPS, load_lpips_dir, lpips_weights_dir
from adop.storage import write_text_atomic
from adop.images import read_photo, write_png
from adop.scene.photos import load_scene_data
from adop.model.trained import TrainedModel, load_trained_model

log = logging.getLogger(__name__)

PROTOCOL = ("per held-out view: exposure + white balance fitted on the left half (EV grid, then LBFGS on MSE), "
            "PSNR/SSIM on the right half, 16 px border excluded; baseline (a) fits a per-channel gain on the left half")
PROTOCOL_LPIPS = "; LPIPS (VGG, lpips v0.1) of the same right-half crop"
DESCRIPTIONS = {
    "full": "ADOP: points + learned descriptors + U-Net + learned tonemapper",
    "splat_colors": "baseline (a): point colours splatted with the same rasterizer, holes filled by nearest pixel",
    "no_tonemapper": "baseline (b): the full model trained without its tonemapper (fixed gamma 2.2)",
    "oracle_points": "the full model trained on the generator's dense ground-truth surface points",
}


@dataclass(frozen=True)
class ViewResult:
    """One held-out view of one method."""

    name: str
    psnr: float
    ssim: float
    lpips: float | None = None
    ev: float | None = None
    """Fitted EV100 (tonemapper methods)."""
    white_balance: tuple[float, float] | None = None
    """Fitted (R, B) gains (tonemapper methods)."""


@dataclass(frozen=True)
class MethodResult:
    """Scores of one method over the held-out views."""

    name: str
    description: str
    run_dir: str | None
    views: list[ViewResult]
    mean_psnr: float
    mean_ssim: float
    mean_lpips: float | None = None
    steps: int | None = None
    synthetic: SyntheticMetrics | None = None
    excluded: list[str] = field(default_factory=list)
    """Held-out views of the main run this method trained on (not scored)."""


@dataclass(frozen=True)
class EvalReport:
    """The evaluation of one run (``RUN_DIR/eval/report.json``)."""

    run_dir: str
    step: int
    protocol: str
    heldout: list[str]
    methods: list[MethodResult]
    report_path: str
    summary_path: str
    lpips_weights: str | None = None
    """The LPIPS weights folder used (None: LPIPS not scored)."""

    def method(self, name: str) -> MethodResult:
        """The result of one method (KeyError if absent)."""
        for m in self.methods:
            if m.name == name:
                return m
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return asdict(self)


def _to_png(path: Path, render: Tensor, photo: Tensor) -> None:
    """Write render | photo | error×4 (mean over channels) as an 8-bit PNG."""
    error = ((render - photo).abs().mean(dim=1, keepdim=True) * 4.0).clamp(0, 1).expand_as(render)
    panel = torch.cat([render, photo, error], dim=-1)[0].clamp(0, 1)
    write_png(path, (panel.permute(1, 2, 0).numpy() * 255.0 + 0.5).astype(np.uint8))


def _method(name: str, run_dir: Path | None, scores: list[tuple[str, ViewScore]], steps: int | None,
            synthetic: SyntheticMetrics | None, excluded: list[str]) -> MethodResult:
    views = [
        ViewResult(n, s.psnr, s.ssim, s.lpips, None if s.correction is None else s.correction.ev,
                   None if s.correction is None else s.correction.white_balance)
        for n, s in scores
    ]
    nan = float("nan")
    lpips = [v.lpips for v in views if v.lpips is not None]
    return MethodResult(
        name=name, description=DESCRIPTIONS.get(name, name), run_dir=None if run_dir is None else str(run_dir),
        views=views, mean_psnr=float(np.mean([v.psnr for v in views])) if views else nan,
        mean_ssim=float(np.mean([v.ssim for v in views])) if views else nan,
        mean_lpips=float(np.mean(lpips)) if views and len(lpips) == len(views) else None, steps=steps,
        synthetic=synthetic, excluded=excluded,
    )


def _score_model(model: TrainedModel, names: list[str], photos: dict[str, Tensor], border: int,
                 lpips: LPIPS | None) -> tuple[list[tuple[str, ViewScore]], list[str]]:
    index = {f["name"]: i for i, f in enumerate(model.frames)}
    scores, excluded = [], []
    tm = model.scene_model.tonemapper
    for name in names:
        i = index.get(name)
        if i is None or not model.frames[i]["heldout"]:
            excluded.append(name)
            continue
        hdr = model.scene_model.render_frame_hdr(i)
        photo = photos[name]
        if photo.shape != hdr.shape:
            excluded.append(name)
            continue
        scores.append((name, score_view(
            tm, hdr, photo, camera_index=int(model.frames[i]["camera"]), ev_init=float(model.frames[i]["exif_ev"]),
            border=border, fit_white_balance=tm.config.enable_white_balance, lpips=lpips,
        )))
    return scores, excluded


def evaluate(
    run_dir: Path,
    *,
    ground_truth_dir: Path | None = None,
    baselines: bool = True,
    write_views: bool = True,
    border: int = 16,
    lpips_weights: Path | str | None = None,
) -> EvalReport:
    """Evaluate a finished training run on its held-out views (module docstring), with baselines.

    Args:
        run_dir: a run folder with ``model/`` (``adop.train.train``).
        ground_truth_dir: ``OUT/ground_truth`` of a synthetic set: adds ``SyntheticMetrics`` per trained method.
        baselines: include baseline (a) and the runs under ``RUN_DIR/baselines/``.
        write_views: write the side-by-side PNGs.
        border: pixels excluded at the image edges.
        lpips_weights: folder holding ``vgg16.pth`` and ``vgg.pth`` (module docstring); None: ``$ADOP_LPIPS_WEIGHTS``
            if set, else LPIPS is not scored (null in the report).

    Returns:
        The report (also written to ``RUN_DIR/eval/report.json`` and ``summary.md``).

    Raises:
        InputError: no trained model in ``run_dir``, or its scene folder is gone, or the LPIPS weights folder (given
            or from the environment) is missing or holds unusable files.
    """
    run_dir = Path(run_dir)
    lpips_dir = lpips_weights_dir(lpips_weights)
    lpips = None if lpips_dir is None else load_lpips_dir(lpips_dir)
    model = load_trained_model(run_dir)
    torch.set_num_threads(model.config.threads)
    held = [i for i, f in enumerate(model.frames) if f["heldout"]]
    data = load_scene_data(model.scene_dir, image_scale=model.config.image_scale, holdout_every=0,
                           photo_indices=np.array(held, dtype=int))
    names = [model.frames[i]["name"] for i in held]
    photos = {model.frames[i]["name"]: data.target(i) for i in held}
    out_dir = run_dir / "eval"
    views_dir = out_dir / "views"
    results: dict[str, tuple[list[tuple[str, ViewScore]], MethodResult]] = {}

    scores, excluded = _score_model(model, names, photos, border, lpips)
    synth = synthetic_metrics(model, ground_truth_dir) if ground_truth_dir is not None else None
    results["full"] = (scores, _method("full", run_dir, scores, model.step, synth, excluded))
    if baselines:
        results["splat_colors"] = _splat_baseline(model, data, held, photos, border, lpips)
        for sub in sorted((run_dir / "baselines").glob("*/model/model.pt")):
            other_dir = sub.parent.parent
            other = load_trained_model(other_dir)
            other_photos = _photos_for(other, names, photos)
            o_scores, o_excluded = _score_model(other, names, other_photos, border, lpips)
            o_synth = synthetic_metrics(other, ground_truth_dir) if ground_truth_dir is not None else None
            results[other_dir.name] = (o_scores, _method(other_dir.name, other_dir, o_scores, other.step, o_synth,
                                                         o_excluded))
    if write_views:
        for method, (m_scores, _) in results.items():
            for name, score in m_scores:
                _to_png(views_dir / f"{method}__{Path(name).stem}.png", score.ldr, photos[name])
    report = EvalReport(
        run_dir=str(run_dir), step=model.step, protocol=PROTOCOL + ("" if lpips is None else PROTOCOL_LPIPS),
        heldout=names, methods=[m for _, m in results.values()], report_path=str(out_dir / "report.json"),
        summary_path=str(out_dir / "summary.md"), lpips_weights=None if lpips_dir is None else str(lpips_dir),
    )
    write_text_atomic(out_dir / "report.json", json.dumps(_finite(report.to_dict()), indent=1, allow_nan=False,
                                                          default=_json_default))
    write_text_atomic(out_dir / "summary.md", summary_markdown(report))
    return report


def heldout_metrics(run_dir: Path) -> dict[str, float]:
    """Mean held-out metrics of the full model from ``RUN_DIR/eval/report.json``; empty when it was not evaluated.

    Keys: ``heldout_psnr``, ``heldout_ssim``, ``heldout_lpips`` (when scored) and ``heldout_views``; the delivery
    manifest carries them so that a fly-through says how well its model did on photos it never saw.
    """
    report = Path(run_dir) / "eval" / "report.json"
    if not report.is_file():
        return {}
    data = json.loads(report.read_text(encoding="utf-8"))
    full = next((m for m in data.get("methods", []) if m.get("name") == "full"), None)
    if full is None:
        return {}
    metrics = {"heldout_psnr": full.get("mean_psnr"), "heldout_ssim": full.get("mean_ssim"),
               "heldout_lpips": full.get("mean_lpips"), "heldout_views": len(full.get("views", []))}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def _photos_for(other: TrainedModel, names: list[str], photos: dict[str, Tensor]) -> dict[str, Tensor]:
    """Photos of ``names`` for another run: the same images unless its scene scales them differently."""
    index = {f["name"]: i for i, f in enumerate(other.frames)}
    out = {}
    for name in names:
        if name not in index:
            continue
        cam = other.cameras[int(other.frames[index[name]]["camera"])]
        photo = photos[name]
        if tuple(photo.shape[-2:]) != (cam.height, cam.width):
            scene = load_scene_data(other.scene_dir, image_scale=other.config.image_scale, photos=False).scene
            frame = scene.frames[index[name]]
            photo = read_photo(scene.image_path(frame, other.scene_dir), other.config.image_scale)[None].float() / 255
        out[name] = photo
    return out


def _splat_baseline(model: TrainedModel, data: Any, held: list[int], photos: dict[str, Tensor], border: int,
                    lpips: LPIPS | None) -> tuple[list[tuple[str, ViewScore]], MethodResult]:
    points = data.scene.points
    if points.colors is None:
        return [], _method("splat_colors", None, [], None, None, [model.frames[i]["name"] for i in held])
    pos = torch.from_numpy(np.ascontiguousarray(points.positions)).float()
    col = torch.from_numpy(np.ascontiguousarray(points.colors))
    nrm = None if points.normals is None else torch.from_numpy(np.ascontiguousarray(points.normals)).float()
    scores = []
    for i in held:
        w, h = (int(v) for v in data.full_size[i])
        render, _ = splat_colors(pos, col, nrm, data.rotations[i], data.translations[i], data.intrinsics[i],
                                 data.distortion[i], (w, h))
        name = model.frames[i]["name"]
        scores.append((name, score_gain_view(render, photos[name], border=border, lpips=lpips)))
    return scores, _method("splat_colors", None, scores, None, None, [])


def _finite(value: Any) -> Any:
    """Replace NaN/inf (e.g. a method with no scored view) by None, so the file is strict JSON."""
    if isinstance(value, float):
        return value if np.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serializable: {type(value).__name__}")


def _fmt(value: float | None, digits: int = 3) -> str:
    return "–" if value is None or not np.isfinite(value) else f"{value:.{digits}f}"


def summary_markdown(report: EvalReport) -> str:
    """The report's tables as Markdown."""
    lines = [f"# Evaluation of {report.run_dir} (step {report.step})", "", f"Protocol: {report.protocol}.", "",
             f"Held-out views ({len(report.heldout)}): {', '.join(report.heldout)}", "",
             "| method | views | PSNR (dB) | SSIM | LPIPS | description |", "|---|---|---|---|---|---|"]
    for m in report.methods:
        lines.append(f"| {m.name} | {len(m.views)} | {_fmt(m.mean_psnr, 2)} | {_fmt(m.mean_ssim)} | "
                     f"{_fmt(m.mean_lpips)} | {m.description} |")
    synth = [m for m in report.methods if m.synthetic is not None]
    if synth:
        lines += ["", "## Against the synthetic ground truth", "",
                  "| method | EV r | EV r (gauge-free) | EV rmse | WB r | WB r (gauge-free) | vignette MAE | response MAE "
                  "| HDR log2 err (stops) |",
                  "|---|---|---|---|---|---|---|---|---|"]
        for m in synth:
            s = m.synthetic
            assert s is not None
            lines.append(f"| {m.name} | {_fmt(s.ev_correlation)} | {_fmt(s.ev_correlation_gauge_free)} | "
                         f"{_fmt(s.ev_rmse)} | {_fmt(s.wb_correlation)} | {_fmt(s.wb_correlation_gauge_free)} | "
                         f"{_fmt(s.vignette_mae, 4)} | {_fmt(s.response_mae, 4)} | {_fmt(s.hdr_log2_error)} |")
    clouds = [m for m in synth if m.synthetic is not None and m.synthetic.cloud_scores]
    if clouds:
        lines += ["", "Points against the true surface (accuracy / completeness / F-score; τ as a fraction of the "
                  "scene extent):", ""]
        for m in clouds:
            assert m.synthetic is not None and m.synthetic.cloud_scores is not None
            parts = [f"τ {c['tolerance_relative']:.1%}: {c['accuracy']:.3f} / {c['completeness']:.3f} / "
                     f"{c['fscore']:.3f}" for c in m.synthetic.cloud_scores]
            lines.append(f"- **{m.name}** ({m.synthetic.cloud_scores[0]['points']:,} points): " + "; ".join(parts))
    with_lpips = any(v.lpips is not None for m in report.methods for v in m.views)
    lines += ["", "## Per view (PSNR dB / SSIM" + (" / LPIPS)" if with_lpips else ")"), ""]
    for m in report.methods:
        per_view = (f"{v.name} {v.psnr:.2f}/{v.ssim:.3f}" + (f"/{_fmt(v.lpips)}" if with_lpips else "")
                    for v in m.views)
        lines.append(f"- **{m.name}**: " + ", ".join(per_view))
    return "\n".join(lines) + "\n"
