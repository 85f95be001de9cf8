"""Self-consistency of the ground truth: the written cameras project known 3-D points where the renderer drew them.

The known points are the magenta marker spheres of ``markers.json``. They are found in the held-out EXRs (exact
linear radiance) and in the capture JPEGs (linearised with camera_model.json alone), and compared with the projection
of each sphere's silhouette through the cameras loaded back with ``load_scene``. The last test shows that the check
is sharp: half a pixel of principal-point error, or ignoring the lens distortion, fails it.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from adop.scene import Camera
from adop.synth.check import MarkerObservation, find_markers, magenta_coverage
from adop.images import read_image


def _heldout_observations(micro_set, camera: Camera | None = None) -> list[MarkerObservation]:
    found = []
    heldout = micro_set.heldout
    for frame in heldout.frames:
        radiance = read_image(heldout.image_path(frame, micro_set.manifest.heldout_dir), "float")
        coverage = magenta_coverage(radiance, micro_set.markers["radiance"])
        found += find_markers(
            coverage, camera or heldout.cameras[0], frame, micro_set.marker_positions, micro_set.markers["radius"]
        )
    return found


def _capture_observations(micro_set, camera: Camera | None = None) -> list[MarkerObservation]:
    found = []
    scene, model = micro_set.scene, micro_set.model
    for frame, image in zip(scene.frames, model["images"]):
        pixels = read_image(scene.image_path(frame, micro_set.manifest.scene_dir), "float")
        radiance = micro_set.linearize(pixels, model, image)
        valid = pixels.max(axis=-1) < 0.98  # clipped pixels carry no colour information
        coverage = magenta_coverage(radiance, micro_set.markers["radiance"])
        found += find_markers(
            coverage,
            camera or scene.cameras[0],
            frame,
            micro_set.marker_positions,
            micro_set.markers["radius"],
            valid=valid,
        )
    return found


def test_markers_in_heldout_exr_match_projection(micro_set) -> None:
    found = _heldout_observations(micro_set)
    assert len(found) >= 8, f"only {len(found)} markers were fully visible and matched"
    errors = np.array([o.error for o in found])
    assert np.median(errors) < 0.1 and errors.max() < 0.4, errors
    areas = np.array([o.detected_area / o.expected_area for o in found])
    assert abs(np.median(areas) - 1.0) < 0.05


def test_markers_in_capture_jpegs_match_projection(micro_set) -> None:
    found = _capture_observations(micro_set)
    assert len(found) >= 30, f"only {len(found)} markers were fully visible and matched"
    assert len({o.marker for o in found}) >= 10
    errors = np.array([o.error for o in found])
    assert np.median(errors) < 0.15 and np.percentile(errors, 95) < 0.4 and errors.max() < 1.0, errors
    # near the corners the lens distortion moves the markers by pixels; they must still match to a fraction of one
    corners = [o for o in found if o.distortion_shift > 2.0]
    assert len(corners) >= 3, "no marker near the image corners was checked"
    assert max(o.error for o in corners) < 0.5


def test_check_is_sharp(micro_set) -> None:
    """A half-pixel principal-point shift or a forgotten distortion term is detected (the tests above can fail)."""
    true = micro_set.heldout.cameras[0]
    good = np.median([o.error for o in _heldout_observations(micro_set)])
    half_pixel = dataclasses.replace(
        true, params=(true.params[0], true.params[1] + 0.5, true.params[2], true.params[3])
    )
    shifted = _heldout_observations(micro_set, half_pixel)
    assert shifted and np.median([o.error for o in shifted]) > 0.35 > 3 * good
    no_distortion = Camera("PINHOLE", true.width, true.height, tuple(true.intrinsics))
    undistorted = _capture_observations(micro_set, no_distortion)
    # without distortion the corner markers fall outside the search window or land pixels away
    assert len(undistorted) < len(_capture_observations(micro_set)) or max(o.error for o in undistorted) > 1.0
