"""The simulated camera: exposure, white balance, vignetting and response behave as camera_model.json documents.

The strongest check re-renders a capture view's radiance and applies the documented formula with nothing but the
numbers in camera_model.json: the result must reproduce the JPEG up to noise and compression, and must not when the
unrecorded deviation or white balance is left out.
"""

from __future__ import annotations

import numpy as np
import pytest

from adop.synth import CameraSimulation, ImageExposure, ResponseCurve, Vignette, build_world, trace_radiance
from adop.images import read_image


def _formula(radiance: np.ndarray, model: dict, image: dict, gain_of) -> np.ndarray:
    """Documented image formation without noise: CRF(clip(vignette · wb ⊙ L · scale · 2^−EV)) via the 256-tables."""
    x = np.clip(radiance * gain_of(radiance.shape[1], radiance.shape[0], model, image), 0.0, 1.0)
    table = np.asarray(model["response"]["table"])
    xs = np.linspace(0.0, 1.0, table.shape[1])
    return np.stack([np.interp(x[..., c], xs, table[c]) for c in range(3)], axis=-1)


def _blocks(x: np.ndarray) -> np.ndarray:
    """4×4 block means: average out sensor noise and JPEG error before comparing."""
    h, w = x.shape[0] // 4 * 4, x.shape[1] // 4 * 4
    return x[:h, :w].reshape(h // 4, 4, w // 4, 4, 3).mean(axis=(1, 3))


def test_formula_reproduces_capture_images(micro_set) -> None:
    model, scene, preset = micro_set.model, micro_set.scene, micro_set.preset
    images = model["images"]
    world = build_world(model["generator"]["seed"], preset.marker_radius)
    by_deviation = int(np.argmax([abs(e["deviation"]) for e in images]))
    by_white_balance = int(np.argmax([abs(np.log(e["white_balance"])).sum() for e in images]))
    assert abs(images[by_deviation]["deviation"]) > 0.15
    assert abs(np.log(images[by_white_balance]["white_balance"])).sum() > 0.15
    for index in sorted({by_deviation, by_white_balance}):
        image, frame = images[index], scene.frames[index]
        radiance = trace_radiance(world, scene.cameras[0], frame.rotation, frame.translation, preset.supersampling)
        photo = _blocks(read_image(scene.image_path(frame, micro_set.manifest.scene_dir), "float"))

        def error(entry: dict) -> float:
            predicted = _blocks(_formula(radiance, model, entry, micro_set.exposure_gain))  # noqa: B023
            return float(np.abs(predicted - photo).mean())  # noqa: B023

        good = error(image)
        assert good < 0.005, good  # residual: noise bias through the non-linear response and clipping, JPEG
        if index == by_deviation:  # the unrecorded deviation is really in the pixels
            assert error({**image, "true_ev": image["recorded_ev"]}) > 3 * good
        if index == by_white_balance:  # and so is the white balance
            assert error({**image, "white_balance": [1.0, 1.0, 1.0]}) > 2 * good


def test_exposure_scales_linear_signal(micro_set) -> None:
    """The same radiance photographed one and two thirds of a stop apart differs by 2^ΔEV after inverting the CRF."""
    radiance = read_image(micro_set.gt / "heldout" / "heldout_00.exr", "float")
    sim = CameraSimulation(scale=micro_set.model["scale"])
    table = np.asarray(micro_set.model["response"]["table"])
    xs = np.linspace(0.0, 1.0, table.shape[1])
    shots = {}
    for ev in (12.0, 12.0 + 5 / 3):
        exposure = ImageExposure("x", 1.0, ev, ev, 0.0, (1.1, 1.0, 0.9))
        pixels = sim.photograph(radiance, exposure, rng=None).astype(np.float64) / 255.0
        shots[ev] = np.stack([np.interp(pixels[..., c], table[c], xs) for c in range(3)], axis=-1), pixels
    (bright, bright_px), (dark, dark_px) = shots[12.0], shots[12.0 + 5 / 3]
    usable = (bright_px > 0.2) & (bright_px < 0.95) & (dark_px > 0.1)
    assert usable.sum() > 1000
    assert np.median(bright[usable] / dark[usable]) == pytest.approx(2 ** (5 / 3), rel=0.01)


def test_response_and_vignette_match_json(micro_set) -> None:
    model = micro_set.model
    curve = ResponseCurve(tuple(model["response"]["gammas"]), model["response"]["contrast"])
    np.testing.assert_allclose(curve.table(256), model["response"]["table"], atol=1e-7)
    x = np.random.default_rng(0).random((1000, 3))
    np.testing.assert_allclose(curve.inverse(curve.apply(x)), x, atol=1e-9)
    assert curve.apply(np.array([0.18, 0.18, 0.18]))[1] > 0.4  # strongly non-linear (a gamma-like lift)
    vignette = Vignette(tuple(model["vignette"]["coefficients"]), tuple(model["vignette"]["center"]))
    w, h = micro_set.preset.width, micro_set.preset.height
    gain = micro_set.exposure_gain(w, h, model, {"white_balance": [1, 1, 1], "true_ev": 0.0}) / model["scale"]
    np.testing.assert_allclose(vignette.factor(w, h), gain[..., 0], rtol=1e-12)
    factor = vignette.factor(w, h)
    assert factor.max() == pytest.approx(1.0, abs=0.01) and 0.5 < factor[0, 0] < 0.8


def test_radiance_spans_several_stops(micro_set) -> None:
    radiance = read_image(micro_set.gt / "heldout" / "heldout_00.exr", "float")
    luminance = radiance @ np.array([0.2126, 0.7152, 0.0722])
    low, high = np.percentile(luminance, [1, 99.9])
    assert np.log2(high / low) >= 4.0
    assert micro_set.model["radiance_percentiles"]["stops_p1_to_p99.9"] >= 4.0


def test_exposures_and_white_balance_vary(micro_set) -> None:
    images = micro_set.model["images"]
    recorded = [e["recorded_ev"] for e in images]
    assert max(recorded) - min(recorded) >= 2.0  # ±1 stop around the middle
    assert np.ptp([e["white_balance"][0] for e in images]) > 0.05
    assert np.ptp([e["white_balance"][2] for e in images]) > 0.05
