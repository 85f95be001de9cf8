"""Image files: which files count as photos, reading them (as arrays or tensors) and writing 8-bit PNGs.

Every image adop reads or writes goes through here, so a capture set means the same files to every command and a
photo decodes the same way in ingest, training and evaluation. OpenImageIO does the decoding and encoding; it is
imported where it is used (and torch only for ``read_photo``), so the modules that only need the suffix rules import
without them.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from typing import TYPE_CHECKING

import numpy as np

from adop.errors import InputError, ShapeError, StageError
from adop.storage import atomic_path

if TYPE_CHECKING:
    from torch import Tensor

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".tif", ".tiff", ".bmp"})
"""File suffixes (lower case) of the photos a capture set may hold: JPEG, PNG, TIFF and BMP (what both OpenImageIO
and COLMAP's image reader decode; WebP is not among them, COLMAP cannot read it)."""

SYSTEM_FILES = frozenset({".DS_Store", "Thumbs.db", "desktop.ini"})
"""Files that operating systems leave in photo folders; never photos and never worth a warning."""

_PNG_FILTER_SUB = 0x10  # libpng's PNG_FILTER_SUB: one cheap filter instead of trying all five per row


@dataclass
class ImageFiles:
    """The files of a photo folder, split by suffix (names relative to the folder, sorted)."""

    images: list[Path] = field(default_factory=list)
    """Files whose suffix is in ``IMAGE_SUFFIXES``."""
    others: list[Path] = field(default_factory=list)
    """Every other visible file (sidecars, notes), left alone."""


def list_image_files(folder: Path, *, recursive: bool = False) -> ImageFiles:
    """The photo candidates of ``folder``: hidden files and folders and system files are skipped.

    Raises:
        InputError: the folder does not exist or is not a folder.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(f"the image folder {folder} does not exist or is not a folder")
    found = ImageFiles()
    paths = folder.rglob("*") if recursive else folder.iterdir()
    for path in sorted(paths):
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts) or path.name in SYSTEM_FILES or not path.is_file():
            continue
        (found.images if path.suffix.lower() in IMAGE_SUFFIXES else found.others).append(relative)
    return found


def read_image(path: str | os.PathLike[str], dtype: str = "uint8") -> np.ndarray:
    """Read any image OpenImageIO knows as an ``H×W×C`` array: ``"uint8"``, or ``"float"`` (8-bit files in [0, 1]).

    Without OpenImageIO (a machine that only trains and renders) Pillow reads 8-bit JPEG/PNG/TIFF/BMP instead.

    Raises:
        InputError: the file cannot be opened or decoded.
    """
    try:
        import OpenImageIO as oiio
    except ImportError:
        return _read_with_pillow(Path(path), dtype)
    image = oiio.ImageInput.open(str(path))
    if image is None:
        raise InputError(f"{path}: cannot read the image ({oiio.geterror()})")
    try:
        pixels = image.read_image(dtype)
    finally:
        image.close()
    if pixels is None:
        raise InputError(f"{path}: cannot decode the image ({oiio.geterror()})")
    return np.asarray(pixels)


def _read_with_pillow(path: Path, dtype: str) -> np.ndarray:
    try:
        from PIL import Image
    except ImportError:
        raise InputError(f"{path}: neither OpenImageIO nor Pillow is installed to read images") from None
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB") if image.mode not in ("L", "RGB", "RGBA") else image)
    except OSError as error:
        raise InputError(f"{path}: cannot read the image ({error})") from None
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    return pixels.astype(np.float32) / 255.0 if dtype == "float" else pixels.astype(np.uint8)


def read_photo(path: Path, scale: float = 1.0) -> Tensor:
    """Read an 8-bit RGB photo as ``[3, H, W]`` uint8, optionally area-downscaled by ``scale``.

    Grey photos are repeated to three channels and alpha is dropped.

    Raises:
        InputError: the file cannot be read.
    """
    import torch
    import torch.nn.functional as F

    arr = read_image(path, "uint8")
    if arr.ndim == 2:
        arr = arr[:, :, None]
    arr = np.repeat(arr, 3, axis=2) if arr.shape[2] == 1 else arr[:, :, :3]
    photo = torch.from_numpy(np.ascontiguousarray(arr)).permute(2, 0, 1).contiguous()
    if scale != 1.0:
        h, w = photo.shape[1:]
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        small = F.interpolate(photo[None].float(), size=size, mode="area")[0]
        photo = small.round().clamp(0, 255).to(torch.uint8)
    return photo


def to_uint8(image: np.ndarray) -> np.ndarray:
    """``H×W×C`` uint8 from uint8 or float display values in [0, 1] (clipped, NaN → 0, rounded).

    Raises:
        ShapeError: not ``H×W``, ``H×W×1``, ``H×W×3`` or ``H×W×4``; InputError: neither uint8 nor float.
    """
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    if arr.ndim != 3 or arr.shape[2] not in (1, 3, 4):
        raise ShapeError(f"an image must be H×W, H×W×1, H×W×3 or H×W×4, got {list(arr.shape)}")
    if arr.dtype == np.uint8:
        return np.ascontiguousarray(arr)
    if not np.issubdtype(arr.dtype, np.floating):
        raise InputError(f"8-bit output takes uint8 or float images in [0, 1], got dtype {arr.dtype}")
    return np.ascontiguousarray(np.round(np.clip(np.nan_to_num(arr), 0.0, 1.0) * 255.0).astype(np.uint8))


def write_png(path: str | os.PathLike[str], image: np.ndarray, *, compression_level: int = 1) -> Path:
    """Write an 8-bit sRGB PNG atomically (temporary name, then rename).

    Args:
        path: final file name.
        image: ``H×W×{1,3,4}`` uint8, or float display values in [0, 1] (e.g. the tonemapper's output).
        compression_level: zlib level 0–9. With the SUB row filter, level 1 writes a 1080p frame about three times
            faster than OpenImageIO's defaults (all filters, level 6) for about 5 % more bytes.

    Raises:
        ShapeError, InputError: unusable image; StageError: OpenImageIO could not write.
    """
    path = Path(path)
    pixels = to_uint8(image)
    try:
        import OpenImageIO as oiio
    except ImportError:  # a machine that only trains and renders: Pillow writes the same 8-bit PNG
        from PIL import Image

        with atomic_path(path) as tmp:
            Image.fromarray(pixels[:, :, 0] if pixels.shape[2] == 1 else pixels).save(
                tmp, format="PNG", compress_level=int(compression_level))
        return path
    h, w, c = pixels.shape
    spec = oiio.ImageSpec(w, h, c, "uint8")
    spec.attribute("png:compressionLevel", int(compression_level))
    spec.attribute("png:filter", _PNG_FILTER_SUB)
    spec.attribute("oiio:ColorSpace", "srgb_rec709_scene")
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create("png")
        if out is None or not out.open(str(tmp), spec):
            raise StageError(f"{path}: cannot open for writing ({oiio.geterror() or (out and out.geterror())})")
        ok = out.write_image(pixels)
        err = out.geterror()
        out.close()
        if not ok:
            raise StageError(f"{path}: PNG write failed ({err})")
    return path
