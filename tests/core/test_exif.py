"""EXIF exposure values: the standard EV100 formula, missing tags, ISO read under both names."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from adop.exif import exposure_value, read_exposure
from imaging import write_photo


def test_ev100_of_a_known_exposure(tmp_path: Path) -> None:
    photo = write_photo(tmp_path / "a.jpg", exposure_time=1 / 125, f_number=8.0, iso=100)
    assert exposure_value(photo) == pytest.approx(math.log2(64 * 125), abs=1e-3)


def test_higher_iso_lowers_the_ev(tmp_path: Path) -> None:
    base = exposure_value(write_photo(tmp_path / "a.jpg", iso=100))
    boosted = exposure_value(write_photo(tmp_path / "b.jpg", iso=400))
    assert boosted == pytest.approx(base - 2.0, abs=1e-3)


def test_missing_exif_gives_ev_zero_and_a_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    photo = write_photo(tmp_path / "a.png", exposure_time=None, f_number=None, iso=None)
    with caplog.at_level(logging.WARNING):
        assert exposure_value(photo) == 0.0
    assert "no complete exposure EXIF" in caplog.text
    assert read_exposure(photo).ev100 is None
