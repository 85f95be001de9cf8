"""Bad capture sets: each one fails (or degrades) with a message that says what happened and what to do, and no
failed run leaves a folder that looks finished.

Real pycolmap on small sets built from views of the synthetic tiny set (conftest.py), numpy noise images and one
bundled lund photo.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from adop.errors import InputError, StageError
from adop.reconstruct import SfmConfig, SfmFailure, reconstruct, run_sfm
from adop.reconstruct.sfm import MODEL_DIR, SFM_REPORT_FILE

CONFIG = SfmConfig(num_threads=2)
LUND_PHOTO = Path(__file__).resolve().parents[1] / "data" / "lund" / "images" / "01.jpg"


def _views(tiny_images: Path, folder: Path, count: int, start: int = 0) -> list[str]:
    """``count`` neighbouring views of the tiny synthetic set (10 degrees apart: they register reliably)."""
    folder.mkdir(parents=True, exist_ok=True)
    names = sorted(p.name for p in tiny_images.glob("*.jpg"))[start : start + count]
    for name in names:
        shutil.copy(tiny_images / name, folder / name)
    return names


def _write_jpeg(path: Path, pixels: np.ndarray, quality: int = 90) -> None:
    kind = "float" if pixels.dtype == np.float32 else "uint8"
    buffer = oiio.ImageBuf(oiio.ImageSpec(pixels.shape[1], pixels.shape[0], 3, kind))
    buffer.set_pixels(oiio.ROI(), np.ascontiguousarray(pixels))
    buffer.specmod().attribute("compression", f"jpeg:{quality}")
    assert buffer.write(str(path), "uint8"), buffer.geterror()


def _noise(folder: Path, count: int, prefix: str = "noise") -> list[str]:
    """Unrelated textured images (smooth random blobs at 320x240, like the tiny views): nothing overlaps."""
    folder.mkdir(parents=True, exist_ok=True)
    names = []
    for seed in range(count):
        coarse = np.random.default_rng(100 + seed).random((15, 20, 3)).astype(np.float32)
        small = oiio.ImageBuf(oiio.ImageSpec(20, 15, 3, "float"))
        small.set_pixels(oiio.ROI(), coarse)
        pixels = oiio.ImageBufAlgo.resize(small, roi=oiio.ROI(0, 320, 0, 240, 0, 1, 0, 3)).get_pixels(oiio.FLOAT)
        name = f"{prefix}_{seed:02d}.jpg"
        _write_jpeg(folder / name, pixels)
        names.append(name)
    return names


def _assert_nothing_valid(out: Path) -> None:
    assert not (out / SFM_REPORT_FILE).exists()
    assert not (out / MODEL_DIR).exists()


def test_exception_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        run_sfm(tmp_path / "nope", tmp_path / "out", CONFIG)


@pytest.mark.parametrize("count", [0, 1, 2])
def test_exception_too_few_images(tmp_path: Path, tiny_images: Path, count: int) -> None:
    _views(tiny_images, tmp_path / "images", count)
    (tmp_path / "images" / "notes.txt").write_text("not an image")
    with pytest.raises(SfmFailure, match=rf"(?s)holds {count} usable image\(s\).*at least 3.*Add photos") as caught:
        run_sfm(tmp_path / "images", tmp_path / "out", CONFIG)
    assert isinstance(caught.value, StageError) and caught.value.report["usable"] == count
    _assert_nothing_valid(tmp_path / "out")


def test_exception_identical_copies(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for index in range(5):
        shutil.copy(LUND_PHOTO, images / f"copy_{index}.jpg")
    with pytest.raises(SfmFailure, match="(?s)1 usable image.*4 of the files are byte-identical copies"):
        run_sfm(images, tmp_path / "out", CONFIG)


def test_exception_same_spot(tmp_path: Path, tiny_images: Path) -> None:
    """Re-encoded copies (not byte-identical) match perfectly but have no baseline: COLMAP returns nothing."""
    images = tmp_path / "images"
    images.mkdir()
    pixels = oiio.ImageBuf(str(tiny_images / "view_005.jpg")).get_pixels(oiio.UINT8)
    for index, quality in enumerate((95, 90, 85, 80)):
        _write_jpeg(images / f"shot_{index}.jpg", pixels, quality)
    with pytest.raises(SfmFailure, match=r"(?s)registered 0 of 4.*same spot.*move") as caught:
        run_sfm(images, tmp_path / "out", CONFIG)
    assert caught.value.report["match_stats"]["overlapping_pairs"] == 6
    _assert_nothing_valid(tmp_path / "out")


def test_exception_no_overlap(tmp_path: Path) -> None:
    _noise(tmp_path / "images", 5)
    with pytest.raises(SfmFailure, match=r"(?s)registered 0 of 5.*do not overlap.*What to do: shoot with 60-80%") as caught:
        run_sfm(tmp_path / "images", tmp_path / "out", CONFIG)
    assert len(caught.value.report["attempts"]) == 1  # nothing overlaps, so no pointless retry
    _assert_nothing_valid(tmp_path / "out")


def test_smoke_corrupt_files_are_left_out(tmp_path: Path, tiny_images: Path) -> None:
    images = tmp_path / "images"
    names = _views(tiny_images, images, 8)
    (images / "garbage.jpg").write_bytes(np.random.default_rng(0).bytes(5000))
    (images / "empty.jpg").write_bytes(b"")
    data = (tiny_images / "view_008.jpg").read_bytes()
    (images / "truncated.jpg").write_bytes(data[: len(data) // 3])
    (images / "notes.txt").write_text("sidecar")
    result = run_sfm(images, tmp_path / "out", CONFIG)
    assert result.registered == tuple(names)
    assert set(result.unreadable) == {"garbage.jpg", "empty.jpg", "truncated.jpg"}
    assert "empty" in result.unreadable["empty.jpg"] and "truncated" in result.unreadable["truncated.jpg"]
    assert result.registered_fraction == pytest.approx(8 / 11)
    report = json.loads((tmp_path / "out" / SFM_REPORT_FILE).read_text())
    assert report["unreadable"] == result.unreadable and report["images_found"] == 11


def test_exception_partial_registration(tmp_path: Path, tiny_images: Path) -> None:
    images = tmp_path / "images"
    good = _views(tiny_images, images, 6, start=4)
    bad = _noise(images, 6, prefix="elsewhere")
    with pytest.raises(SfmFailure) as caught:
        run_sfm(images, tmp_path / "out", CONFIG)
    message = str(caught.value)
    assert "registered 6 of 12 images (50%; at least 60% needed)" in message
    assert all(name in message for name in bad) and "--min-registered-fraction" in message
    mappers = [attempt["mapper"] for attempt in caught.value.report["attempts"]]
    assert mappers == ["global", "incremental", "incremental-relaxed"]  # one retry round was made
    _assert_nothing_valid(tmp_path / "out")

    shutil.rmtree(tmp_path / "out")
    accepted = run_sfm(images, tmp_path / "out", SfmConfig(num_threads=2, min_registered_fraction=0.4))
    assert accepted.registered == tuple(good) and accepted.unregistered == tuple(bad)
    assert accepted.retries == 0 and accepted.registered_fraction == pytest.approx(0.5)  # 50% >= 40%: no retry


def test_exception_reconstruct_leaves_nothing(tmp_path: Path) -> None:
    _noise(tmp_path / "images", 4)
    with pytest.raises(SfmFailure):
        reconstruct(tmp_path / "images", tmp_path / "scene", CONFIG)
    assert not (tmp_path / "scene").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["images"]  # no temporary folder left behind


def test_a_png_named_jpg_is_used_not_reported_truncated(tmp_path: Path) -> None:
    from adop.reconstruct.images import scan_images
    from imaging import write_photo

    write_photo(tmp_path / "photo.png", seed=1)
    (tmp_path / "photo.png").rename(tmp_path / "photo_01.jpg")  # PNG bytes under a JPEG name
    scan = scan_images(tmp_path)
    assert [info.name for info in scan.images] == ["photo_01.jpg"] and not scan.unreadable
