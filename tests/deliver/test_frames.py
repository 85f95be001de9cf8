"""Frame naming, sequence checks, 8-bit PNG writing (adop.images), atomic output and folder checks (adop.storage)."""

from __future__ import annotations


import numpy as np
import pytest

from adop.deliver import frame_name, frame_pattern, hash_pattern, parse_frame_name, sequence_info
from adop.errors import InputError
from adop.images import read_image, write_png
from adop.storage import atomic_path, ensure_free_space, ensure_writable_dir


def test_frame_naming() -> None:
    assert frame_name("beauty", 1001, "exr") == "beauty.1001.exr"
    assert frame_name("show_seq_shot_v001", 7, ".png") == "show_seq_shot_v001.0007.png"
    assert frame_name("a", 12345, "png") == "a.12345.png"
    assert frame_pattern("beauty", "png") == "beauty.%04d.png"
    assert hash_pattern("beauty", "exr") == "beauty.####.exr"
    assert parse_frame_name("/x/y/beauty.v2.1042.exr") == ("beauty.v2", 1042, "exr")
    for bad in ("", "a/b", "a b", "a%d", ".hidden"):
        with pytest.raises(InputError, match="sequence name"):
            frame_name(bad, 1001, "exr")
    with pytest.raises(InputError, match="name.1001.ext"):
        parse_frame_name("beauty.exr")


def test_sequence_info_finds_gaps(tmp_path) -> None:
    files = [tmp_path / frame_name("s", n, "png") for n in (1003, 1001, 1002)]
    assert sequence_info(files) == (tmp_path, "s", "png", 1001, 3)
    with pytest.raises(InputError, match="frame 1002 is missing"):
        sequence_info([tmp_path / "s.1001.png", tmp_path / "s.1003.png"])
    with pytest.raises(InputError, match="not part of the sequence"):
        sequence_info([tmp_path / "s.1001.png", tmp_path / "t.1002.png"])


def test_png_round_trip(tmp_path) -> None:
    img = np.random.default_rng(0).random((48, 64, 3)).astype(np.float32)
    path = write_png(tmp_path / frame_name("ldr", 1001, "png"), img)
    back = read_image(path)
    assert back.dtype == np.uint8 and back.shape == (48, 64, 3)
    assert np.array_equal(back, np.round(img * 255).astype(np.uint8))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ldr.1001.png"]


def test_atomic_path_leaves_nothing_on_error(tmp_path) -> None:
    final = tmp_path / "x.1001.png"
    with pytest.raises(RuntimeError):
        with atomic_path(final) as tmp:
            tmp.write_bytes(b"half a frame")
            raise RuntimeError("renderer crashed")
    assert list(tmp_path.iterdir()) == []


def test_folder_that_is_a_file(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match="not writable"):
        ensure_writable_dir(blocker / "out")


def test_free_space_check(tmp_path) -> None:
    ensure_free_space(tmp_path, 1, "a tiny file")
    with pytest.raises(InputError, match="not enough free disk space"):
        ensure_free_space(tmp_path, 1 << 62, "a huge movie")
