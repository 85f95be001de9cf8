"""Movies from a PNG sequence with the wheel's ffmpeg: probed back (frames, fps, codec), failures leave nothing."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from adop.deliver import encode_video, ffmpeg_version, frame_name, probe_video
from adop.images import write_png
from adop.errors import InputError, StageError


def _sequence(folder: Path, n: int = 12, w: int = 64, h: int = 48, first: int = 1001) -> list[Path]:
    files = []
    for i in range(n):
        img = np.zeros((h, w, 3), np.uint8)
        img[:, (5 * i) % w : (5 * i) % w + 6] = 255  # a moving bar, so frames differ
        img[..., 1] = 10 * i
        files.append(write_png(folder / frame_name("shot", first + i, "png"), img))
    return files


@pytest.mark.parametrize(
    ("codec", "ext", "want"),
    [("h264", "mp4", ("h264", "High", "avc1", "yuv420p")), ("prores", "mov", ("prores", "HQ", "apch", "yuv422p10le"))],
)
def test_encode_and_probe(tmp_path, codec, ext, want) -> None:
    files = _sequence(tmp_path)
    out = encode_video(files, tmp_path / "out" / f"shot.{ext}", fps=24, codec=codec)
    info = probe_video(out)
    assert (info.codec, info.profile, info.codec_tag, info.pix_fmt) == want
    assert (info.width, info.height, info.frame_count, info.fps) == (64, 48, 12, 24.0)
    assert info.duration_s == pytest.approx(0.5, abs=0.05)
    assert [p.name for p in out.parent.iterdir()] == [out.name]  # no temporary files left


def test_odd_size_and_ntsc_rate(tmp_path) -> None:
    files = _sequence(tmp_path, n=5, w=33, h=21, first=1)
    info = probe_video(encode_video(files, tmp_path / "odd.mp4", fps=Fraction(24000, 1001)))
    assert (info.width, info.height, info.frame_count) == (34, 22, 5)  # padded to even
    assert info.fps == pytest.approx(23.98, abs=0.01)


def test_ffmpeg_failure_is_clear_and_leaves_no_movie(tmp_path) -> None:
    files = _sequence(tmp_path, n=6)
    files[3].write_bytes(b"not a png at all")  # ffmpeg's png decoder really rejects this
    out = tmp_path / "movies" / "shot.mov"
    with pytest.raises(StageError, match=r"ffmpeg failed to encode shot\.mov.*exit code") as info:
        encode_video(files, out, fps=24, codec="prores")
    assert "Invalid" in str(info.value)  # the tail of ffmpeg's own log
    assert list(out.parent.iterdir()) == []


def test_bad_inputs(tmp_path) -> None:
    files = _sequence(tmp_path, n=3)
    with pytest.raises(InputError, match="not contiguous"):
        encode_video([files[0], files[2]], tmp_path / "a.mp4", fps=24)
    with pytest.raises(InputError, match="codec"):
        encode_video(files, tmp_path / "a.mp4", fps=24, codec="vp9")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="crf"):
        encode_video(files, tmp_path / "a.mp4", fps=24, crf=99)
    with pytest.raises(InputError, match="not writable"):
        encode_video(files, files[0] / "a.mp4", fps=24)
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a movie")
    with pytest.raises(InputError, match="not a readable movie"):
        probe_video(fake)
    assert ffmpeg_version() != "unknown"
