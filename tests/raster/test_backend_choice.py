"""Where the kernels come from and which backend ``auto`` picks: shipped with the package, and said in the log."""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import torch
from raster_scenes import random_scene

import adop.raster
from adop.raster import RasterConfig, _cpp, _cuda, function, rasterize

PACKAGE = Path(adop.raster.__file__).parent


def test_kernel_sources_live_inside_the_package(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ADOP_KERNELS_DIR", raising=False)
    assert _cuda.kernels_dir() == PACKAGE / "kernels"
    assert (_cuda.kernels_dir() / "rasterize_points_fwd.cu").is_file()
    assert _cpp.kernel_source() == PACKAGE / "kernels" / "cpu" / "raster_cpu.cpp" and _cpp.kernel_source().is_file()


@pytest.mark.slow
def test_a_built_wheel_ships_the_kernels(tmp_path: Path) -> None:
    """A non-editable install must find the kernels too, so the wheel has to carry them."""
    root, source = PACKAGE.parents[1], tmp_path / "source"  # build from a copy: the build leaves files behind
    shutil.copytree(root / "adop", source / "adop", ignore=shutil.ignore_patterns("__pycache__", "*.so"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, source / name)
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path),
         str(source)], capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    (wheel,) = tmp_path.glob("adop-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for kernel in ("rasterize_points_fwd.cu", "rasterize_points_bwd.cu", "common.cuh", "cpu/raster_cpu.cpp"):
        assert f"adop/raster/kernels/{kernel}" in names
    assert not any(name.startswith("flows/") for name in names)  # no generic top-level package


def test_auto_says_which_backend_it_chose(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(function, "_announced", set())
    scene = random_scene(0, points=50, views=1, size=(16, 12))
    with caplog.at_level(logging.INFO, logger="adop.raster.function"):
        out = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                        scene.intrinsics, scene.size, config=RasterConfig(dropout=0.0))
        rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                  scene.intrinsics, scene.size, config=RasterConfig(dropout=0.0))
    lines = [r.getMessage() for r in caplog.records if "backend 'auto' chose" in r.getMessage()]
    assert lines == [f"rasterizer backend 'auto' chose {out.backend!r} for cpu float32 tensors"]  # once, not per call
    assert out.backend == ("cpp" if _cpp.available() else "torch")
    assert torch.is_tensor(out.features[0])
