"""Presets of the synthetic capture set generator: how many views, how large, how finely sampled.

A preset fixes everything about a capture set except the seed. Tests build even smaller custom presets (a handful of
views at 96×72) from the same dataclass so that they exercise the very code path the `tiny` and `small` sets use.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

from adop.config import Config
from adop.errors import InputError

PresetName = Literal["tiny", "small", "sweep"]


@dataclass(frozen=True)
class SynthLayout(Config):
    """Where the cameras stand: an arc (or full ring) around the scene centre with varying height and distance.

    SfM needs neighbouring views close together (docs/method.md §13: 10° spacing registers, 60–72° fails),
    so views are spread evenly over ``arc_degrees`` and the height oscillates smoothly rather than jumping between
    separate orbits.
    """

    arc_degrees: float = 240.0
    """Angular extent of the camera arc around the vertical axis; 360 closes the ring."""
    start_degrees: float = -30.0
    """Azimuth of the first view (0 = looking along −x from +x)."""
    radius: float = 6.0
    """Mean horizontal distance of the cameras from the scene centre, in metres."""
    radius_swing: float = 0.5
    """Half-amplitude of the smooth radius variation, in metres."""
    height_min: float = 1.5
    """Lowest camera height above the ground plane, in metres."""
    height_max: float = 3.2
    """Highest camera height, in metres."""
    height_cycles: float = 2.0
    """Number of up-and-down height oscillations along the arc."""
    look_at_jitter: float = 0.25
    """Random offset of each view's look-at target around the scene centre, in metres."""
    roll_jitter_degrees: float = 2.0
    """Random camera roll about the optical axis (uniform in ±this), in degrees."""


@dataclass(frozen=True)
class SynthPreset(Config):
    """Everything that sizes one synthetic capture set (the seed picks the random details).

    Attributes are documented below each field; see ``PRESETS`` for the named instances.
    """

    name: str
    """Preset name, recorded in the ground truth."""
    views: int
    """Number of training images written to ``images/``."""
    width: int
    """Image width in pixels."""
    height: int
    """Image height in pixels."""
    supersampling: int = 2
    """Rays per pixel along each axis (``s×s`` per pixel, on a regular sub-pixel grid), averaged in linear radiance."""
    heldout_views: int = 3
    """Number of held-out poses rendered as linear EXR only (never among the images)."""
    focal_factor: float = 0.8125
    """Focal length in pixels divided by the image width (0.8125·320 = 260 px: about 63° horizontal field of view)."""
    k1: float = -0.04
    """SIMPLE_RADIAL distortion coefficient of the true camera (barrel; about 2 % displacement at the corners)."""
    surface_points: int = 60_000
    """Number of points in the ground-truth surface sample (``ground_truth/scene/points.ply``)."""
    marker_radius: float = 0.08
    """Radius in metres of the magenta marker spheres used to check the cameras (see ``markers.json``)."""
    jpeg_quality: int = 92
    """JPEG quality of the capture set."""
    noise_sigma: float = 0.004
    """Std-dev of the Gaussian sensor read noise, in units of the clipped linear signal [0, 1]."""
    layout: SynthLayout = SynthLayout()
    """Camera arrangement."""
    exif_focal: bool = True
    """Write the focal length into EXIF; without it SfM starts from a guess (COLMAP: 1.2 × the long side)."""

    def validate(self) -> None:
        if self.views < 2:
            raise InputError(f"a synthetic capture set needs at least 2 views, got {self.views}")
        if self.width < 16 or self.height < 16:
            raise InputError(f"synthetic images must be at least 16×16 pixels, got {self.width}×{self.height}")
        if not 1 <= self.supersampling <= 8:
            raise InputError(f"supersampling must be between 1 and 8, got {self.supersampling}")
        if self.heldout_views < 0:
            raise InputError(f"heldout_views must be ≥ 0, got {self.heldout_views}")
        if not 1 <= self.jpeg_quality <= 100:
            raise InputError(f"jpeg_quality must be in 1..100, got {self.jpeg_quality}")

    @property
    def focal_px(self) -> float:
        """Focal length in pixels of the true camera."""
        return self.focal_factor * self.width

    def with_changes(self, **changes: object) -> SynthPreset:
        """A copy with some fields replaced (tests use it to make micro presets)."""
        return replace(self, **changes)  # type: ignore[arg-type]


TINY = SynthPreset(
    name="tiny",
    views=24,
    width=320,
    height=240,
    supersampling=2,
    heldout_views=3,
    surface_points=60_000,
    layout=SynthLayout(arc_degrees=240.0),
)
"""24 views at 320×240 on a 240° arc (about 10.4° apart): registers fully with pycolmap; generation and SfM take
under a minute on a small CPU."""

SMALL = SynthPreset(
    name="small",
    views=48,
    width=640,
    height=480,
    supersampling=2,
    heldout_views=4,
    surface_points=200_000,
    layout=SynthLayout(arc_degrees=360.0, height_cycles=3.0),
)
"""48 views at 640×480 on a closed ring (7.5° apart); generation and SfM take a few minutes on a small CPU."""

SWEEP = SynthPreset(
    name="sweep",
    views=40,
    width=180,
    height=320,
    supersampling=2,
    heldout_views=2,
    surface_points=60_000,
    exif_focal=False,
    layout=SynthLayout(arc_degrees=100.0, start_degrees=10.0, radius=5.0, radius_swing=0.2, height_min=1.6,
                       height_max=1.9, height_cycles=0.5, look_at_jitter=0.1, roll_jitter_degrees=1.0),
)
"""A hand-held phone video in miniature: 40 narrow portrait frames (180×320) 2.5° apart on a 100° sweep at about
eye height, and **no EXIF focal length**, so SfM starts from COLMAP's guess of 1.2 × the long side (384 px against a
true 146 px). The class of capture on which a global mapper can converge to a wrong model."""

PRESETS: dict[str, SynthPreset] = {"tiny": TINY, "small": SMALL, "sweep": SWEEP}


def get_preset(name: str) -> SynthPreset:
    """The named preset, or an ``InputError`` listing the valid names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown synthetic preset {name!r}; choose one of {', '.join(PRESETS)}") from None
