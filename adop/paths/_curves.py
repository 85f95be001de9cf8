"""Curve maths shared by the path generators: C¹ Hermite splines, rotation splines, easing, arc-length inversion.

Private to `adop.paths`; the generators document the behaviour users see.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from scipy.interpolate import CubicHermiteSpline, PchipInterpolator
from scipy.spatial.transform import Rotation, RotationSpline, Slerp

Easing = Literal["linear", "ease_in", "ease_out", "ease_in_out"]
EASINGS: tuple[str, ...] = ("linear", "ease_in", "ease_out", "ease_in_out")


def ease(u: np.ndarray, kind: str) -> np.ndarray:
    """Map segment-local time ``u ∈ [0,1]`` to progress ``∈ [0,1]`` (monotone, fixed ends, so keyframes stay exact).

    ``ease_in`` starts at rest, ``ease_out`` ends at rest, ``ease_in_out`` does both (sine-shaped, as in Blender).
    """
    u = np.clip(u, 0.0, 1.0)
    if kind == "linear":
        return u
    if kind == "ease_in":
        return 1.0 - np.cos(0.5 * np.pi * u)
    if kind == "ease_out":
        return np.sin(0.5 * np.pi * u)
    if kind == "ease_in_out":
        return 0.5 - 0.5 * np.cos(np.pi * u)
    raise ValueError(f"unknown easing {kind!r}")


def position_spline(knots: np.ndarray, points: np.ndarray) -> CubicHermiteSpline:
    """C¹ cubic Hermite spline through ``points [K, D]`` at increasing ``knots [K]``.

    Interior tangents are Bessel's (the slope of the parabola through three neighbours), the non-uniform form of
    Catmull–Rom: with uneven knot spacing it neither overshoots the short side nor kinks, unlike the uniform formula.
    End tangents are the end secants, which keeps the first and last segments from bulging.
    """
    knots = np.asarray(knots, dtype=np.float64)
    points = np.asarray(points, dtype=np.float64)
    h = np.diff(knots)[:, None]
    secant = np.diff(points, axis=0) / h
    tangents = np.empty_like(points)
    tangents[0], tangents[-1] = secant[0], secant[-1]
    if len(knots) > 2:
        tangents[1:-1] = (secant[:-1] * h[1:] + secant[1:] * h[:-1]) / (h[:-1] + h[1:])
    return CubicHermiteSpline(knots, points, tangents, axis=0)


def rotation_spline(knots: np.ndarray, rotations: Rotation) -> RotationSpline | None:
    """C² rotation spline through ``rotations`` at ``knots`` (scipy's RotationSpline; plays squad's role).

    Returns ``None`` for two keyframes, where the caller slerps (a spline needs no more than the geodesic).
    """
    if len(knots) < 3:
        return None
    return RotationSpline(knots, rotations)


def eval_rotations(knots: np.ndarray, rotations: Rotation, spline: RotationSpline | None, tau: np.ndarray) -> Rotation:
    """Evaluate the rotation curve at parameters ``tau`` (clamped to the knot range)."""
    tau = np.clip(tau, knots[0], knots[-1])
    if spline is not None:
        return spline(tau)
    return Slerp(knots, rotations)(tau)


def scalar_spline(knots: np.ndarray, values: np.ndarray) -> PchipInterpolator:
    """Monotone C¹ interpolation of a per-keyframe scalar (focal length): no overshoot between equal keys."""
    return PchipInterpolator(knots, values)  # two keys: linear


def arc_length_table(
    spline: CubicHermiteSpline, knots: np.ndarray, samples_per_segment: int = 512
) -> tuple[np.ndarray, np.ndarray]:
    """Dense ``(tau, s)`` table of cumulative arc length along the spline, for inverting ``s(tau)``.

    Each knot interval gets the same number of samples so that short and long segments are resolved alike.
    """
    u = np.linspace(0.0, 1.0, samples_per_segment, endpoint=False)
    tau = np.concatenate([k0 + (k1 - k0) * u for k0, k1 in zip(knots[:-1], knots[1:], strict=False)] + [knots[-1:]])
    pts = spline(tau)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    return tau, s


def tau_at_arc_lengths(tau: np.ndarray, s: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Invert a monotone arc-length table: the spline parameter at each target arc length.

    Stationary stretches (zero length) collapse in ``s``; `np.interp` needs strictly increasing x, so duplicates are
    dropped first (keeping the first tau of each run).
    """
    keep = np.concatenate([[True], np.diff(s) > 0])
    return np.interp(targets, s[keep], tau[keep])
