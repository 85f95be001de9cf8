"""The capture folder before SfM: which files are usable images, their sizes, duplicates, and whether the set is
ordered like video frames.

pycolmap skips unreadable files with only a log line and decodes truncated JPEGs (grey bottom part) as if they were
fine, so this scan decides up front which images SfM gets and records why the others were left out. It reads headers
and file bytes only (no decoding), which costs well under 1 % of the feature extraction.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import OpenImageIO as oiio

from adop.images import list_image_files

log = logging.getLogger(__name__)

_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_NUMBERED = re.compile(r"^(.*?)(\d+)$")


@dataclass(frozen=True)
class ImageInfo:
    """One usable image: its name relative to the image folder, its size, and whether EXIF gives a focal length."""

    name: str
    width: int
    height: int
    has_focal_exif: bool


@dataclass
class ImageScan:
    """What the capture folder holds.

    Attributes:
        images: usable images, sorted by name.
        unreadable: name → reason, for image files that cannot be used (left out of SfM).
        duplicates: name → name of the earlier byte-identical file it copies (left out of SfM).
        ignored: files that are not images by extension (e.g. sidecars), left alone.
    """

    images: list[ImageInfo] = field(default_factory=list)
    unreadable: dict[str, str] = field(default_factory=dict)
    duplicates: dict[str, str] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def num_files(self) -> int:
        """Image files found (usable, unreadable and duplicate)."""
        return len(self.images) + len(self.unreadable) + len(self.duplicates)

    @property
    def sizes(self) -> Counter[tuple[int, int]]:
        return Counter((info.width, info.height) for info in self.images)


def scan_images(image_dir: Path) -> ImageScan:
    """List and check the images under ``image_dir`` (recursively, hidden files skipped).

    Raises:
        InputError: the folder does not exist.
    """
    image_dir = Path(image_dir)
    files = list_image_files(image_dir, recursive=True)
    scan = ImageScan(ignored=[other.as_posix() for other in files.others])
    seen: dict[str, str] = {}
    for relative in files.images:
        name, path = relative.as_posix(), image_dir / relative
        data = path.read_bytes()
        digest = hashlib.sha1(data).hexdigest()
        if digest in seen:
            scan.duplicates[name] = seen[digest]
            continue
        seen[digest] = name
        problem, info = _inspect(path, name, data)
        if problem is not None:
            scan.unreadable[name] = problem
        else:
            assert info is not None
            scan.images.append(info)
    for name, reason in scan.unreadable.items():
        log.warning("left out %s: %s", name, reason)
    if scan.duplicates:
        log.warning(
            "left out %d byte-identical copies (e.g. %s = %s)", len(scan.duplicates), *next(iter(scan.duplicates.items()))
        )
    return scan


def _inspect(path: Path, name: str, data: bytes) -> tuple[str | None, ImageInfo | None]:
    if not data:
        return "the file is empty (0 bytes)", None
    image = oiio.ImageInput.open(str(path))
    if image is None:
        oiio.geterror()
        return "not a readable image (corrupt or not the format its extension says)", None
    try:
        spec = image.spec()
        width, height = int(spec.width), int(spec.height)
        focal = spec.get_float_attribute("Exif:FocalLength", 0.0) > 0 or (
            spec.get_float_attribute("Exif:FocalLengthIn35mmFilm", 0.0) > 0
        )
    finally:
        image.close()
    if width < 16 or height < 16:
        return f"too small for feature detection ({width}x{height})", None
    if data[:2] == _JPEG_START and _JPEG_END not in data[-4096:]:  # by content: a PNG named .jpg is not truncated
        return "truncated JPEG (the file ends before the image data does; copy it again from the card)", None
    return None, ImageInfo(name, width, height, focal)


def looks_sequential(names: list[str]) -> bool:
    """True when the names read like frames of a video or a numbered walk (``frame_0001.jpg``, ``IMG_0042.JPG``).

    Rule: at least 90 % of names end in a number, with at most 3 distinct prefixes per folder, and consecutive
    numbers within a prefix are at most 5 apart at the median (frame dumps step by 1, burst shots by a few).
    """
    if len(names) < 3:
        return False
    groups: dict[str, list[int]] = {}
    numbered = 0
    for name in names:
        match = _NUMBERED.match(Path(name).with_suffix("").as_posix())
        if match:
            numbered += 1
            groups.setdefault(match.group(1), []).append(int(match.group(2)))
    if numbered < 0.9 * len(names) or len(groups) > 3 * max(1, len({str(Path(n).parent) for n in names})):
        return False
    gaps: list[int] = []
    for numbers in groups.values():
        numbers.sort()
        gaps += [b - a for a, b in zip(numbers, numbers[1:])]
    if not gaps:
        return False
    gaps.sort()
    return 0 < gaps[len(gaps) // 2] <= 5
