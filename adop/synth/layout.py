"""Camera poses of a synthetic capture set: an arc of views around the scene and held-out poses between them.

Poses are world→camera with OpenCV axes (docs/conventions.md); the world is z-up. Views look at the scene centre with
a little random jitter of the target and roll, so the set is not perfectly regular (a perfectly regular arc hides
bugs that depend on camera roll).
"""

from __future__ import annotations

import numpy as np

from adop.synth.presets import SynthLayout

SCENE_CENTER = np.array([0.0, 0.0, 0.7])
"""Point all views aim at (before jitter): the middle of the object group."""


def look_at(center: np.ndarray, target: np.ndarray, roll_rad: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """World→camera rotation and translation of a camera at ``center`` looking at ``target`` (z-up world).

    Camera axes are OpenCV: +x right, +y down, +z forward.
    """
    forward = target - center
    forward = forward / np.linalg.norm(forward)
    right = np.cross(forward, np.array([0.0, 0.0, 1.0]))
    right = right / np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])
    if roll_rad:
        c, s = np.cos(roll_rad), np.sin(roll_rad)
        rotation = np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]]) @ rotation
    return rotation, -rotation @ center


def _arc_parameter(layout: SynthLayout, count: int) -> np.ndarray:
    """Fraction of the arc ``[count]`` in [0, 1): a closed ring does not repeat its first view at the end."""
    if layout.arc_degrees >= 360.0:
        return np.arange(count) / count
    return np.arange(count) / max(count - 1, 1)


def _station(layout: SynthLayout, s: np.ndarray, height_offset: float = 0.0, radius_offset: float = 0.0):
    azimuth = np.radians(layout.start_degrees + layout.arc_degrees * s)
    phase = 2 * np.pi * layout.height_cycles * s
    mid = 0.5 * (layout.height_min + layout.height_max)
    half = 0.5 * (layout.height_max - layout.height_min)
    height = mid + half * np.sin(phase) + height_offset
    radius = layout.radius + layout.radius_swing * np.cos(1.7 * phase) + radius_offset
    return np.stack([radius * np.cos(azimuth), radius * np.sin(azimuth), height], axis=1)


def _poses(centers: np.ndarray, layout: SynthLayout, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    poses = []
    for center in centers:
        target = SCENE_CENTER + rng.uniform(-1.0, 1.0, size=3) * layout.look_at_jitter
        roll = np.radians(rng.uniform(-1.0, 1.0) * layout.roll_jitter_degrees)
        poses.append(look_at(center, target, roll))
    return poses


def capture_poses(layout: SynthLayout, count: int, rng: np.random.Generator) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (rotation, translation) world→camera poses evenly spread along the layout's arc."""
    return _poses(_station(layout, _arc_parameter(layout, count)), layout, rng)


def heldout_poses(
    layout: SynthLayout, capture_count: int, count: int, rng: np.random.Generator
) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` poses half-way between capture views, 0.35 m higher and 0.4 m closer: never equal to any image.

    They are spread over the arc (not bunched at one end) so that novel-view evaluation covers the whole set.
    """
    if count == 0:
        return []
    s = _arc_parameter(layout, capture_count)
    gaps = len(s) if layout.arc_degrees >= 360.0 else len(s) - 1
    picks = np.linspace(0, gaps - 1, count + 2)[1:-1].round().astype(int)
    step = (1.0 / capture_count) if layout.arc_degrees >= 360.0 else 1.0 / max(capture_count - 1, 1)
    mids = s[picks] + 0.5 * step
    return _poses(_station(layout, mids, height_offset=0.35, radius_offset=-0.4), layout, rng)
