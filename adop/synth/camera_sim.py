"""A simulated physical camera on top of linear radiance: exposure, white balance, vignetting, response, noise.

The model is ADOP's tone mapper run forwards (``NeuralCamera.cpp``; docs/method.md §6), one camera for the whole set::

    x     = vignette(uv) · wb ⊙ L · scale · 2^(−EV_true)           (EV100 semantics, docs/conventions.md)
    pixel = CRF(clip(x + n, 0, 1)),    n ~ N(0, noise_sigma²) per pixel and channel
    8-bit = round(255 · pixel), then JPEG

``EV_true = EV_recorded + deviation``: the EXIF records only ``EV_recorded`` (shutter time at fixed f/8, ISO 100);
the deviation (a few tenths of a stop) and the white-balance gains are what a learned per-image correction must find.
The vignetting factor is ``1 + a1 r² + a2 r⁴ + a3 r⁶`` with ``uv ∈ [−1, 1]`` over the full image at pixel centres,
``r² = ((u − c_u)·W/H)² + (v − c_v)²``. The response is ``CRF_c(x) = S(x^(1/γ_c))`` with the contrast S-curve
``S(y) = y^s / (y^s + (1 − y)^s)``: monotone, ``CRF(0) = 0``, ``CRF(1) = 1``, exactly invertible.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np

F_NUMBER = 8.0
"""Fixed aperture of the simulated camera (recorded in EXIF)."""
ISO = 100
"""Fixed sensitivity (recorded in EXIF as Exif:ISOSpeedRatings)."""
SHUTTER_DENOMINATORS = (50, 60, 80, 100, 125, 160, 200, 250, 320)
"""Shutter times 1/n in third stops around 1/125 s: recorded EVs span ±1.33 stops around the reference."""
REFERENCE_SHUTTER = 125
"""The shutter time (1/n s) at which ``scale`` maps radiance 1 to ``WHITE_LEVEL`` of the sensor's range."""
WHITE_LEVEL = 0.7
"""Sensor signal (before clipping) of radiance 1 at the reference shutter."""


def ev100(exposure_time: float, f_number: float = F_NUMBER, iso: float = ISO) -> float:
    """``log2(N²/t) − log2(ISO/100)`` (adop.exif's definition)."""
    return math.log2(f_number**2 / exposure_time) - math.log2(iso / 100.0)


@dataclass(frozen=True)
class ResponseCurve:
    """Per-channel camera response ``CRF_c(x) = S(x^(1/γ_c))``, ``S(y) = y^s / (y^s + (1−y)^s)``."""

    gammas: tuple[float, float, float] = (2.1, 2.2, 2.35)
    contrast: float = 1.25

    def apply(self, x: np.ndarray) -> np.ndarray:
        """Map linear ``x [..., 3]`` in [0, 1] to display values in [0, 1] (input is clipped first)."""
        x = np.clip(np.asarray(x, dtype=np.float64), 0.0, 1.0)
        y = x ** (1.0 / np.asarray(self.gammas))
        ys, zs = y**self.contrast, (1.0 - y) ** self.contrast
        return ys / (ys + zs)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        """Exact inverse of ``apply`` on [0, 1]: display ``z [..., 3]`` back to linear."""
        z = np.clip(np.asarray(z, dtype=np.float64), 0.0, 1.0)
        a, b = z ** (1.0 / self.contrast), (1.0 - z) ** (1.0 / self.contrast)
        y = a / (a + b)
        return y ** np.asarray(self.gammas)

    def table(self, samples: int = 256) -> np.ndarray:
        """``[3, samples]`` response at ``x = k/(samples−1)``: the piecewise-linear form a learned CRF would have."""
        x = np.linspace(0.0, 1.0, samples)
        return self.apply(np.repeat(x[:, None], 3, axis=1)).T


@dataclass(frozen=True)
class Vignette:
    """ADOP's vignetting polynomial ``1 + a1 r² + a2 r⁴ + a3 r⁶`` around ``center`` (uv units, x scaled by W/H)."""

    coefficients: tuple[float, float, float] = (-0.10, -0.012, 0.0015)
    center: tuple[float, float] = (0.02, -0.015)

    def factor(self, width: int, height: int) -> np.ndarray:
        """``[H, W]`` multiplicative factor at the pixel centres of a ``width × height`` image."""
        u = 2.0 * (np.arange(width) + 0.5) / width - 1.0
        v = 2.0 * (np.arange(height) + 0.5) / height - 1.0
        du = (u - self.center[0]) * (width / height)
        dv = v - self.center[1]
        r2 = du[None, :] ** 2 + dv[:, None] ** 2
        a1, a2, a3 = self.coefficients
        return 1.0 + r2 * (a1 + r2 * (a2 + r2 * a3))


