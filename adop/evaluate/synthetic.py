"""Metrics that need the synthetic generator's ground truth (``OUT/ground_truth`` of ``adop.synth``).

What can be identified, and how it is compared:

* **Exposure**: the learned per-image EV minus the EXIF EV against the generator's unrecorded deviation, as a Pearson
  correlation over the training frames (a global offset is not identifiable and does not affect r), plus the RMS error
  after removing the mean offset.
* **White balance**: learned log R and B gains against the true ones (green = 1), Pearson r over training frames
  (pooled R and B, and per channel); the zero-mean anchor removes the unidentifiable global colour.
* **Gauge-free variants**: the photos cannot tell exposure from gamma (``L^a`` through ``CRF(x^(1/a))`` at EV ``a·EV``
  renders the same images), so training pins the slope of the learned EV against the EXIF EV to 1
  (``TrainConfig.exposure_slope_anchor``), which also removes whatever part of the true deviation happens to correlate
  with the EXIF EV in this sample. The ``*_gauge_free`` correlations remove the linear trend in the EXIF EV from both
  sides first, so they score only what the photos can identify (per channel for white balance).
* **Vignetting**: the learned factor map against the true one over the full image (both are 1 at the centre).
* **Response**: learned and true curves on [0, 1] after the best per-channel input scale (the global scale and colour
  of the linear signal are not identifiable), mean absolute error over 256 samples.
* **Point cloud**: the model's points against the generator's dense surface sample, ETH3D-style accuracy,
  completeness (of the surface the cameras see) and F-score at τ = 0.5 % and 1 % of the scene extent
  (``adop.dense.quality``).
* **HDR**: the model's raw linear HDR at the held-out poses against the ground-truth EXR radiance, in log2 (stops),
  after one global scale (the median log ratio); pixels with almost no radiance are excluded.

Runs trained on an SfM scene live in SfM's frame (a similarity away from the generator's world); the held-out poses
are mapped into it with the similarity that best aligns the matching camera centres (Umeyama).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from adop.dense.quality import scene_extent, surface_scores, visible_samples
from adop.images import read_image
from adop.scene import load_scene
from adop.model.trained import TrainedModel
from adop.scene.align import similarity_transform as umeyama


@dataclass(frozen=True)
class SyntheticMetrics:
    """Learned camera model and HDR against the generator's truth (None where the run does not model it)."""

    ev_correlation: float | None
    """Pearson r of (learned EV − EXIF EV) with the true unrecorded deviation, training frames."""
    ev_rmse: float | None
    """RMS of that difference after removing its mean offset (stops)."""
    ev_correlation_gauge_free: float | None
    """The same r after removing from both sides their linear trend in the EXIF EV (the exposure–gamma gauge)."""
    wb_correlation: float | None
    """Pearson r of learned vs true log R/B gains, pooled."""
    wb_correlation_red: float | None
    """Pearson r of the red gains."""
    wb_correlation_blue: float | None
    """Pearson r of the blue gains."""
    wb_correlation_gauge_free: float | None
    """Pooled r after removing from learned and true log gains their linear trend in the EXIF EV (per-channel gamma
    gauge)."""
    vignette_mae: float | None
    """Mean |learned − true| vignetting factor over the image."""
    vignette_max_error: float | None
    """Largest |learned − true| vignetting factor."""
    response_mae: float | None
    """Mean absolute error of the response curves on [0, 1] after the best per-channel input scale."""
    response_scales: list[float] | None
    """The fitted per-channel input scales."""
    hdr_log2_error: float | None
    """Mean |log2(render / truth)| in stops after one global scale, over the held-out EXRs."""
    hdr_views: int
    """Held-out EXRs compared."""
    cloud_scores: list[dict] | None = None
    """The model's points against the true surface: one ``SurfaceScores`` dict per tolerance (0.5 %, 1 %)."""

    def to_dict(self) -> dict:
        """JSON-compatible dict."""
        return asdict(self)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation (NaN when either side is constant)."""
    a, b = np.asarray(a, float) - np.mean(a), np.asarray(b, float) - np.mean(b)
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return float((a * b).sum() / den) if den > 0 else float("nan")


def remove_linear_trend(values: np.ndarray, regressor: np.ndarray) -> np.ndarray:
    """``values`` ``[N, ...]`` minus their least-squares fit ``a + b·regressor`` (per trailing column)."""
    design = np.stack([np.ones_like(regressor, dtype=float), np.asarray(regressor, float)], axis=1)
    coeffs, *_ = np.linalg.lstsq(design, np.asarray(values, float), rcond=None)
    return np.asarray(values, float) - design @ coeffs


def response_error(learned: np.ndarray, true_table: np.ndarray) -> tuple[float, list[float]]:
    """MAE of learned curves ``[3, S]`` vs true tables ``[3, 256]`` after the best per-channel input scale."""
    x = np.linspace(0.0, 1.0, true_table.shape[1])
    grid = np.linspace(0.0, 1.0, learned.shape[1])
    errors, scales = [], []
    for c in range(3):
        cand = 2.0 ** np.linspace(-4, 4, 1601)
        errs = [np.abs(np.interp(np.clip(k * x, 0, 1), grid, learned[c]) - true_table[c]).mean() for k in cand]
        best = int(np.argmin(errs))
        errors.append(float(errs[best]))
        scales.append(float(cand[best]))
    return float(np.mean(errors)), scales


def vignette_error(model: TrainedModel, coefficients: list[float], center: list[float]) -> tuple[float, float]:
    """Mean and max |learned − true| vignetting factor over a 160-pixel-wide image of the camera's aspect."""
    cam = model.cameras[0]
    w = 160
    h = max(2, round(w * cam.height / cam.width))
    learned = model.scene_model.tonemapper.vignette_factor(
        torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[float(w), float(h)]]), h, w
    )[0, 0].detach().numpy()
    u = 2.0 * (np.arange(w) + 0.5) / w - 1.0
    v = 2.0 * (np.arange(h) + 0.5) / h - 1.0
    r2 = ((u[None, :] - center[0]) * (w / h)) ** 2 + (v[:, None] - center[1]) ** 2
    a1, a2, a3 = coefficients
    truth = 1.0 + r2 * (a1 + r2 * (a2 + r2 * a3))
    diff = np.abs(learned - truth)
    return float(diff.mean()), float(diff.max())


