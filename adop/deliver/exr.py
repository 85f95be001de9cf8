"""Linear-HDR frames as half-float OpenEXR, with the camera and colour metadata compositors expect.

Scene-linear half-float EXR is the plate/CG norm; none of the peer tools deliver a linear EXR
sequence from a camera path (docs/method.md §12), which is why the metadata is complete:

* ``chromaticities``: Rec.709 / sRGB primaries, D65 white — the HDR is relative radiance in linearised camera sRGB
  (docs/conventions.md), and ``oiio:ColorSpace`` = ``lin_rec709_scene`` says the same to OCIO-aware tools.
* ``worldToCamera`` / ``worldToNDC``: OpenEXR's standard camera matrices. OpenEXR's camera space is x right, y **up**,
  z forward (RenderMan), and Imath multiplies row vectors (``p' = p · M``, translation in the last row), so the stored
  matrices are the transposes of our column-vector ones with camera y flipped. NDC has (0, 0) at the display window's
  top-left and (1, 1) at its bottom-right; ``ndc = (p · M).xy / w``.
* ``adop:worldToCameraCV`` (4×4, row-major, column vectors, OpenCV axes) and ``adop:intrinsics`` (fx, fy, cx, cy):
  our conventions verbatim, so no-one has to untangle the above.
* ``FramesPerSecond`` (rational), ``adop:frame``, ``adop:ev`` (EV100 the frame is exposed for), ``Software``.

Compression: PIZ (default; lossless, best on noisy photographic content) or ZIP; both lossless on half data.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any, Literal

import numpy as np
import OpenImageIO as oiio

import adop
from adop.deliver.frames import fps_fraction
from adop.errors import InputError, ShapeError, StageError
from adop.storage import atomic_path

logger = logging.getLogger(__name__)

ExrCompression = Literal["piz", "zip", "zips", "none"]
REC709_CHROMATICITIES: tuple[float, ...] = (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290)
HALF_MAX = 65504.0
_FLIP_Y = np.diag([1.0, -1.0, 1.0, 1.0])


@dataclass(frozen=True)
class ExrFrame:
    """An EXR read back: pixels and header, for tests and checks.

    Attributes:
        pixels: ``H×W×C`` float32.
        pixel_type: stored channel type (``"half"`` for our frames).
        compression: the file's compression name.
        attributes: every header attribute by name (matrices as ``[4, 4]`` arrays in the file's own layout).
    """

    pixels: np.ndarray
    pixel_type: str
    compression: str
    attributes: Mapping[str, Any]


def exr_camera_matrices(
    world_to_camera: np.ndarray, intrinsics: np.ndarray, width: int, height: int
) -> tuple[np.ndarray, np.ndarray]:
    """OpenEXR's ``worldToCamera`` and ``worldToNDC`` (Imath row-vector layout) for an OpenCV pinhole camera.

    Args:
        world_to_camera: ``[4, 4]`` (or ``[3, 4]``) world→camera, OpenCV axes.
        intrinsics: ``[4]`` PINHOLE ``(fx, fy, cx, cy)`` in pixels.
        width: image width in pixels (NDC x = u / width).
        height: image height in pixels (NDC y = v / height).
    """
    w2c = np.eye(4)
    w2c[:3] = np.asarray(world_to_camera, dtype=np.float64)[:3]
    fx, fy, cx, cy = (float(v) for v in intrinsics)
    # column-vector projection to (u·z/W, v·z/H, 1, z): NDC after dividing by w=z; z/w = 1/depth keeps it invertible
    proj = np.array([[fx / width, 0, cx / width, 0], [0, fy / height, cy / height, 0], [0, 0, 0, 1], [0, 0, 1, 0]])
    return (_FLIP_Y @ w2c).T, (proj @ w2c).T


def write_exr(
    path: str | os.PathLike[str],
    image: np.ndarray,
    *,
    world_to_camera: np.ndarray | None = None,
    intrinsics: np.ndarray | None = None,
    frame: int | None = None,
    fps: float | Fraction | None = None,
    ev: float | None = None,
    compression: ExrCompression = "piz",
    attributes: Mapping[str, str | int | float] | None = None,
) -> Path:
    """Write a linear HDR frame as a half-float EXR, atomically.

    Args:
        path: final file name, normally `adop.deliver.frames.frame_name(stem, frame, "exr")`.
        image: ``H×W×3`` (RGB) or ``H×W×4`` (RGBA) scene-linear floats.
        world_to_camera: ``[4, 4]`` world→camera (OpenCV axes) of the frame's camera; needs ``intrinsics``.
        intrinsics: ``[4]`` PINHOLE ``(fx, fy, cx, cy)`` in pixels.
        frame: frame number (``adop:frame``).
        fps: frame rate (``FramesPerSecond``); 23.976 and friends are stored as n·1000/1001.
        ev: EV100 the HDR values are exposed for (``adop:ev``).
        compression: ``piz`` (default) or ``zip``/``zips`` (lossless); ``none`` for speed tests.
        attributes: extra header attributes, e.g. ``{"adop:job": "show_seq_shot_adop_v003"}``.

    Returns:
        ``path``.

    Raises:
        ShapeError: not H×W×3/4. InputError: camera given without intrinsics or bad compression.
        StageError: OpenImageIO failed to write (the message carries its error).
    """
    path = Path(path)
    img = np.asarray(image)
    if img.ndim != 3 or img.shape[2] not in (3, 4) or img.shape[0] < 1 or img.shape[1] < 1:
        raise ShapeError(f"EXR frames must be H×W×3 or H×W×4, got {list(img.shape)}")
    if compression not in ("piz", "zip", "zips", "none"):
        raise InputError(f"EXR compression must be piz, zip, zips or none, got {compression!r}")
    img = img.astype(np.float32, copy=False)
    if not np.isfinite(img).all():
        logger.warning("%s: %d non-finite pixel values written as they are", path.name, int((~np.isfinite(img)).sum()))
    if (np.abs(img[np.isfinite(img)]) > HALF_MAX).any():
        logger.warning("%s: values above %g clipped to the half-float range", path.name, HALF_MAX)
        img = np.clip(img, -HALF_MAX, HALF_MAX)
    h, w, c = img.shape
    spec = oiio.ImageSpec(w, h, c, "half")
    spec.channelnames = ("R", "G", "B", "A")[:c]
    if c == 4:
        spec.alpha_channel = 3
    spec.attribute("compression", compression)
    spec.attribute("chromaticities", oiio.TypeDesc("float[8]"), list(REC709_CHROMATICITIES))
    spec.attribute("oiio:ColorSpace", "lin_rec709_scene")
    spec.attribute("Software", f"adop {adop.__version__}")
    if (world_to_camera is None) != (intrinsics is None):
        raise InputError("write_exr: give both world_to_camera and intrinsics, or neither")
    if world_to_camera is not None and intrinsics is not None:
        w2c_exr, w2ndc = exr_camera_matrices(world_to_camera, intrinsics, w, h)
        matrix = oiio.TypeDesc("matrix")
        spec.attribute("worldToCamera", matrix, w2c_exr.reshape(-1).tolist())
        spec.attribute("worldToNDC", matrix, w2ndc.reshape(-1).tolist())
        w2c = np.eye(4)
        w2c[:3] = np.asarray(world_to_camera, dtype=np.float64)[:3]
        spec.attribute("adop:worldToCameraCV", matrix, w2c.reshape(-1).tolist())
        spec.attribute("adop:intrinsics", oiio.TypeDesc("float[4]"), [float(v) for v in intrinsics])
    if frame is not None:
        spec.attribute("adop:frame", int(frame))
    if fps is not None:
        rate = fps_fraction(fps)
        spec.attribute("FramesPerSecond", oiio.TypeDesc("rational"), [rate.numerator, rate.denominator])
    if ev is not None:
        spec.attribute("adop:ev", float(ev))
    for key, value in (attributes or {}).items():
        spec.attribute(key, value)
    with atomic_path(path) as tmp:
        out = oiio.ImageOutput.create("openexr")
        if out is None or not out.open(str(tmp), spec):
            raise StageError(f"{path}: cannot open for writing ({oiio.geterror() or (out and out.geterror())})")
        ok = out.write_image(np.ascontiguousarray(img))
        err = out.geterror()
        out.close()
        if not ok:
            raise StageError(f"{path}: EXR write failed ({err})")
    return path


def read_exr(path: str | os.PathLike[str]) -> ExrFrame:
    """Read an EXR's pixels (float32) and header; matrices come back as ``[4, 4]`` arrays in the file's layout."""
    inp = oiio.ImageInput.open(str(path))
    if inp is None:
        raise InputError(f"{path}: cannot read EXR ({oiio.geterror()})")
    try:
        spec = inp.spec()
        pixels = inp.read_image("float")
    finally:
        inp.close()
    attrs: dict[str, Any] = {}
    for a in spec.extra_attribs:
        val = a.value
        if str(a.type) == "matrix":
            val = np.array(val, dtype=np.float64).reshape(4, 4)
        attrs[a.name] = val
    return ExrFrame(pixels, str(spec.format), str(attrs.get("compression", "")), attrs)
