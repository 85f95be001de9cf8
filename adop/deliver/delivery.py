"""The ``deliver`` stage as one library call: movies, contact sheet, path file and manifest from rendered frames.

The flow's task wraps `make_deliverables`; everything it writes is atomic (see `adop.storage`), and the
manifest is written last, so a delivery folder with a ``delivery.json`` is complete and verifiable.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import OpenImageIO as oiio

from adop.deliver.contact_sheet import make_contact_sheet
from adop.deliver.frames import sequence_info
from adop.deliver.manifest import MANIFEST_NAME, write_manifest
from adop.deliver.video import VideoCodec, encode_video, probe_video
from adop.errors import StageError
from adop.paths.camera_path import CameraPath
from adop.storage import ensure_writable_dir, write_json_atomic

logger = logging.getLogger(__name__)

_EXT = {"h264": "mp4", "prores": "mov"}


@dataclass(frozen=True)
class Delivery:
    """What `make_deliverables` wrote.

    Attributes:
        folder: the delivery folder.
        movies: codec → movie file.
        contact_sheet: the contact sheet PNG.
        camera_path: the path JSON, or None when no path was given.
        manifest: ``delivery.json``.
        frame_range: ``(first, last)`` frame numbers.
    """

    folder: Path
    movies: Mapping[str, Path]
    contact_sheet: Path
    camera_path: Path | None
    manifest: Path
    frame_range: tuple[int, int]


def make_deliverables(
    ldr_frames: Sequence[str | os.PathLike[str]],
    folder: str | os.PathLike[str],
    *,
    name: str,
    fps: float,
    hdr_frames: Sequence[str | os.PathLike[str]] = (),
    camera_path: CameraPath | Mapping[str, Any] | None = None,
    metrics: Mapping[str, float] | None = None,
    codecs: Sequence[VideoCodec] = ("h264", "prores"),
    crf: int = 18,
    extra: Mapping[str, Any] | None = None,
) -> Delivery:
    """Encode the movies, draw the contact sheet, save the path and write ``delivery.json`` into ``folder``.

    Args:
        ldr_frames: the tonemapped PNG sequence (``name.1001.png`` …).
        folder: delivery folder; created if missing, checked for writability first.
        name: base name of the movies and sheet (e.g. ``show_seq_shot_adop_v003``).
        fps: frame rate of the sequence.
        hdr_frames: the EXR sequence, listed (with checksums) in the manifest when given.
        camera_path: the rendered path; saved as ``<name>_camera_path.json`` and embedded in the manifest.
        metrics: the model's held-out metrics for the manifest.
        codecs: which movies to make.
        crf: x264 quality for the review movie.
        extra: further manifest fields (e.g. ``{"tonemapper": "learned", "job": ...}``).

    Raises:
        InputError: unwritable folder, bad or gappy sequence, a disk too full. StageError: ffmpeg failed.
    """
    out = ensure_writable_dir(folder)
    files = [Path(f) for f in ldr_frames]
    _, _, _, first, count = sequence_info(files)
    if hdr_frames:
        _, _, _, hdr_first, hdr_count = sequence_info([Path(f) for f in hdr_frames])
        if (hdr_first, hdr_count) != (first, count):
            raise StageError(
                f"EXR frames {hdr_first}+{hdr_count} and PNG frames {first}+{count} do not match; "
                "re-render the missing frames"
            )
    movies: dict[str, Path] = {}
    videos: dict[str, Any] = {}
    for codec in codecs:
        start = time.perf_counter()
        movie = encode_video(files, out / f"{name}.{_EXT[codec]}", fps=fps, codec=codec, crf=crf)
        info = probe_video(movie)
        if info.frame_count != count:
            raise StageError(f"{movie.name} has {info.frame_count} frames, expected {count}; check the PNG frames")
        movies[codec] = movie
        videos[movie.name] = dataclasses.asdict(info)
        logger.info("encoded %s (%d frames) in %.1f s", movie.name, count, time.perf_counter() - start)
    sheet = make_contact_sheet(files, out / f"{name}_contact_sheet.png")
    path_doc = camera_path.to_json() if isinstance(camera_path, CameraPath) else camera_path
    path_file = write_json_atomic(out / f"{name}_camera_path.json", path_doc) if path_doc is not None else None
    listed = [*files, *(Path(f) for f in hdr_frames), *movies.values(), sheet.path]
    if path_file is not None:
        listed.append(path_file)
    width, height = probe_size(files[0])
    manifest = write_manifest(
        out,
        files=listed,
        frame_range=(first, first + count - 1),
        fps=fps,
        width=width,
        height=height,
        camera_path=path_doc,
        metrics=metrics or {},
        extra={"videos": videos, "contact_sheet_frames": list(sheet.frame_numbers), **(extra or {})},
        name=MANIFEST_NAME,
    )
    return Delivery(out, movies, sheet.path, path_file, manifest, (first, first + count - 1))


def probe_size(image: Path) -> tuple[int, int]:
    """Width and height of an image file from its header."""
    inp = oiio.ImageInput.open(str(image))
    if inp is None:
        raise StageError(f"{image}: cannot read ({oiio.geterror()})")
    spec = inp.spec()
    inp.close()
    return spec.width, spec.height
