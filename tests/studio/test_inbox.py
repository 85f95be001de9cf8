"""Studios and submissions on disk: names that cannot escape, versions that never overwrite, refusals that leave
nothing behind, and runs that only see their own studio's files."""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path

import pytest

from adop.errors import InputError
from adop.pipeline import PipelineOptions
from adop.studio.inbox import (
    QUEUED_FILE, capture_folder, mark_queued, pending_submissions, queued_run, read_submission, resolve_options,
    submit_capture,
)
from adop.studio.layout import REGISTRY_FILE, StudioRoot
from adop.studio.names import check_shot, check_studio, queue_name

from imaging import write_capture


@pytest.fixture
def root(tmp_path: Path) -> StudioRoot:
    studios = StudioRoot(tmp_path / "service")
    studios.add_studio("alpha")
    studios.add_studio("beta", webhook="http://127.0.0.1:9/hook")
    return studios


def _files(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*")}


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "Alpha", "a b", "-a", "a" * 41, "ä"])
def test_bad_studio_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="studio name"):
        check_studio(name)


@pytest.mark.parametrize("name", ["../x", "a/b", "..", "", "a.b", "a b", "_a", "x" * 65])
def test_bad_shot_names_are_refused(name: str) -> None:
    with pytest.raises(InputError, match="shot name"):
        check_shot(name)


def test_studio_tokens_are_stored_as_hashes_and_checked(tmp_path: Path) -> None:
    root = StudioRoot(tmp_path)
    token = root.add_studio("gamma")
    assert token and token not in (tmp_path / REGISTRY_FILE).read_text()
    studio = root.studio("gamma")
    assert studio.accepts(token) and not studio.accepts(token + "x") and not studio.accepts("")
    assert root.add_studio("gamma", webhook="https://example.test/hook") is None  # keeps the token
    assert root.studio("gamma").accepts(token) and root.studio("gamma").webhook == "https://example.test/hook"
    new = root.add_studio("gamma", replace_token=True)
    assert new and not root.studio("gamma").accepts(token) and root.studio("gamma").accepts(new)
    with pytest.raises(InputError, match="there is no studio 'delta'"):
        root.studio("delta")
    with pytest.raises(InputError, match="not an http"):
        root.add_studio("gamma", webhook="file:///etc/passwd")
    assert queue_name("gamma", "high") == "gamma-high"


def test_submission_copies_usable_photos_and_reuse_makes_a_new_version(root: StudioRoot, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "shoot" / "images", count=4).parent
    (capture / "images" / "notes.txt").write_text("not a photo")
    before = _files(capture)
    first = submit_capture(root, "alpha", "street01", capture, submitter="ana")
    second = submit_capture(root, "alpha", "street01", capture, submitter="ben", priority="high",
                            options=PipelineOptions(stop_after="reconstruct"))
    assert (first.version, second.version) == (1, 2) and first.photos == 4
    assert _files(capture) == before  # the user's folder is untouched
    v1 = root.submission_dir("alpha", "street01", 1)
    assert sorted(p.name for p in (v1 / "images").iterdir()) == [f"photo_{i:02d}.jpg" for i in range(4)]
    again = read_submission(root, "alpha", "street01", 2)
    assert again.submitter == "ben" and again.priority == "high"
    assert again.pipeline_options().stop_after == "reconstruct"
    assert read_submission(root, "alpha", "street01", 1).submitter == "ana"  # the old version is kept


def test_archive_submission(root: StudioRoot, tmp_path: Path) -> None:
    photos = write_capture(tmp_path / "shoot", count=3)
    upload = tmp_path / "shoot.zip"
    with zipfile.ZipFile(upload, "w") as archive:
        for photo in photos.iterdir():
            archive.write(photo, f"shoot/{photo.name}")
    submission = submit_capture(root, "beta", "roof", upload, submitter="cy")
    folder = root.submission_dir("beta", "roof", 1)
    assert submission.photos == 3 and _files(folder) == {"images", "submission.json", *(
        f"images/photo_{i:02d}.jpg" for i in range(3))}


@pytest.mark.parametrize("case", ["missing", "empty", "corrupt", "unsafe-archive", "bad-studio", "unknown-studio",
                                  "bad-shot", "bad-priority"])
