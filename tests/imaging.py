"""Small image-writing helpers for tests (real JPEG/PNG files with real EXIF via OpenImageIO)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import OpenImageIO as oiio


def write_photo(
    path: Path,
    width: int = 64,
    height: int = 48,
    seed: int = 0,
    exposure_time: float | None = 1 / 60,
    f_number: float | None = 8.0,
    iso: float | None = 100,
) -> Path:
    """Write a noise photo with optional exposure EXIF."""
    pixels = (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)
    spec = oiio.ImageSpec(width, height, 3, "uint8")
    if exposure_time is not None:
        spec.attribute("ExposureTime", float(exposure_time))
    if f_number is not None:
        spec.attribute("FNumber", float(f_number))
    if iso is not None:
        spec.attribute("Exif:ISOSpeedRatings", int(iso))
    path.parent.mkdir(parents=True, exist_ok=True)
    out = oiio.ImageOutput.create(str(path))
    assert out is not None and out.open(str(path), spec), oiio.geterror()
    assert out.write_image(pixels), out.geterror()
    out.close()
    return path


def write_capture(folder: Path, count: int = 4, **kwargs) -> Path:
    for i in range(count):
        write_photo(folder / f"photo_{i:02d}.jpg", seed=i, **kwargs)
    return folder
