"""Tests of adop.evaluate: the report of a micro run, the left/right protocol, baselines and synthetic metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from adop.cli import app
from adop.evaluate import evaluate, half_masks, score_gain_view, score_view
from adop.evaluate.baselines import fill_nearest
from adop.evaluate.protocol import _adam_fit, fit_correction
from adop.evaluate.synthetic import pearson, remove_linear_trend, response_error, umeyama
from adop.errors import InputError
from adop.nn.lpips import ENV_VAR
from adop.nn.tonemapper import Tonemapper, TonemapperConfig


def eval_json(run: Path, *extra: str) -> dict:
    """`adop eval RUN --json` as a user runs it; the printed report."""
    result = CliRunner().invoke(app, ["eval", str(run), "--json", *extra])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_report_of_a_micro_run(eval_run: Path, eval_set: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    report = evaluate(eval_run, ground_truth_dir=eval_set / "ground_truth")
    names = [m.name for m in report.methods]
    assert names == ["full", "splat_colors", "no_tonemapper", "oracle_points"]
    assert report.heldout == ["view_000.jpg", "view_005.jpg"]
    for method in report.methods:
        assert len(method.views) == 2 and not method.excluded
        assert all(math.isfinite(v.psnr) and -1 <= v.ssim <= 1 for v in method.views)
        assert method.mean_psnr == pytest.approx(np.mean([v.psnr for v in method.views]))
        assert method.mean_lpips is None and all(v.lpips is None for v in method.views)  # no LPIPS weights
    assert report.lpips_weights is None and "LPIPS" not in report.protocol
    full = report.method("full")
    assert full.steps == 16 and full.views[0].ev is not None and full.views[0].white_balance is not None
    assert report.method("splat_colors").views[0].ev is None
    synth = full.synthetic
    assert synth is not None and synth.hdr_views == 2
    assert -1 <= synth.ev_correlation <= 1 and -1 <= synth.wb_correlation <= 1
    assert -1 <= synth.ev_correlation_gauge_free <= 1 and -1 <= synth.wb_correlation_gauge_free <= 1
    assert 0 <= synth.vignette_mae < 0.5 and 0 <= synth.response_mae < 0.3
    assert synth.hdr_log2_error is not None and synth.hdr_log2_error >= 0
    b = report.method("no_tonemapper").synthetic
    assert b is not None and b.ev_correlation is None and b.response_mae is None  # nothing learned to compare
    data = json.loads(Path(report.report_path).read_text())
    assert data["methods"][0]["name"] == "full" and "protocol" in data
    pngs = sorted(p.name for p in (eval_run / "eval" / "views").glob("*.png"))
    assert len(pngs) == 8 and "full__view_005.png" in pngs
    assert "| full |" in Path(report.summary_path).read_text()


def test_eval_command_prints_json(eval_run: Path) -> None:
    data = eval_json(eval_run, "--no-baselines")
    assert [m["name"] for m in data["methods"]] == ["full"]


def test_report_scores_lpips_with_local_weights(eval_run: Path, lpips_folder: Path, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.delenv(ENV_VAR, raising=False)
    report = evaluate(eval_run, write_views=False, lpips_weights=lpips_folder)
    assert [m.name for m in report.methods] == ["full", "splat_colors", "no_tonemapper", "oracle_points"]
    for method in report.methods:
        values = [v.lpips for v in method.views]
        assert len(values) == 2 and all(v is not None and math.isfinite(v) and v > 0 for v in values)
        assert method.mean_lpips == pytest.approx(np.mean(values))  # type: ignore[arg-type]
    assert report.lpips_weights == str(lpips_folder) and "LPIPS" in report.protocol
    data = json.loads(Path(report.report_path).read_text())
    assert data["methods"][0]["mean_lpips"] == pytest.approx(report.method("full").mean_lpips)
    summary = Path(report.summary_path).read_text()
    assert f"| {report.method('full').mean_lpips:.3f} |" in summary and "/ LPIPS)" in summary
    monkeypatch.setenv(ENV_VAR, str(lpips_folder))  # the environment variable does the same for `adop eval`
    full = eval_json(eval_run, "--no-baselines")["methods"][0]
    assert full["mean_lpips"] == pytest.approx(report.method("full").mean_lpips)
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent"))
    with pytest.raises(InputError, match="LPIPS weights folder"):
        evaluate(eval_run, baselines=False, write_views=False)


def _tonemapper() -> Tonemapper:
    return Tonemapper(TonemapperConfig(), num_images=2).double().eval()


def test_protocol_fits_on_the_left_half_only() -> None:
    """A photo exposed 1 stop differently on its right half is scored badly: the fit never saw that half."""
    tm = _tonemapper()
    gen = torch.Generator().manual_seed(0)
    hdr = torch.rand(1, 3, 64, 96, generator=gen, dtype=torch.float64) * 0.8 + 0.05
    photo = tm.apply(hdr, ev=0.5, white_balance=(1.1, 0.9))
    good = score_view(tm, hdr, photo, border=4)
    assert good.correction is not None
    assert good.correction.ev == pytest.approx(0.5, abs=1e-3)
    assert good.correction.white_balance == pytest.approx((1.1, 0.9), abs=1e-3)
    assert good.psnr > 50
    split = photo.clone()
    split[..., 48:] = tm.apply(hdr, ev=-0.5, white_balance=(1.1, 0.9))[..., 48:]
    bad = score_view(tm, hdr, split, border=4)
    assert bad.correction is not None and bad.correction.ev == pytest.approx(0.5, abs=1e-3)
    assert bad.psnr < 25


def test_half_masks_and_gain_protocol() -> None:
    left, right = half_masks(48, 64, border=4)
    assert float((left * right).sum()) == 0
    assert float(left[..., :, 32:].sum()) == 0 and float(right[..., :, :32].sum()) == 0
    assert float(left[..., :4, :].sum()) == 0
    render = torch.rand(1, 3, 48, 64, generator=torch.Generator().manual_seed(1)) * 0.5
    photo = render * torch.tensor([1.2, 1.0, 0.8]).view(1, 3, 1, 1)
    score = score_gain_view(render, photo, border=4)
    assert score.psnr > 60


def test_fill_nearest() -> None:
    image = torch.zeros(1, 4, 5)
    image[0, 1, 1], image[0, 3, 3] = 1.0, 2.0
    mask = image[0] > 0
    filled = fill_nearest(image, mask)
    assert filled[0, 0, 0] == 1.0 and filled[0, 3, 4] == 2.0
    assert filled[0, 1, 1] == 1.0 and filled[0, 3, 3] == 2.0


def test_umeyama_and_response_error() -> None:
    rng = np.random.default_rng(0)
    src = rng.normal(size=(10, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    rot = q * np.sign(np.linalg.det(q))
    dst = 2.5 * src @ rot.T + np.array([1.0, -2.0, 0.5])
    s, r, t = umeyama(src, dst)
    assert s == pytest.approx(2.5) and np.allclose(r, rot) and np.allclose(t, [1.0, -2.0, 0.5])
    x = np.linspace(0, 1, 256)
    truth = np.stack([x ** (1 / 2.2)] * 3)
    grid = np.linspace(0, 1, 25)
    learned = np.stack([np.clip(grid / 0.8, 0, 1) ** (1 / 2.2)] * 3)  # the same curve on a scaled input
    mae, scales = response_error(learned, truth)
    assert mae < 0.01 and scales == pytest.approx([0.8] * 3, rel=0.02)
    assert pearson(np.arange(5.0), 2 * np.arange(5.0) + 1) == pytest.approx(1.0)


def test_gauge_free_correlation_ignores_only_the_exif_trend() -> None:
    rng = np.random.default_rng(3)
    exif = rng.uniform(11, 14, 40)
    deviation = rng.normal(0, 0.2, 40) + 0.1 * (exif - 12.5)  # a sample that happens to correlate with the EXIF EV
    learned = 0.8 * deviation - 0.3 * exif + 5.0  # perfect up to the exposure-gamma gauge and an offset
    assert pearson(learned, deviation) < 0.9
    assert pearson(remove_linear_trend(learned, exif), remove_linear_trend(deviation, exif)) == pytest.approx(1.0)
    noise = rng.normal(0, 0.2, 40)
    assert pearson(remove_linear_trend(noise, exif), remove_linear_trend(deviation, exif)) < 0.6
    two = remove_linear_trend(np.stack([learned, 2 * exif + 1], axis=1), exif)
    assert np.allclose(two[:, 1], 0.0, atol=1e-9) and np.allclose((two[:, 0] * (exif - exif.mean())).sum(), 0.0, atol=1e-8)


def test_fallback_fit_recovers_exposure_and_survives_bad_input() -> None:
    tm = _tonemapper()
    hdr = torch.rand(1, 3, 32, 48, generator=torch.Generator().manual_seed(2), dtype=torch.float64) * 0.8 + 0.05
    photo = tm.apply(hdr, ev=0.3, white_balance=(1.1, 0.9))
    mask = torch.ones(1, 1, 32, 48, dtype=torch.float64)
    corr = _adam_fit(tm, hdr, photo, mask, 0, 0.0, True, steps=300)
    assert corr.ev == pytest.approx(0.3, abs=0.02)
    assert corr.white_balance == pytest.approx((1.1, 0.9), abs=0.02)
    broken = hdr.clone()
    broken[..., :4, :4] = float("nan")
    robust = fit_correction(tm, broken, photo, mask)
    assert math.isfinite(robust.ev) and robust.ev == pytest.approx(0.3, abs=0.1)
