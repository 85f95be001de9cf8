"""Ingest: check a capture set and bring it into the workspace.

A capture set is a folder of photos, or a folder holding ``images/``. Every candidate file is opened and fully decoded
with OpenImageIO, so corrupt and truncated files are found here rather than deep inside SfM (which skips them with
only a log line). Bad files are skipped with a warning that lists them; if fewer than ``min_images`` usable photos
remain, ingest stops with a clear error. Photos of different sizes are fine: each size becomes its own camera group.

The artifact holds ``images/`` (copy-on-write clones of the originals where the file system supports them, copies
otherwise: never hard links, so editing the workspace can never change a user's photo) and ``capture.json``,
documented in ``write_capture_manifest``.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

import OpenImageIO as oiio

from adop.config import Config, require
from adop.errors import InputError
from adop.exif import exposure_from_spec
from adop.images import list_image_files
from adop.storage import clone_or_copy, write_text_atomic

log = logging.getLogger(__name__)



@dataclass(frozen=True)
class IngestConfig(Config):
    """How strict ingest is."""

    min_images: int = 3
    """Fewer usable photos than this is an error (SfM cannot register fewer than three)."""
    max_megapixels: float = 400.0
    """A photo declaring more pixels than this is skipped before it is decoded (a few-KB file can declare a
    60000×60000 image and ask for gigabytes); 400 MP is above any camera a capture set comes from."""

    def validate(self) -> None:
        require(self.min_images >= 3, f"IngestConfig.min_images must be >= 3 (SfM needs three photos), got {self.min_images}")
        require(self.max_megapixels > 0, "IngestConfig.max_megapixels must be positive")


@dataclass(frozen=True)
class CapturedImage:
    """One usable photo of the capture set."""

    name: str
    width: int
    height: int
    channels: int
    camera_group: int
    exposure_ev: float | None
    exposure_time: float | None
    f_number: float | None
    iso: float | None
    focal_length_35mm: float | None


@dataclass
class CaptureReport:
    """What ingest found: usable photos, skipped files and why, camera groups by image size."""

    source: str
    images: list[CapturedImage] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    camera_groups: list[tuple[int, int]] = field(default_factory=list)

    @property
    def missing_exif(self) -> list[str]:
        return [image.name for image in self.images if image.exposure_ev is None]

    def to_dict(self) -> dict:
        return {
            "source": self.source,
            "images": [asdict(image) for image in self.images],
            "skipped": self.skipped,
            "camera_groups": [{"width": w, "height": h} for w, h in self.camera_groups],
            "missing_exif": self.missing_exif,
        }


def find_image_dir(capture_dir: Path) -> Path:
    """The folder that holds the photos: ``capture_dir/images`` if present, else ``capture_dir`` itself."""
    capture_dir = Path(capture_dir).expanduser()
    if not capture_dir.exists():
        raise InputError(f"capture folder {capture_dir} does not exist; check the path")
    if not capture_dir.is_dir():
        raise InputError(f"{capture_dir} is a file, not a folder; pass the folder that holds the photos")
    nested = capture_dir / "images"
    return nested if nested.is_dir() else capture_dir


def _inspect(path: Path, max_megapixels: float) -> tuple[oiio.ImageSpec | None, str | None]:
    """Open and fully decode one photo (unless its header declares too many pixels); return its spec, or the reason
    it cannot be used."""
    if path.stat().st_size == 0:
        return None, "empty file (0 bytes)"
    image = oiio.ImageInput.open(str(path))
    if image is None:
        return None, f"not a readable image ({oiio.geterror().strip() or 'unknown format'})"
    try:
        spec = image.spec()
        if spec.width * spec.height > max_megapixels * 1e6:
            return None, (f"too large ({spec.width}x{spec.height} pixels, above {max_megapixels:g} MP; "
                          "IngestConfig.max_megapixels)")
        pixels = image.read_image(0, 0, 0, min(3, spec.nchannels), "uint8")
        problem = image.geterror().strip()
        if pixels is None or problem:
            return None, f"damaged or truncated image ({problem or 'decode failed'})"
        if spec.width < 16 or spec.height < 16:
            return None, f"too small ({spec.width}x{spec.height} pixels)"
        return spec, None
    finally:
        image.close()


def scan_capture(capture_dir: Path, config: IngestConfig = IngestConfig()) -> tuple[Path, CaptureReport]:
    """Inspect every photo of a capture set (``find_image_dir``); raise ``InputError`` when too few are usable."""
    image_dir = find_image_dir(capture_dir)
    return image_dir, scan_photos(image_dir, config)


def scan_photos(image_dir: Path, config: IngestConfig = IngestConfig()) -> CaptureReport:
    """Inspect every photo directly in ``image_dir``; raise ``InputError`` when too few are usable."""
    image_dir = Path(image_dir)
    files = list_image_files(image_dir)
    candidates = [image_dir / name for name in files.images]
    report = CaptureReport(source=str(image_dir.resolve()))
    for other in files.others:
        report.skipped[other.name] = f"not an image file (extension {other.suffix or 'none'})"
    sizes: list[tuple[int, int]] = []
    for path in candidates:
        spec, problem = _inspect(path, config.max_megapixels)
        if problem is not None or spec is None:
            report.skipped[path.name] = problem or "unreadable"
            continue
        size = (spec.width, spec.height)
        if size not in sizes:
            sizes.append(size)
        exposure = exposure_from_spec(spec)
        report.images.append(
            CapturedImage(
                name=path.name,
                width=spec.width,
                height=spec.height,
                channels=spec.nchannels,
                camera_group=sizes.index(size),
                exposure_ev=exposure.ev100,
                exposure_time=exposure.exposure_time,
                f_number=exposure.f_number,
                iso=exposure.iso,
                focal_length_35mm=exposure.focal_length_35mm,
            )
        )
    report.camera_groups = sizes
    if report.skipped:
        listing = "; ".join(f"{name}: {why}" for name, why in sorted(report.skipped.items()))
        log.warning("skipping %d file(s) in %s: %s", len(report.skipped), image_dir, listing)
    if len(report.images) < config.min_images:
        found = f"only {len(report.images)} usable photo(s)" if report.images else "no usable photos"
        hint = f" (skipped: {', '.join(sorted(report.skipped))})" if report.skipped else ""
        raise InputError(
            f"{image_dir} has {found}{hint}; at least {config.min_images} overlapping JPEG/PNG/TIFF/BMP photos "
            "are needed — add photos or point to the folder that holds them"
        )
    if report.missing_exif:
        log.warning(
            "%d photo(s) have no complete exposure EXIF and start at EV 0: %s",
            len(report.missing_exif),
            ", ".join(report.missing_exif[:10]) + (" ..." if len(report.missing_exif) > 10 else ""),
        )
    if len(sizes) > 1:
        counts = Counter((i.width, i.height) for i in report.images)
        log.info("mixed image sizes, one camera per size: %s", ", ".join(f"{w}x{h}: {n}" for (w, h), n in counts.items()))
    return report


def ingest_capture(capture_dir: Path, out_dir: Path, config: IngestConfig = IngestConfig()) -> CaptureReport:
    """Validate a capture set and write the usable photos plus ``capture.json`` into ``out_dir``."""
    return ingest_photos(find_image_dir(capture_dir), out_dir, config)


def ingest_photos(image_dir: Path, out_dir: Path, config: IngestConfig = IngestConfig()) -> CaptureReport:
    """Validate the photos directly in ``image_dir`` and write the usable ones plus ``capture.json`` into ``out_dir``."""
    report = scan_photos(image_dir, config)
    images_out = Path(out_dir) / "images"
    images_out.mkdir(parents=True, exist_ok=True)
    for image in report.images:
        clone_or_copy(image_dir / image.name, images_out / image.name)
    write_capture_manifest(report, Path(out_dir) / "capture.json")
    return report


def write_capture_manifest(report: CaptureReport, path: Path) -> None:
    """``capture.json``: {source, images: [{name, width, height, channels, camera_group, exposure_ev, ...}],
    skipped: {name: reason}, camera_groups: [{width, height}], missing_exif: [names]}."""
    write_text_atomic(path, json.dumps(report.to_dict(), indent=1))


def read_capture_manifest(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
