"""Ingest: usable photos in, bad files named, clear errors when too few remain."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from adop.errors import InputError
from adop.ingest import IngestConfig, ingest_capture, scan_capture
from imaging import write_capture, write_photo


def test_ingest_copies_photos_and_writes_capture_json(tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture" / "images", count=4)
    report = ingest_capture(tmp_path / "capture", tmp_path / "out")
    assert sorted(p.name for p in (tmp_path / "out" / "images").iterdir()) == [i.name for i in report.images]
    document = json.loads((tmp_path / "out" / "capture.json").read_text())
    assert len(document["images"]) == 4 and document["skipped"] == {}
    assert document["images"][0]["exposure_ev"] == pytest.approx(report.images[0].exposure_ev)
    assert (tmp_path / "out" / "images" / "photo_00.jpg").read_bytes() == (capture / "photo_00.jpg").read_bytes()


def test_editing_the_workspace_copy_never_changes_the_users_photo(tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture", count=3)
    original = (capture / "photo_00.jpg").read_bytes()
    ingest_capture(capture, tmp_path / "out")
    copy = tmp_path / "out" / "images" / "photo_00.jpg"
    assert (capture / "photo_00.jpg").stat().st_nlink == 1 and copy.stat().st_nlink == 1  # no hard link
    with open(copy, "r+b") as handle:  # what a careless edit in the workspace does
        handle.write(b"\0" * 64)
    assert (capture / "photo_00.jpg").read_bytes() == original


def test_corrupt_and_non_image_files_are_skipped_and_listed(tmp_path: Path) -> None:
    folder = write_capture(tmp_path / "cap", count=4)
    good = (folder / "photo_00.jpg").read_bytes()
    (folder / "truncated.jpg").write_bytes(good[: len(good) // 3])
    (folder / "garbage.jpg").write_bytes(b"not a jpeg" * 50)
    (folder / "empty.png").write_bytes(b"")
    (folder / "notes.txt").write_text("shot list")
    _, report = scan_capture(folder)
    assert len(report.images) == 4
    assert set(report.skipped) == {"truncated.jpg", "garbage.jpg", "empty.png", "notes.txt"}
    assert "truncated" in report.skipped["truncated.jpg"] or "damaged" in report.skipped["truncated.jpg"]
    assert "not an image file" in report.skipped["notes.txt"]


def test_too_few_usable_photos_is_a_clear_error(tmp_path: Path) -> None:
    folder = write_capture(tmp_path / "cap", count=2)
    (folder / "bad.jpg").write_bytes(b"broken")
    with pytest.raises(InputError, match=r"only 2 usable photo\(s\) \(skipped: bad.jpg\); at least 3"):
        scan_capture(folder)


def test_empty_and_missing_folders(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no usable photos"):
        scan_capture(tmp_path / "empty")
    with pytest.raises(InputError, match="does not exist"):
        scan_capture(tmp_path / "nowhere")
    (tmp_path / "file.jpg").write_bytes(b"x")
    with pytest.raises(InputError, match="is a file, not a folder"):
        scan_capture(tmp_path / "file.jpg")


def test_mixed_sizes_make_one_camera_group_per_size(tmp_path: Path) -> None:
    folder = tmp_path / "cap"
    write_photo(folder / "a.jpg", 64, 48, seed=1)
    write_photo(folder / "b.jpg", 64, 48, seed=2)
    write_photo(folder / "c.jpg", 80, 60, seed=3)
    _, report = scan_capture(folder, IngestConfig(min_images=3))
    assert report.camera_groups == [(64, 48), (80, 60)]
    assert [i.camera_group for i in report.images] == [0, 0, 1]


def test_missing_exif_is_reported_not_fatal(tmp_path: Path) -> None:
    folder = write_capture(tmp_path / "cap", count=3, exposure_time=None)
    _, report = scan_capture(folder)
    assert report.missing_exif == ["photo_00.jpg", "photo_01.jpg", "photo_02.jpg"]
