"""Shared inputs of the reconstruction tests: the synthetic `tiny` capture set (24 views, 320x240), generated once
per session (about 25 s on 2 cores) because SfM needs real, overlapping photographs to test anything."""

from __future__ import annotations

from pathlib import Path

import pycolmap
import pytest

from adop.synth import SynthManifest, generate_capture_set

pycolmap.logging.minloglevel = 2  # COLMAP logs hundreds of INFO lines per run


@pytest.fixture(scope="session")
def tiny_capture(tmp_path_factory: pytest.TempPathFactory) -> SynthManifest:
    """The `tiny` synthetic capture set with seed 0: ``images/`` plus ``ground_truth/scene``."""
    return generate_capture_set(tmp_path_factory.mktemp("reconstruct") / "tiny", preset="tiny", seed=0)


@pytest.fixture(scope="session")
def tiny_images(tiny_capture: SynthManifest) -> Path:
    return Path(tiny_capture.images_dir)
