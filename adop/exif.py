"""Exposure from EXIF: exposure time, f-number, ISO and exposure bias read with OpenImageIO.

We use the standard EV100 definition, ``EV = log2(N²/t) − log2(ISO/100)``: the EV at which a metered scene would be
shot at ISO 100. ADOP's colmap2adop computes ``log2(N²/t) + log2(ISO/100) − bias`` instead (see ADOP
``src/apps/colmap2adop.cpp``; docs/method.md §1): its ISO term has the opposite sign, which is wrong whenever ISO
varies between photos (doubling the ISO doubles the recorded signal exactly as doubling ``t`` does, so it must lower
the EV like ``t``), and it subtracts the exposure bias although the bias is already contained in the N, t and ISO the
camera chose. With constant ISO and no bias both formulas differ only by a constant, which the tonemapper's mean
anchoring removes. The bias is read and reported, not applied.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import OpenImageIO as oiio

log = logging.getLogger(__name__)

_ISO_KEYS = ("Exif:PhotographicSensitivity", "Exif:ISOSpeedRatings", "ISOSpeedRatings")


@dataclass(frozen=True)
class ExposureInfo:
    """What the EXIF says about one photo's exposure (None where a tag is missing)."""

    exposure_time: float | None
    f_number: float | None
    iso: float | None
    exposure_bias: float | None
    focal_length_mm: float | None
    focal_length_35mm: float | None

    @property
    def complete(self) -> bool:
        return all(v is not None and v > 0 for v in (self.exposure_time, self.f_number, self.iso))

    @property
    def ev100(self) -> float | None:
        """``log2(N²/t) − log2(ISO/100)``, or None when time, aperture or ISO is missing."""
        if not self.complete:
            return None
        assert self.f_number is not None and self.exposure_time is not None and self.iso is not None
        return math.log2(self.f_number**2 / self.exposure_time) - math.log2(self.iso / 100.0)


def _positive(spec: oiio.ImageSpec, *names: str) -> float | None:
    for name in names:
        value = spec.getattribute(name)
        if value is None:
            continue
        try:
            number = float(value[0] if isinstance(value, (tuple, list)) else value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            return number
    return None


def exposure_from_spec(spec: oiio.ImageSpec) -> ExposureInfo:
    """Exposure tags from an already opened image's spec (ingest reads the spec once for size and EXIF)."""
    return ExposureInfo(
        exposure_time=_positive(spec, "ExposureTime", "Exif:ExposureTime"),
        f_number=_positive(spec, "FNumber", "Exif:FNumber"),
        iso=_positive(spec, *_ISO_KEYS),
        exposure_bias=_positive(spec, "Exif:ExposureBiasValue", "ExposureBiasValue"),
        focal_length_mm=_positive(spec, "Exif:FocalLength", "FocalLength"),
        focal_length_35mm=_positive(spec, "Exif:FocalLengthIn35mmFilm", "FocalLengthIn35mmFilm"),
    )


def read_exposure(path: Path) -> ExposureInfo:
    """Read the exposure tags of one image file (raises OSError if the file cannot be opened)."""
    image = oiio.ImageInput.open(str(path))
    if image is None:
        raise OSError(f"cannot open {path}: {oiio.geterror()}")
    try:
        return exposure_from_spec(image.spec())
    finally:
        image.close()


def exposure_value(path: Path) -> float:
    """EV100 of one photo; 0.0 with a warning when its EXIF lacks time, aperture or ISO."""
    info = read_exposure(path)
    ev = info.ev100
    if ev is None:
        log.warning("%s has no complete exposure EXIF (time, f-number, ISO); using EV 0", path)
        return 0.0
    return ev