def _hdr_error(model: TrainedModel, heldout_dir: Path, gt_scene_dir: Path) -> tuple[float | None, int]:

    heldout = load_scene(heldout_dir)
    gt = load_scene(gt_scene_dir)
    gt_centres = {f.name: f.center for f in gt.frames}
    names = [f["name"] for f in model.frames if f["name"] in gt_centres]
    if len(names) < 3 or not heldout.frames:
        return None, 0
    index = {f["name"]: i for i, f in enumerate(model.frames)}
    run_centres = np.array([-model.frame_pose(index[n])[0].T @ model.frame_pose(index[n])[1] for n in names])
    s, rot_a, t_a = umeyama(np.array([gt_centres[n] for n in names]), run_centres)
    scale = model.config.image_scale
    residuals = []
    for frame in heldout.frames:
        cam = heldout.cameras[frame.camera_index]
        cam = cam.scaled(scale) if scale != 1.0 else cam
        rot = frame.rotation @ rot_a.T
        trans = s * frame.translation - rot @ t_a
        render = model.render(rot, trans, cam.intrinsics, (cam.width, cam.height), cam.distortion, hdr=True)
        truth = torch.from_numpy(read_image(heldout_dir / frame.name, "float")[:, :, :3]).permute(2, 0, 1)[None]
        truth = F.interpolate(truth, size=render.shape[-2:], mode="area")[0] if truth.shape[-2:] != render.shape[-2:] \
            else truth[0]
        r, g = render.numpy().astype(np.float64), truth.numpy().astype(np.float64)
        ok = (g > 1e-3 * max(np.median(g), 1e-12)) & (r > 0)
        residuals.append((np.log2(r[ok]) - np.log2(g[ok])))
    pooled = np.concatenate(residuals)
    if pooled.size == 0:
        return None, len(residuals)
    return float(np.abs(pooled - np.median(pooled)).mean()), len(residuals)


