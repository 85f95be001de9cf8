"""``delivery.json``: the manifest that lets a studio check a delivery is complete and know how it was made.

It lists every delivered file with its size and SHA-256 (so a copy to the facility can be verified), the frame range,
frame rate and resolution, the camera path (our JSON, so the shot can be re-rendered), the model's held-out metrics,
and the software versions. Paths are relative to the manifest's folder, so the delivery can be moved as a whole.
"""

from __future__ import annotations

import datetime
import os
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import OpenImageIO as oiio

import adop
from adop.deliver.video import ffmpeg_version
from adop.errors import InputError
from adop.paths.camera_path import read_json_file
from adop.storage import sha256_file, write_json_atomic

MANIFEST_NAME = "delivery.json"
MANIFEST_VERSION = 1


def file_entry(file: Path, root: Path) -> dict[str, Any]:
    """``{"path", "bytes", "sha256"}`` for one file, its path relative to ``root`` when inside it."""
    try:
        rel = file.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        rel = str(file.resolve())
    return {"path": rel, "bytes": file.stat().st_size, "sha256": sha256_file(file)}


def write_manifest(
    folder: str | os.PathLike[str],
    *,
    files: Sequence[str | os.PathLike[str]],
    frame_range: tuple[int, int],
    fps: float,
    width: int,
    height: int,
    camera_path: Mapping[str, Any] | None,
    metrics: Mapping[str, float],
    extra: Mapping[str, Any] | None = None,
    name: str = MANIFEST_NAME,
) -> Path:
    """Write ``folder/delivery.json`` atomically and return its path.

    Args:
        folder: the delivery folder (the manifest's paths are relative to it).
        files: every delivered file (frames, movies, contact sheet, path JSON); each must exist.
        frame_range: ``(first, last)`` frame numbers, inclusive.
        fps: frame rate.
        width: frame width in pixels.
        height: frame height in pixels.
        camera_path: the path document (`adop.paths.CameraPath.to_json`), or None.
        metrics: the model's held-out metrics, e.g. ``{"psnr": 27.1, "ssim": 0.86, "lpips": 0.12}``.
        extra: further top-level fields (job id, tonemapper used for the LDR frames, notes).
        name: manifest file name.

    Raises:
        InputError: a listed file does not exist, or the frame range is reversed.
    """
    root = Path(folder)
    if frame_range[1] < frame_range[0]:
        raise InputError(f"frame range {frame_range[0]}-{frame_range[1]} is reversed")
    missing = [str(f) for f in files if not Path(f).is_file()]
    if missing:
        raise InputError(f"cannot list missing files in the manifest: {', '.join(missing[:5])}")
    entries = sorted((file_entry(Path(f), root) for f in files), key=lambda e: e["path"])
    doc: dict[str, Any] = {
        "format": "adop.delivery",
        "version": MANIFEST_VERSION,
        "created_utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "frame_range": {
            "first": int(frame_range[0]),
            "last": int(frame_range[1]),
            "count": int(frame_range[1] - frame_range[0] + 1),
        },
        "fps": float(fps),
        "resolution": {"width": int(width), "height": int(height)},
        "metrics": {k: float(v) for k, v in metrics.items()},
        "software": {
            "adop": adop.__version__,
            "ffmpeg": ffmpeg_version(),
            "openimageio": oiio.__version__,
            "python": platform.python_version(),
        },
        "files": entries,
        "camera_path": dict(camera_path) if camera_path is not None else None,
    }
    for key, value in (extra or {}).items():
        doc.setdefault(key, value)
    return write_json_atomic(root / name, doc)


def verify_manifest(manifest: str | os.PathLike[str]) -> list[str]:
    """Re-check every listed file's presence, size and checksum; return the problems (empty when all is well)."""
    path = Path(manifest)
    doc = read_json_file(path)
    problems = []
    for entry in doc.get("files", []):
        file = path.parent / entry["path"]
        if not file.is_file():
            problems.append(f"{entry['path']}: missing")
        elif file.stat().st_size != entry["bytes"]:
            problems.append(f"{entry['path']}: size {file.stat().st_size} != {entry['bytes']}")
        elif sha256_file(file) != entry["sha256"]:
            problems.append(f"{entry['path']}: checksum differs")
    return problems
