"""Review and editorial movies from the LDR PNG sequence, with the ffmpeg that the imageio-ffmpeg wheel ships.

* H.264 MP4 for review: yuv420p, High profile, CRF 18, BT.709 tags, ``+faststart`` (web/ShotGrid style).
* ProRes 422 HQ MOV for editorial: ``prores_ks`` profile 3 (FourCC ``apch``), yuv422p10le.

(docs/method.md §12.) The wheel's static ffmpeg works offline and has libx264 and prores_ks; it has
no ffprobe, so `probe_video` reads ``ffmpeg -i`` output and counts packets with a stream copy. Odd frame sizes are
padded by one pixel (4:2:0 and 4:2:2 need an even width, 4:2:0 an even height). Movies are written under a temporary
name and renamed only when ffmpeg succeeds *and* the movie holds every frame (``-xerror`` stops on a corrupt frame,
and the probe catches frames ffmpeg would skip silently); on failure the temporary file is removed and the error
carries the tail of ffmpeg's log.
"""

from __future__ import annotations

import functools
import os
import re
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Literal

import imageio_ffmpeg

from adop.deliver.frames import fps_fraction, frame_pattern, sequence_info
from adop.images import read_image
from adop.errors import InputError, StageError
from adop.storage import atomic_path, ensure_free_space, ensure_writable_dir

VideoCodec = Literal["h264", "prores"]

# bytes per pixel per frame, generous: x264 CRF 18 ~0.1, ProRes HQ ~0.45 at 1080p
_BYTES_PER_PIXEL = {"h264": 0.25, "prores": 0.8}
_MARGIN_BYTES = 32 * 1024 * 1024


@dataclass(frozen=True)
class VideoInfo:
    """What `probe_video` reads back from a movie.

    Attributes:
        codec: ffmpeg's codec name (``h264``, ``prores``).
        profile: codec profile as ffmpeg prints it (``High``, ``HQ``), or ``""``.
        codec_tag: container FourCC (``avc1``, ``apch``), or ``""``.
        pix_fmt: pixel format (``yuv420p``, ``yuv422p10le``).
        width: frame width in pixels.
        height: frame height in pixels.
        fps: frame rate as ffmpeg states it.
        frame_count: number of video packets (= frames for these intra/inter codecs).
        duration_s: container duration in seconds.
    """

    codec: str
    profile: str
    codec_tag: str
    pix_fmt: str
    width: int
    height: int
    fps: float
    frame_count: int
    duration_s: float


def ffmpeg_exe() -> str:
    """Path of the ffmpeg binary from the imageio-ffmpeg wheel (or ``IMAGEIO_FFMPEG_EXE`` if set)."""
    return imageio_ffmpeg.get_ffmpeg_exe()


@functools.lru_cache(maxsize=1)
def ffmpeg_version() -> str:
    """ffmpeg's version string, for the delivery manifest."""
    out = subprocess.run([ffmpeg_exe(), "-version"], capture_output=True, text=True, check=False).stdout
    m = re.match(r"ffmpeg version (\S+)", out)
    return m.group(1) if m else "unknown"


def _codec_args(codec: VideoCodec, crf: int) -> tuple[list[str], str, str]:
    """ffmpeg output arguments, the pixel format, and the muxer for one codec."""
    if codec == "h264":
        return (
            ["-c:v", "libx264", "-preset", "medium", "-crf", str(crf), "-profile:v", "high", "-movflags", "+faststart"],
            "yuv420p",
            "mp4",
        )
    if codec == "prores":
        return ["-c:v", "prores_ks", "-profile:v", "3", "-vendor", "apl0"], "yuv422p10le", "mov"
    raise InputError(f"video codec must be 'h264' or 'prores', got {codec!r}")


