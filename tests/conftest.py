"""Shared test set-up: no telemetry, a private Prefect home, small random scenes."""

from __future__ import annotations

import os

# Before anything imports Prefect: no analytics, no server outside this machine, a generous start-up limit.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "180")
os.environ.setdefault("PREFECT_UI_ENABLED", "false")

import pytest  # noqa: E402

from adop.scene import Scene  # noqa: E402
from scenes import make_random_scene  # noqa: E402

try:
    import torch

    torch.set_num_threads(2)
except ImportError:  # pragma: no cover - torch is a hard dependency; keep conftest importable regardless
    pass


@pytest.fixture
def random_scene() -> Scene:
    return make_random_scene()
