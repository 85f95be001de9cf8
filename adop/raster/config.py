"""Options of the one-pixel point rasterizer (docs/method.md §3–4; defaults from ADOP's released configs)."""

from __future__ import annotations

import dataclasses
import struct
from dataclasses import dataclass
from typing import Literal

from adop.config import Config
from adop.errors import InputError

Backend = Literal["auto", "cuda", "cpp", "torch"]
"""Which implementation runs the passes.

``auto`` picks CuPy kernels for CUDA tensors (the PyTorch path if CuPy is missing), the compiled C++/OpenMP kernel for
CPU float32 tensors (the PyTorch path if it cannot be built) and the PyTorch path otherwise (e.g. float64). Naming a
backend that cannot run is an error, never a silent fallback.
"""

MAX_LAYERS = 5
"""ADOP's kernels allow at most 5 pyramid layers; ours keep the same bound (one pointer argument per layer)."""


@dataclass(frozen=True)
class RasterConfig(Config):
    """How points are rasterized and which approximate gradients the backward pass produces.

    Only primitives, so the config round-trips through JSON and hashes into cache keys.
    """

    layers: int = 4
    """Pyramid layers: layer l has size (W >> l, H >> l). ADOP uses 4 (full, 1/2, 1/4, 1/8)."""
    depth_accept: float = 0.01
    """Fuzzy depth test: a point is blended if z <= (1 + depth_accept) * nearest depth at its pixel."""
    dropout: float = 0.25
    """Training dropout: probability that a point is left out of a view's colour pass (it still writes depth).
    ADOP trains with 0.25 and renders with 0; use :meth:`evaluation` for rendering."""
    radius_threshold: float = 0.6
    """Stochastic discarding: a point stops at the first layer where its projected drop-out radius is below this
    many pixels (only when a radius is given)."""
    znear: float = 1e-4
    """Points with camera-space z <= znear are culled (scene units)."""
    ghost_gradients: bool = True
    """Spatial gradients come from the dropped ("ghost") points, as in ADOP's configs; False uses the drawn ones."""
    point_gradients: bool = False
    """Produce approximate gradients for point positions (off in ADOP's released configs)."""
    pose_gradients: bool = True
    """Produce approximate gradients for ``pose_tangent`` (on in ADOP's released configs)."""
    intrinsics_gradients: bool = False
    """Produce approximate gradients for intrinsics and distortion (off in ADOP's released configs)."""
    intrinsics_gradient_factor: float = 0.5
    """ADOP's ``K_gradient_factor``: scales the (fx, fy, cx, cy) gradient."""
    distortion_gradient_factor: float = 0.01
    """ADOP's ``distortion_gradient_factor``; k3 gets a further x0.25 and k4..k6, p1, p2 x0.1, as ADOP does."""
    backend: Backend = "auto"
    """Implementation; see :data:`Backend`."""

    def validate(self) -> None:
        if not 1 <= self.layers <= MAX_LAYERS:
            raise InputError(f"layers must be in [1, {MAX_LAYERS}], got {self.layers}")
        if not 0.0 <= self.dropout <= 1.0:
            raise InputError(f"dropout must be in [0, 1], got {self.dropout}")
        if self.depth_accept < 0.0:
            raise InputError(f"depth_accept must be >= 0, got {self.depth_accept}")
        if self.radius_threshold < 0.0:
            raise InputError(f"radius_threshold must be >= 0, got {self.radius_threshold}")
        if self.znear < 0.0:
            raise InputError(f"znear must be >= 0, got {self.znear}")

    def evaluation(self) -> RasterConfig:
        """The same config with dropout off, for rendering and evaluation (ADOP renders with dropout 0)."""
        return dataclasses.replace(self, dropout=0.0)

    @property
    def accept_factor(self) -> float:
        """``1 + depth_accept`` rounded to float32, so every backend compares against the very same number."""
        return _f32(1.0 + self.depth_accept)

    @property
    def threshold_f32(self) -> float:
        """``radius_threshold`` rounded to float32 (same comparison in every backend)."""
        return _f32(self.radius_threshold)

    @property
    def znear_f32(self) -> float:
        """``znear`` rounded to float32 (same comparison in every backend)."""
        return _f32(self.znear)


def _f32(value: float) -> float:
    return struct.unpack("f", struct.pack("f", value))[0]
