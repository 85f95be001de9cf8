"""Frame-sequence naming: ``name.1001.ext`` and the patterns ffmpeg and farm managers read.

Studios name sequences ``<name>.####.<ext>``: a dot, the frame number zero-padded to 4 digits, a dot, the extension,
with shots starting at frame **1001** to leave room for handles (docs/method.md §12). Nuke, ffmpeg
(``%04d``) and farm managers (``####``) all read that form directly.
"""

from __future__ import annotations

import logging
import os
import re
from fractions import Fraction
from pathlib import Path

from adop.errors import InputError

logger = logging.getLogger(__name__)

FIRST_FRAME = 1001
PADDING = 4
_NAME_RE = re.compile(r"^(?P<stem>.+)\.(?P<frame>\d+)\.(?P<ext>[A-Za-z0-9]+)$")
_BAD_STEM = re.compile(r"[/\\%#\s]")


def _check_stem(stem: str) -> None:
    if not stem or _BAD_STEM.search(stem) or stem.startswith("."):
        raise InputError(
            f"sequence name {stem!r} is not usable: it must be non-empty, not start with '.', and contain no "
            "slashes, spaces, '%' or '#' (e.g. 'show_seq_shot_adop_v001')"
        )


def frame_name(stem: str, frame: int, ext: str, padding: int = PADDING) -> str:
    """``stem.NNNN.ext``, e.g. ``frame_name("beauty", 1001, "exr") == "beauty.1001.exr"``."""
    _check_stem(stem)
    if frame < 0:
        raise InputError(f"frame numbers must be non-negative, got {frame}")
    return f"{stem}.{frame:0{padding}d}.{ext.lstrip('.')}"


def frame_pattern(stem: str, ext: str, padding: int = PADDING) -> str:
    """The printf pattern of a sequence, as ffmpeg reads it: ``stem.%04d.ext``."""
    _check_stem(stem)
    return f"{stem}.%0{padding}d.{ext.lstrip('.')}"


def hash_pattern(stem: str, ext: str, padding: int = PADDING) -> str:
    """The farm-manager form of a sequence name: ``stem.####.ext``."""
    _check_stem(stem)
    return f"{stem}.{'#' * padding}.{ext.lstrip('.')}"


def parse_frame_name(name: str | os.PathLike[str]) -> tuple[str, int, str]:
    """Split ``stem.NNNN.ext`` into ``(stem, frame, ext)``.

    Raises:
        InputError: the name is not of that form.
    """
    m = _NAME_RE.match(Path(name).name)
    if not m:
        raise InputError(f"{name}: not a sequence frame name of the form 'name.1001.ext'")
    return m["stem"], int(m["frame"]), m["ext"]


def sequence_info(files: list[Path]) -> tuple[Path, str, str, int, int]:
    """Check that ``files`` are one contiguous sequence in one folder; return ``(folder, stem, ext, first, count)``.

    Raises:
        InputError: empty list, mixed folders/names/padding, or a gap in the frame numbers.
    """
    if not files:
        raise InputError("no frames given; render the sequence first")
    parsed = [parse_frame_name(f) for f in files]
    folder = Path(files[0]).parent
    stem, _, ext = parsed[0]
    width = len(Path(files[0]).name) - len(stem) - len(ext) - 2
    frames = []
    for f, (s, n, e) in zip(files, parsed, strict=False):
        if Path(f).parent != folder or s != stem or e != ext or len(Path(f).name) - len(s) - len(e) - 2 != width:
            raise InputError(f"{f}: not part of the sequence {folder / hash_pattern(stem, ext, width)}")
        frames.append(n)
    frames.sort()
    gaps = [a + 1 for a, b in zip(frames[:-1], frames[1:], strict=False) if b != a + 1]
    if gaps:
        raise InputError(
            f"sequence {folder / hash_pattern(stem, ext, width)} is not contiguous: frame {gaps[0]} is missing "
            "or duplicated; re-render the missing frames"
        )
    return folder, stem, ext, frames[0], len(frames)


def fps_fraction(fps: float | Fraction | str) -> Fraction:
    """Exact frame rate: NTSC rates (23.976, 29.97, 59.94, …) become n·1000/1001, others a small fraction."""
    if isinstance(fps, Fraction):
        rate = fps
    else:
        value = float(Fraction(fps)) if isinstance(fps, str) else float(fps)
        if not value > 0:
            raise InputError(f"frame rate must be positive, got {fps}")
        ntsc = round(value * 1.001)
        rate = Fraction(ntsc * 1000, 1001) if abs(value - ntsc / 1.001) < 5e-3 and value != ntsc else None
        rate = rate or Fraction(value).limit_denominator(1000)
    if rate <= 0:
        raise InputError(f"frame rate must be positive, got {fps}")
    return rate
