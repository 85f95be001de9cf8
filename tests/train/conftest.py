"""Fixtures of the training tests: a micro synthetic capture set (see ``train_helpers``)."""

from __future__ import annotations

from pathlib import Path

import pytest
from train_helpers import MICRO

from adop.synth import generate_capture_set


@pytest.fixture(scope="session")
def micro_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``OUT`` of a micro synthetic set (``OUT/ground_truth/scene`` is a ready scene folder)."""
    out = tmp_path_factory.mktemp("micro") / "set"
    generate_capture_set(out, preset=MICRO, seed=0)
    return out


@pytest.fixture(scope="session")
def micro_scene(micro_set: Path) -> Path:
    """The micro set's ground-truth scene folder (true poses, dense points)."""
    return micro_set / "ground_truth" / "scene"