def test_bad_submissions_leave_the_inbox_untouched(root: StudioRoot, tmp_path: Path, case: str) -> None:
    source, studio, shot, priority = tmp_path / "src", "alpha", "s1", "normal"
    if case == "missing":
        source = tmp_path / "nowhere"
    elif case == "empty":
        source.mkdir()
    elif case == "corrupt":
        source.mkdir()
        for i in range(4):
            (source / f"p{i}.jpg").write_bytes(b"not a jpeg at all")
    elif case == "unsafe-archive":
        source = tmp_path / "evil.zip"
        with zipfile.ZipFile(source, "w") as archive:
            archive.writestr("../../escape.jpg", b"x")
    else:
        write_capture(source, count=3)
        studio = {"bad-studio": "../beta", "unknown-studio": "delta"}.get(case, studio)
        shot = "../x" if case == "bad-shot" else shot
        priority = "urgent" if case == "bad-priority" else priority
    inbox_before = {name: _files(root.studio_dir(name)) for name in ("alpha", "beta")}
    with pytest.raises(InputError) as error:
        submit_capture(root, studio, shot, source, submitter="ana", priority=priority)
    assert "\n" not in str(error.value)
    assert {name: _files(root.studio_dir(name)) for name in ("alpha", "beta")} == inbox_before
    assert not (tmp_path.parent / "escape.jpg").exists()


def test_runs_only_read_their_own_studio(root: StudioRoot, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "shoot", count=3)
    submission = submit_capture(root, "alpha", "s1", capture, submitter="ana")
    assert capture_folder(root, submission) == root.submission_dir("alpha", "s1", 1)
    # A photo replaced by a link to another studio's (or the system's) file is refused before anything is read.
    other = submit_capture(root, "beta", "secret", capture, submitter="bo")
    photo = root.submission_dir("alpha", "s1", 1) / "images" / "photo_00.jpg"
    photo.unlink()
    os.symlink(root.submission_dir("beta", "secret", other.version) / "images" / "photo_00.jpg", photo)
    with pytest.raises(InputError, match="outside studio 'alpha'"):
        capture_folder(root, submission)
    # A camera path outside the submission is refused too.
    options = PipelineOptions().replace(fly_through=PipelineOptions().fly_through.replace(file=Path("/etc/passwd")))
    with pytest.raises(InputError, match="camera path file .* is outside studio 'alpha'"):
        resolve_options(root, submission, options)
    with pytest.raises(InputError, match="no complete submission"):
        read_submission(root, "alpha", "s1", 7)


def test_pending_submissions_are_those_without_a_run(root: StudioRoot, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "shoot", count=3)
    a = submit_capture(root, "alpha", "s1", capture, submitter="ana")
    b = submit_capture(root, "beta", "s2", capture, submitter="bo")
    (root.inbox("alpha") / "s1" / ".incoming-xyz").mkdir()  # an interrupted upload is not a submission
    assert [s.label for s in pending_submissions(root)] == [a.label, b.label]
    mark_queued(root, a, "run-1")
    assert queued_run(root, a) == "run-1" and [s.label for s in pending_submissions(root)] == [b.label]
    assert json.loads((root.submission_dir("alpha", "s1", 1) / QUEUED_FILE).read_text())["flow_run_id"] == "run-1"


def _png_header_only(path: Path, width: int, height: int) -> Path:
    """A PNG whose header declares ``width``×``height`` pixels and which holds almost nothing else."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 64))
                     + chunk(b"IEND", b""))
    return path


def test_a_photo_declaring_too_many_pixels_is_skipped_before_decoding(root: StudioRoot, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "shoot", count=3)
    _png_header_only(capture / "bomb.png", 60000, 60000)
    submission = submit_capture(root, "alpha", "s1", capture, submitter="ana")
    assert submission.photos == 3
    images = root.submission_dir("alpha", "s1", 1) / "images"
    assert not (images / "bomb.png").exists()
    # The check reads only the header: a photo above the limit is skipped with its size (OpenImageIO's own guard
    # catches the crudest headers, like the one above, but not a file large enough to look plausible).
    from adop.ingest import IngestConfig, scan_photos

    from imaging import write_photo

    write_photo(capture / "large.jpg", width=200, height=200)
    report = scan_photos(capture, IngestConfig(max_megapixels=0.01))
    assert report.skipped["large.jpg"] == "too large (200x200 pixels, above 0.01 MP; IngestConfig.max_megapixels)"
    assert len(report.images) == 3


def test_versions_with_deliveries_are_never_given_again(root: StudioRoot, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "shoot", count=3)
    first = submit_capture(root, "alpha", "s1", capture, submitter="ana")
    (root.delivery_dir("alpha", "s1", 2)).mkdir(parents=True)  # delivered, its submission folder since removed
    second = submit_capture(root, "alpha", "s1", capture, submitter="ana")
    assert (first.version, second.version) == (1, 3)
    assert first.id and second.id and first.id != second.id
