"""Self-consistency check of a synthetic set: do the written cameras project the markers where they were drawn?

The magenta marker spheres (``markers.json``) are the only surfaces whose linear radiance has ``(R + B)/2 > G``, so
their coverage can be read off any linear image (an EXR, or a JPEG linearised with ``camera_model.json``). For each
marker, the expected blob is the projection of the sphere's silhouette (the circle where the viewing cone touches it)
through the camera *as loaded from disk*: its area centroid is where the coverage-weighted centroid of the drawn blob
must be. Using the silhouette rather than the projected centre matters at the 0.1 px level: perspective and lens
distortion shift a sphere's image away from the image of its centre.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from adop.scene import Camera, Frame


@dataclass(frozen=True)
class MarkerObservation:
    """One marker found in one image, with where the camera says it should be.

    Attributes:
        marker: index into ``markers.json`` positions.
        detected: coverage-weighted centroid of the drawn blob, pixels (centres at +0.5).
        expected: area centroid of the projected silhouette, pixels.
        detected_area: drawn coverage in pixels.
        expected_area: projected silhouette area in pixels.
        distortion_shift: how far lens distortion moves the expected centroid, pixels (large near the corners).
    """

    marker: int
    detected: tuple[float, float]
    expected: tuple[float, float]
    detected_area: float
    expected_area: float
    distortion_shift: float

    @property
    def error(self) -> float:
        """Distance in pixels between the drawn and the projected blob centroid."""
        return float(np.hypot(self.detected[0] - self.expected[0], self.detected[1] - self.expected[1]))


def magenta_coverage(linear_rgb: np.ndarray, marker_radiance: tuple[float, float, float]) -> np.ndarray:
    """Per-pixel marker coverage ``[H, W]`` estimated as ``((R + B)/2 − G) / ((R_m + B_m)/2 − G_m)``."""
    r, g, b = (linear_rgb[..., c].astype(np.float64) for c in range(3))
    mr, mg, mb = marker_radiance
    return ((r + b) / 2 - g) / ((mr + mb) / 2 - mg)


def silhouette(camera: Camera, frame: Frame, center: np.ndarray, radius: float, samples: int = 96) -> np.ndarray | None:
    """Pixels ``[samples, 2]`` of a sphere's outline seen by ``frame``; None when it is not wholly in front."""
    eye = frame.center
    axis = np.asarray(center, dtype=np.float64) - eye
    distance = float(np.linalg.norm(axis))
    if distance <= radius * 1.01:
        return None
    axis /= distance
    helper = np.array([0.0, 0.0, 1.0]) if abs(axis[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    e1 = np.cross(axis, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(axis, e1)
    # tangent points: distance to the eye d·cos(α), at angle α = asin(r/d) off the axis
    along = distance - radius * radius / distance
    ring = radius * np.sqrt(1.0 - (radius / distance) ** 2)
    angle = np.linspace(0.0, 2 * np.pi, samples, endpoint=False)
    points = eye + along * axis + ring * (np.cos(angle)[:, None] * e1 + np.sin(angle)[:, None] * e2)
    uv, valid = camera.project(frame.to_camera(points))
    return uv if bool(valid.all()) else None


def polygon_centroid(polygon: np.ndarray) -> tuple[np.ndarray, float]:
    """Area centroid ``[2]`` and area of a simple polygon ``[N, 2]`` (shoelace)."""
    x, y = polygon[:, 0], polygon[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    area = cross.sum() / 2.0
    cx = ((x + xn) * cross).sum() / (6.0 * area)
    cy = ((y + yn) * cross).sum() / (6.0 * area)
    return np.array([cx, cy]), abs(float(area))


def find_markers(
    coverage: np.ndarray,
    camera: Camera,
    frame: Frame,
    markers: np.ndarray,
    radius: float,
    *,
    valid: np.ndarray | None = None,
    min_area: float = 4.0,
    area_tolerance: float = 0.15,
    search_px: float = 3.0,
) -> list[MarkerObservation]:
    """Match drawn blobs with projected markers; return the markers that are fully and unambiguously visible.

    A marker is skipped (not returned) when its silhouette leaves the image or is smaller than ``min_area`` pixels, when
    no blob lies within ``search_px`` of where it should be, when the blob touches the border or an invalid pixel
    (e.g. clipped in a JPEG), or when the drawn area differs from the silhouette area by more than ``area_tolerance``
    (it is partly hidden behind something, or two markers overlap). A wrong camera therefore shows up both as large
    errors and as few matches; callers should check both.

    Args:
        coverage: ``[H, W]`` marker coverage (``magenta_coverage``).
        camera: the camera to check.
        frame: the pose to check.
        markers: ``[M, 3]`` marker centres.
        radius: marker radius.
        valid: optional ``[H, W]`` mask of trustworthy pixels.
        min_area: smallest silhouette, in pixels, whose centroid is trusted.
        area_tolerance: largest relative difference between drawn and projected area of an accepted marker.
        search_px: how far from the projected centroid a blob may be and still be taken as that marker.
    """
    height, width = coverage.shape
    core = coverage > 0.3
    labels, count = ndimage.label(core)
    if count == 0:
        return []
    region = ndimage.grey_dilation(labels, size=(3, 3))  # include the partially covered rim
    weight = np.clip(coverage, 0.0, 1.0)
    index = np.arange(1, count + 1)
    rows, cols = np.mgrid[0:height, 0:width]
    mass = ndimage.sum(weight, region, index)
    centroid_u = ndimage.sum(weight * (cols + 0.5), region, index) / np.maximum(mass, 1e-12)
    centroid_v = ndimage.sum(weight * (rows + 0.5), region, index) / np.maximum(mass, 1e-12)
    bad = np.zeros((height, width), dtype=bool)
    bad[0, :] = bad[-1, :] = bad[:, 0] = bad[:, -1] = True
    if valid is not None:
        bad |= ~valid
    touches_bad = ndimage.maximum(bad.astype(np.int32), region, index) > 0
    undistorted = Camera("PINHOLE", camera.width, camera.height, tuple(camera.intrinsics))
    found = []
    for m, center in enumerate(np.asarray(markers, dtype=np.float64)):
        outline = silhouette(camera, frame, center, radius)
        if outline is None or outline.min() < 2.0 or np.any(outline.max(axis=0) > [width - 2.0, height - 2.0]):
            continue
        expected, area = polygon_centroid(outline)
        if area < min_area:
            continue
        distance = np.hypot(centroid_u - expected[0], centroid_v - expected[1])
        best = int(np.argmin(distance))
        if distance[best] > search_px or touches_bad[best] or abs(mass[best] / area - 1.0) > area_tolerance:
            continue
        plain = silhouette(undistorted, frame, center, radius)
        shift = float(np.linalg.norm(polygon_centroid(plain)[0] - expected)) if plain is not None else float("nan")
        found.append(
            MarkerObservation(
                m,
                (float(centroid_u[best]), float(centroid_v[best])),
                (float(expected[0]), float(expected[1])),
                float(mass[best]),
                area,
                shift,
            )
        )
    return found
