"""The fly-through a job delivers: a user's camera path file, or a path generated from the capture's own cameras.

A generated path needs only the capture cameras' poses and the points' positions (the orbit circles the median
point), so a trained model can plan its own fly-through without the scene folder or the photos.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from adop.config import Config, require
from adop.errors import InputError
from adop.paths.camera_path import CameraPath
from adop.paths.files import load_camera_path
from adop.paths.generators import orbit_path, path_through_cameras

PathKind = Literal["orbit", "cameras"]
MAX_SIDE = 16384
"""Largest frame side a generated path may ask for (16K; beyond it one frame's buffers exceed a machine's memory)."""


@dataclass(frozen=True)
class FlyThroughConfig(Config):
    """Which camera path to render and, for a generated one, its length, rate and frame size."""

    kind: PathKind = "orbit"
    """``orbit``: circle the scene above the capture cameras; ``cameras``: a smooth path through the photos' cameras."""
    file: Path | None = None
    """A camera path JSON (ours, keyframed, or nerfstudio's ``camera_path.json``) instead of a generated path."""
    seconds: float = 4.0
    """Length of a generated path."""
    fps: float = 24.0
    """Frame rate of a generated path."""
    width: int | None = None
    """Frame width of a generated path; None: the photos' width."""
    height: int | None = None
    """Frame height of a generated path; None: the photos' height (or, with only ``width`` given, the photos' aspect
    ratio at that width)."""

    def validate(self) -> None:
        require(self.seconds > 0 and self.fps > 0, "FlyThroughConfig.seconds and fps must be positive")
        require(all(v is None or 16 <= v <= MAX_SIDE for v in (self.width, self.height)),
                f"FlyThroughConfig.width and height must be between 16 and {MAX_SIDE} px")


def parse_resolution(text: str) -> tuple[int, int]:
    """``"1920x1080"`` (or ``1920×1080``) → ``(1920, 1080)``.

    Raises:
        InputError: not two positive whole numbers joined by x, or a side outside 16..MAX_SIDE.
    """
    parts = text.lower().replace("×", "x").split("x")
    if len(parts) != 2 or not all(p.strip().isdigit() for p in parts):
        raise InputError(f"a resolution is written WIDTHxHEIGHT, e.g. 1920x1080; got {text!r}")
    width, height = (int(p) for p in parts)
    if not all(16 <= v <= MAX_SIDE for v in (width, height)):
        raise InputError(f"resolution sides must be between 16 and {MAX_SIDE} px; got {text!r}")
    return width, height


def fly_through_path(
    config: FlyThroughConfig,
    rotations: np.ndarray,  # [F, 3, 3] world->camera
    translations: np.ndarray,  # [F, 3]
    points: np.ndarray,  # [N, 3] world positions
    *,
    size: tuple[int, int],
    focal: float,
) -> CameraPath:
    """The configured fly-through: ``config.file`` as it is, or an orbit / a path through the cameras.

    Args:
        config: what to render.
        rotations, translations: the capture cameras' poses.
        points: the scene's points (the orbit's centre is their median; the cameras' mean centre when empty).
        size: ``(W, H)`` of the capture cameras; ``config.width``/``height`` override it.
        focal: the capture cameras' focal length in pixels of ``size`` (scaled with an overridden width).

    Raises:
        InputError: an unreadable path file, or poses that cannot make a path.
    """
    if config.file is not None:
        return load_camera_path(config.file)
    width = config.width or size[0]
    height = config.height or (round(size[1] * width / size[0]) if config.width else size[1])
    kwargs = dict(width=width, height=height, fps=config.fps, seconds=config.seconds, focal_px=focal * width / size[0])
    rotations, translations = np.asarray(rotations, dtype=np.float64), np.asarray(translations, dtype=np.float64)
    if config.kind == "cameras":
        return path_through_cameras(rotations, translations, **kwargs)
    if len(points):
        center = np.median(np.asarray(points, dtype=np.float64), axis=0)
    else:
        center = (-np.einsum("fji,fj->fi", rotations, translations)).mean(axis=0)
    return orbit_path(rotations, translations, center, **kwargs)