def encode_video(
    frames: Sequence[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    fps: float | Fraction | str,
    codec: VideoCodec = "h264",
    crf: int = 18,
    timeout_s: float | None = None,
) -> Path:
    """Encode a contiguous PNG sequence (``name.1001.png`` …) into an H.264 MP4 or a ProRes 422 HQ MOV.

    Args:
        frames: the frame files, one contiguous ``stem.####.ext`` sequence in one folder (any order).
        output: final movie path (``.mp4`` for h264, ``.mov`` for prores by convention; the muxer is set explicitly).
        fps: frame rate; 23.976/29.97/59.94 are encoded as exact n·1000/1001 rates.
        codec: ``"h264"`` (review) or ``"prores"`` (ProRes 422 HQ, editorial).
        crf: x264 constant rate factor (lower is better; 16–20 is the studio range). Ignored for ProRes.
        timeout_s: kill ffmpeg after this many seconds (None: no limit).

    Returns:
        ``output``.

    Raises:
        InputError: no frames, a gap in the sequence, an unwritable output folder, too little disk space.
        StageError: ffmpeg failed (with the tail of its log); no movie is left behind.
    """
    output = Path(output)
    folder, stem, ext, first, count = sequence_info([Path(f) for f in frames])
    width_digits = len(Path(frames[0]).name) - len(stem) - len(ext) - 2
    args, pix_fmt, muxer = _codec_args(codec, crf)
    if not 0 <= crf <= 51:
        raise InputError(f"crf must be in 0..51 (x264; 16-20 is the studio range), got {crf}")
    ensure_writable_dir(output.parent)
    h, w = read_image(folder / Path(frames[0]).name).shape[:2] if count else (0, 0)
    ensure_free_space(output.parent, int(count * w * h * _BYTES_PER_PIXEL[codec]) + _MARGIN_BYTES, output.name)
    rate = fps_fraction(fps)
    vf = (
        f"pad=ceil(iw/2)*2:ceil(ih/2)*2,scale=out_color_matrix=bt709:out_range=tv,format={pix_fmt},"
        "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709"
    )  # tags as studios expect
    with atomic_path(output) as tmp:
        cmd = [
            ffmpeg_exe(), "-hide_banner", "-nostdin", "-y", "-loglevel", "error", "-xerror",
            "-framerate", f"{rate.numerator}/{rate.denominator}", "-start_number", str(first),
            "-i", str(folder / frame_pattern(stem, ext, width_digits)),
            "-frames:v", str(count), "-vf", vf, *args, "-pix_fmt", pix_fmt,
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
            "-metadata", "encoder=adop", "-f", muxer, str(tmp),
        ]  # fmt: skip
        _run_ffmpeg(cmd, f"encode {output.name} from {folder / frame_pattern(stem, ext, width_digits)}", timeout_s)
        got = probe_video(tmp).frame_count  # ffmpeg can skip an undecodable frame and still succeed
        if got != count:
            raise StageError(
                f"ffmpeg wrote {got} of {count} frames into {output.name}; a frame of "
                f"{folder / frame_pattern(stem, ext, width_digits)} is probably unreadable"
            )
    return output


def _run_ffmpeg(cmd: list[str], what: str, timeout_s: float | None) -> str:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, errors="replace", timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired as exc:
        raise StageError(f"ffmpeg did not finish ({what}) within {timeout_s} s; it was stopped") from exc
    except OSError as exc:
        raise StageError(f"cannot run ffmpeg at {cmd[0]} ({exc}); reinstall the imageio-ffmpeg wheel") from exc
    if proc.returncode != 0:
        tail = "\n".join(proc.stderr.strip().splitlines()[-12:])
        raise StageError(f"ffmpeg failed to {what} (exit code {proc.returncode}):\n{tail}")
    return proc.stderr


_STREAM_RE = re.compile(
    r"Stream #\d+:\d+.*?: Video: (?P<codec>\w+)(?: \((?P<profile>[^)]*)\))?(?: \((?P<tag>\w+) / 0x[0-9a-fA-F]+\))?"
    r", (?P<pix>\w+)(?:\([^)]*\))?, (?P<w>\d+)x(?P<h>\d+)"
)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Read codec, size, frame rate and frame count of a movie (no ffprobe needed).

    One ffmpeg call: the input description gives the stream line, and a stream copy to the null muxer counts the
    packets without decoding, so long movies probe fast.

    Raises:
        InputError: the file is missing or not a movie ffmpeg can read.
    """
    path = Path(path)
    if not path.is_file():
        raise InputError(f"{path}: no such movie")
    cmd = [ffmpeg_exe(), "-hide_banner", "-nostdin", "-i", str(path), "-map", "0:v:0", "-c", "copy", "-f", "null", "-"]
    try:
        log = _run_ffmpeg(cmd, f"read {path.name}", timeout_s=600)
    except StageError as exc:
        raise InputError(f"{path}: not a readable movie ({exc})") from exc
    stream = _STREAM_RE.search(log)
    if stream is None:
        raise InputError(f"{path}: ffmpeg found no video stream")
    fps_m = re.search(r"(\d+(?:\.\d+)?)\s+fps", log[stream.start() :])
    frames_m = re.findall(r"frame=\s*(\d+)", log)
    dur_m = re.search(r"Duration: (\d+):(\d+):(\d+(?:\.\d+)?)", log)
    duration = float(dur_m[1]) * 3600 + float(dur_m[2]) * 60 + float(dur_m[3]) if dur_m else 0.0
    return VideoInfo(
        codec=stream["codec"],
        profile=stream["profile"] or "",
        codec_tag=stream["tag"] or "",
        pix_fmt=stream["pix"],
        width=int(stream["w"]),
        height=int(stream["h"]),
        fps=float(fps_m[1]) if fps_m else 0.0,
        frame_count=int(frames_m[-1]) if frames_m else 0,
        duration_s=duration,
    )