def synthetic_metrics(model: TrainedModel, ground_truth_dir: Path) -> SyntheticMetrics:
    """Compare a trained model's camera model and HDR with ``ground_truth_dir`` (``OUT/ground_truth``)."""
    ground_truth_dir = Path(ground_truth_dir)
    truth = json.loads((ground_truth_dir / "camera_model.json").read_text(encoding="utf-8"))
    by_name = {img["name"]: img for img in truth["images"]}
    tm = model.scene_model.tonemapper
    train = [i for i, f in enumerate(model.frames) if not f["heldout"] and f["name"] in by_name]
    names = [model.frames[i]["name"] for i in train]
    ev = ev_rmse = ev_free = wb = wb_r = wb_b = wb_free = None
    exif = np.array([model.frames[i]["exif_ev"] for i in train])
    with torch.no_grad():
        if tm.config.enable_exposure and tm.config.learn_exposure and len(train) > 2:
            learned = (tm.effective_exposure() + tm.scene_ev).numpy()[train] - exif
            dev = np.array([by_name[n]["deviation"] for n in names])
            ev = pearson(learned, dev)
            ev_rmse = float(np.sqrt(np.mean(((learned - learned.mean()) - (dev - dev.mean())) ** 2)))
            ev_free = pearson(remove_linear_trend(learned, exif), remove_linear_trend(dev, exif))
        if tm.config.enable_white_balance and len(train) > 2:
            lw = tm.effective_log_white_balance().numpy()[train]
            tw = np.log(np.array([[by_name[n]["white_balance"][0], by_name[n]["white_balance"][2]] for n in names]))
            wb_r, wb_b = pearson(lw[:, 0], tw[:, 0]), pearson(lw[:, 1], tw[:, 1])
            wb = pearson((lw - lw.mean(0)).ravel(), (tw - tw.mean(0)).ravel())
            wb_free = pearson(remove_linear_trend(lw, exif).ravel(), remove_linear_trend(tw, exif).ravel())
    vig_mae = vig_max = None
    if tm.config.enable_vignette:
        vig_mae, vig_max = vignette_error(model, truth["vignette"]["coefficients"], truth["vignette"]["center"])
    resp = scales = None
    learned_response = model.config.camera_model == "learned" and tm.config.enable_response
    if learned_response:
        resp, scales = response_error(tm.response[0].detach().numpy(), np.array(truth["response"]["table"]))
    hdr, views = None, 0
    if (ground_truth_dir / "heldout" / "scene.json").is_file():
        hdr, views = _hdr_error(model, ground_truth_dir / "heldout", ground_truth_dir / "scene")
    cloud = _cloud_scores(model, ground_truth_dir / "scene") if (ground_truth_dir / "scene").is_dir() else None
    return SyntheticMetrics(ev, ev_rmse, ev_free, wb, wb_r, wb_b, wb_free, vig_mae, vig_max, resp, scales, hdr, views,
                            cloud)


def _cloud_scores(model: TrainedModel, gt_scene_dir: Path) -> list[dict] | None:
    """The model's points, mapped into the truth's frame by the camera centres, scored against the true surface."""
    truth = load_scene(gt_scene_dir)
    if len(truth.points) == 0:
        return None
    gt_centres = {f.name: f.center for f in truth.frames}
    names = [f["name"] for f in model.frames if f["name"] in gt_centres]
    if len(names) < 3:
        return None
    index = {f["name"]: i for i, f in enumerate(model.frames)}
    run_centres = np.array([-model.frame_pose(index[n])[0].T @ model.frame_pose(index[n])[1] for n in names])
    s, rot, t = umeyama(run_centres, np.array([gt_centres[n] for n in names]))
    points = s * model.point_positions() @ rot.T + t
    samples = truth.points.positions
    return [score.to_dict() for score in surface_scores(points, samples, visible_samples(samples, truth),
                                                        scene_extent(samples))]
