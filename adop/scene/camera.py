"""Cameras: COLMAP camera models, their parameters, and projection through them.

Every supported model maps onto one unified form, ``K = (fx, fy, cx, cy)`` plus eight distortion coefficients in
OpenCV order ``(k1, k2, p1, p2, k3, k4, k5, k6)`` (docs/conventions.md). The rasterizer, the synthetic generator and
the exporters all work from that form, so adding a model means adding one row to ``_MODELS``; the original model name
and parameters are kept so that a COLMAP round trip returns exactly what it was given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from adop.errors import InputError

CameraModel = Literal["PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"]

# name -> parameter names in COLMAP order
_MODELS: dict[str, tuple[str, ...]] = {
    "PINHOLE": ("fx", "fy", "cx", "cy"),
    "SIMPLE_RADIAL": ("f", "cx", "cy", "k1"),
    "RADIAL": ("f", "cx", "cy", "k1", "k2"),
    "OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2"),
    "FULL_OPENCV": ("fx", "fy", "cx", "cy", "k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6"),
}
SUPPORTED_MODELS: tuple[str, ...] = tuple(_MODELS)
_DISTORTION_ORDER = ("k1", "k2", "p1", "p2", "k3", "k4", "k5", "k6")


@dataclass(frozen=True)
class Camera:
    """One physical camera (intrinsics and lens distortion) shared by the frames that name it.

    Attributes:
        model: COLMAP model name (one of ``SUPPORTED_MODELS``).
        width: image width in pixels.
        height: image height in pixels.
        params: the model's parameters in COLMAP order (see ``param_names``).
    """

    model: str
    width: int
    height: int
    params: tuple[float, ...]

    def __post_init__(self) -> None:
        if self.model not in _MODELS:
            raise InputError(
                f"camera model {self.model!r} is not supported; supported models are {', '.join(SUPPORTED_MODELS)} "
                "(re-run COLMAP's mapper with one of them, or undistort the images to PINHOLE first)"
            )
        expected = len(_MODELS[self.model])
        if len(self.params) != expected:
            raise InputError(f"camera model {self.model} takes {expected} parameters, got {len(self.params)}")
        if self.width <= 0 or self.height <= 0:
            raise InputError(f"camera size must be positive, got {self.width}x{self.height}")
        object.__setattr__(self, "params", tuple(float(p) for p in self.params))

    @property
    def param_names(self) -> tuple[str, ...]:
        return _MODELS[self.model]

    def _named(self) -> dict[str, float]:
        named = dict(zip(self.param_names, self.params))
        if "f" in named:
            named["fx"] = named["fy"] = named.pop("f")
        return named

    @property
    def intrinsics(self) -> np.ndarray:
        """``[fx, fy, cx, cy]`` as float64."""
        named = self._named()
        return np.array([named["fx"], named["fy"], named["cx"], named["cy"]], dtype=np.float64)

    @property
    def distortion(self) -> np.ndarray:
        """The 8 OpenCV-order coefficients ``[k1, k2, p1, p2, k3, k4, k5, k6]`` (zeros where the model has none)."""
        named = self._named()
        return np.array([named.get(name, 0.0) for name in _DISTORTION_ORDER], dtype=np.float64)

    @property
    def has_distortion(self) -> bool:
        return bool(np.any(self.distortion != 0.0))

    @classmethod
    def from_unified(
        cls, width: int, height: int, intrinsics: np.ndarray, distortion: np.ndarray | None = None
    ) -> Camera:
        """The simplest COLMAP model that represents ``intrinsics`` and ``distortion`` exactly."""
        fx, fy, cx, cy = (float(v) for v in intrinsics)
        d = np.zeros(8) if distortion is None else np.asarray(distortion, dtype=np.float64)
        k1, k2, p1, p2, k3, k4, k5, k6 = (float(v) for v in d)
        if any((k3, k4, k5, k6)):
            return cls("FULL_OPENCV", width, height, (fx, fy, cx, cy, k1, k2, p1, p2, k3, k4, k5, k6))
        if any((p1, p2)):
            return cls("OPENCV", width, height, (fx, fy, cx, cy, k1, k2, p1, p2))
        if not any((k1, k2)):
            return cls("PINHOLE", width, height, (fx, fy, cx, cy))
        if fx != fy:
            return cls("OPENCV", width, height, (fx, fy, cx, cy, k1, k2, p1, p2))
        if k2:
            return cls("RADIAL", width, height, (fx, cx, cy, k1, k2))
        return cls("SIMPLE_RADIAL", width, height, (fx, cx, cy, k1))

    def scaled(self, factor: float) -> Camera:
        """This camera for images resized by ``factor`` (pixel-centre convention: cx, cy scale with the image)."""
        named = dict(zip(self.param_names, self.params))
        for key in ("f", "fx", "fy", "cx", "cy"):
            if key in named:
                named[key] *= factor
        return Camera(
            self.model,
            max(1, round(self.width * factor)),
            max(1, round(self.height * factor)),
            tuple(named[n] for n in self.param_names),
        )

    # ---- projection -------------------------------------------------------------------------------------------------

    def distort(self, xy: np.ndarray) -> np.ndarray:
        """Apply lens distortion to normalised coordinates ``[..., 2]`` (conventions.md formula)."""
        return distort_points(xy, self.distortion)

    def project(self, points_cam: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project camera-space points ``[N, 3]`` to pixels ``[N, 2]``; also returns a validity mask (z > 0)."""
        points_cam = np.asarray(points_cam, dtype=np.float64)
        z = points_cam[..., 2]
        valid = z > 1e-9
        safe_z = np.where(valid, z, 1.0)
        xy = points_cam[..., :2] / safe_z[..., None]
        xy_d = self.distort(xy)
        fx, fy, cx, cy = self.intrinsics
        uv = np.stack([fx * xy_d[..., 0] + cx, fy * xy_d[..., 1] + cy], axis=-1)
        return uv, valid

    def unproject(self, uv: np.ndarray, iterations: int = 20) -> np.ndarray:
        """Pixels ``[N, 2]`` to normalised, undistorted coordinates ``[N, 2]`` (fixed-point inversion of distortion)."""
        fx, fy, cx, cy = self.intrinsics
        uv = np.asarray(uv, dtype=np.float64)
        xy_d = np.stack([(uv[..., 0] - cx) / fx, (uv[..., 1] - cy) / fy], axis=-1)
        if not self.has_distortion:
            return xy_d
        xy = xy_d.copy()
        for _ in range(iterations):
            error = self.distort(xy) - xy_d
            xy = xy - error
        return xy

    def to_dict(self) -> dict:
        return {"model": self.model, "width": self.width, "height": self.height, "params": list(self.params)}

    @classmethod
    def from_dict(cls, data: dict) -> Camera:
        try:
            return cls(str(data["model"]), int(data["width"]), int(data["height"]), tuple(data["params"]))
        except KeyError as missing:
            raise InputError(f"camera entry is missing the field {missing}") from None


def distort_points(xy: np.ndarray, distortion: np.ndarray) -> np.ndarray:
    """OpenCV rational + tangential distortion of normalised coordinates ``[..., 2]``."""
    k1, k2, p1, p2, k3, k4, k5, k6 = (float(v) for v in distortion)
    x, y = xy[..., 0], xy[..., 1]
    r2 = x * x + y * y
    radial = (1 + r2 * (k1 + r2 * (k2 + r2 * k3))) / (1 + r2 * (k4 + r2 * (k5 + r2 * k6)))
    x_d = x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    y_d = y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return np.stack([x_d, y_d], axis=-1)
