"""Shared test set-up: no telemetry, a private Prefect home, small random scenes, stand-in LPIPS weights."""

from __future__ import annotations

import os
from pathlib import Path

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


@pytest.fixture(scope="session")
def lpips_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder like ``adop eval --lpips-weights`` wants, with random but correctly shaped weights (no download).

    ``vgg16.pth`` is saved as a torchvision whole-model file (``features.`` prefix, an unused classifier tensor),
    initialised as torchvision does (He normal, zero bias) so deep taps do not vanish; ``vgg.pth`` holds lpips' five
    heads, non-negative like the trained ones.
    """
    from adop.nn.losses import VGG16Features
    from adop.nn.lpips import LPIPS_CHANNELS

    gen = torch.Generator().manual_seed(0)
    state = {}
    for key, value in VGG16Features().state_dict().items():
        if key.endswith("weight"):
            fan_out = value.shape[0] * value.shape[2] * value.shape[3]
            value = torch.randn(value.shape, generator=gen) * (2.0 / fan_out) ** 0.5
        else:
            value = torch.zeros_like(value)
        state[f"features.{key}"] = value
    state["classifier.0.weight"] = torch.zeros(4, 4)
    folder = tmp_path_factory.mktemp("lpips-weights")
    torch.save(state, folder / "vgg16.pth")
    heads = {f"lin{k}.model.1.weight": torch.rand(1, c, 1, 1, generator=gen) for k, c in enumerate(LPIPS_CHANNELS)}
    torch.save(heads, folder / "vgg.pth")
    return folder