@dataclass(frozen=True)
class ImageExposure:
    """The photometric truth of one capture image.

    Attributes:
        name: image file name in ``images/``.
        exposure_time: shutter time in seconds written to EXIF.
        recorded_ev: EV100 computed from the EXIF as adop.exif reads it back.
        true_ev: EV actually applied, ``recorded_ev + deviation``.
        deviation: the unrecorded metering/aperture error in stops.
        white_balance: RGB gains applied to the radiance (green = 1), not recorded anywhere in the image.
    """

    name: str
    exposure_time: float
    recorded_ev: float
    true_ev: float
    deviation: float
    white_balance: tuple[float, float, float]


@dataclass(frozen=True)
class CameraSimulation:
    """The simulated camera shared by all images of a set (everything except the per-image exposure and WB)."""

    scale: float
    response: ResponseCurve = ResponseCurve()
    vignette: Vignette = Vignette()
    noise_sigma: float = 0.004

    @classmethod
    def default(cls, noise_sigma: float = 0.004) -> CameraSimulation:
        """Radiance 1 at the reference shutter lands at 0.5 before the response (sunlit white stays unclipped)."""
        return cls(scale=WHITE_LEVEL * 2.0 ** ev100(1.0 / REFERENCE_SHUTTER), noise_sigma=noise_sigma)

    def expose(self, radiance: np.ndarray, true_ev: float, white_balance: tuple[float, float, float]) -> np.ndarray:
        """Linear sensor signal ``x [H, W, 3]`` (before noise, clipping and response) for one image."""
        h, w = radiance.shape[:2]
        gain = self.scale * 2.0 ** (-true_ev)
        return radiance * self.vignette.factor(w, h)[:, :, None] * np.asarray(white_balance) * gain

    def photograph(self, radiance: np.ndarray, exposure: ImageExposure, rng: np.random.Generator | None) -> np.ndarray:
        """8-bit image ``[H, W, 3]`` of ``radiance``: expose, add noise (when ``rng`` is given), clip, CRF, quantise."""
        x = self.expose(np.asarray(radiance, dtype=np.float64), exposure.true_ev, exposure.white_balance)
        if rng is not None and self.noise_sigma > 0:
            x = x + rng.normal(0.0, self.noise_sigma, size=x.shape)
        display = self.response.apply(np.clip(x, 0.0, 1.0))
        return np.clip(np.round(display * 255.0), 0, 255).astype(np.uint8)

    def to_dict(self) -> dict:
        """The JSON block of camera_model.json describing this camera (forms, parameters, response tables)."""
        return {
            "scale": self.scale,
            "noise_sigma": self.noise_sigma,
            "vignette": {
                "form": "1 + a1*r^2 + a2*r^4 + a3*r^6; u,v in [-1,1] at pixel centres of the full image; "
                "r^2 = ((u - cu) * W/H)^2 + (v - cv)^2",
                **asdict(self.vignette),
            },
            "response": {
                "form": "CRF_c(x) = S(x^(1/gamma_c)), S(y) = y^s / (y^s + (1-y)^s), s = contrast; x clipped to [0,1]",
                "gammas": list(self.response.gammas),
                "contrast": self.response.contrast,
                "table_x": "k/255 for k = 0..255",
                "table": [[round(float(v), 8) for v in row] for row in self.response.table(256)],
            },
        }


def draw_exposures(names: list[str], rng: np.random.Generator) -> list[tuple[float, float, tuple[float, float, float]]]:
    """Per image: shutter time, unrecorded EV deviation and white balance, drawn deterministically from ``rng``.

    Every shutter value of ``SHUTTER_DENOMINATORS`` is used once before any repeats (for sets at least that large the
    recorded EVs therefore always span ±1.33 stops); deviations are N(0, 0.2²) stops clipped to ±0.45; red and blue
    gains are log-normal (σ = 0.08) clipped to [0.8, 1.25].
    """
    ladder = np.resize(np.arange(len(SHUTTER_DENOMINATORS)), len(names))
    order = rng.permutation(ladder)
    draws = []
    for index in order:
        deviation = float(np.clip(rng.normal(0.0, 0.2), -0.45, 0.45))
        red, blue = np.clip(np.exp(rng.normal(0.0, 0.08, size=2)), 0.8, 1.25)
        draws.append((1.0 / SHUTTER_DENOMINATORS[int(index)], deviation, (float(red), 1.0, float(blue))))
    return draws
