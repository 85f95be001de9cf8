"""The capture class that can fool a global mapper: portrait video-like frames with no EXIF focal length.

The `sweep` synthetic preset (40 frames of 180x320, 2.5 deg apart, no focal length in EXIF, so SfM starts from
1.2 x the long side: 384 px against a true 146 px). The kept model must match the known cameras, the check must
have judged it, and the report must say that the focal length was guessed. The bounds are looser than for the other
sets with known cameras: measured over repeated runs, the median pairwise rotation error is 0.06-0.18 deg (p90
0.12-0.40 deg), because the narrow frames barely constrain the radial distortion; the failure this guards against is
off by degrees, not tenths.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from adop.reconstruct import SfmConfig, run_sfm
from adop.reconstruct.accuracy import pose_accuracy
from adop.scene import load_scene
from adop.scene.colmap import read_reconstruction, scene_from_reconstruction
from adop.synth import generate_capture_set

pytestmark = pytest.mark.slow


def test_a_portrait_sweep_without_focal_length_is_reconstructed_and_checked(tmp_path: Path) -> None:
    capture = generate_capture_set(tmp_path / "sweep", preset="sweep", seed=0)
    result = run_sfm(Path(capture.images_dir), tmp_path / "sfm", SfmConfig(num_threads=2))
    assert len(result.registered) == 40 and result.focal_from_exif == 0
    check = result.check
    assert check is not None and check["consistent"] and check["agreement"] >= 0.9
    assert check["cameras_without_focal_prior"] == 1 and check["focal_prior_ratio"] is None
    estimated = scene_from_reconstruction(read_reconstruction(tmp_path / "sfm" / "sparse"), capture.images_dir)
    accuracy = pose_accuracy(estimated, load_scene(capture.scene_dir))
    assert accuracy.median_pairwise_rotation_deg <= 0.3 and accuracy.p90_pairwise_rotation_deg <= 0.6
    assert accuracy.focal_ratio == pytest.approx(1.0, abs=0.01)
