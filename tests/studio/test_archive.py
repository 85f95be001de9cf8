"""Extracting a studio's uploaded capture set: good archives land whole, unsafe or broken ones leave nothing behind."""

from __future__ import annotations

import io
import os
import stat
import struct
import tarfile
import zipfile
from pathlib import Path

import pytest

from adop.errors import InputError
from adop.studio.archive import ARCHIVE_SUFFIXES, ArchiveLimits, extract_archive, is_archive

JPEG = b"\xff\xd8\xff\xe0" + bytes(range(256)) * 4


def _zip(path: Path, members: dict[str, bytes], compression: int = zipfile.ZIP_DEFLATED) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def _tar(path: Path, members: list[tarfile.TarInfo | tuple[str, bytes]], mode: str = "w:gz") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, mode) as archive:
        for member in members:
            if isinstance(member, tarfile.TarInfo):
                archive.addfile(member)
            else:
                info = tarfile.TarInfo(member[0])
                info.size = len(member[1])
                info.mode = 0o777
                archive.addfile(info, io.BytesIO(member[1]))
    return path


@pytest.fixture
def out(tmp_path: Path) -> Path:
    """The folder the destination is created in, so a test can see whether anything was left there."""
    folder = tmp_path / "out"
    folder.mkdir()
    return folder


def _refused(archive: Path, out: Path, match: str, **limits: float) -> InputError:
    """Extraction is refused with a message naming the archive, and nothing (no destination, no staging folder) is
    left beside the destination."""
    with pytest.raises(InputError, match=match) as caught:
        extract_archive(archive, out / "shoot", ArchiveLimits(**limits))  # type: ignore[arg-type]
    assert archive.name in str(caught.value)
    assert sorted(os.listdir(out)) == []
    return caught.value


def test_is_archive_by_suffix() -> None:
    assert ARCHIVE_SUFFIXES == (".zip", ".tar", ".tar.gz", ".tgz")
    for name in ("a.zip", "a.ZIP", "a.tar", "a.tar.gz", "a.TGZ"):
        assert is_archive(Path(name))
    for name in ("a.jpg", "a.gz", "zip", "a.tar.bz2"):
        assert not is_archive(Path(name))


def test_good_zip_extracts_with_plain_modes(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "up" / "upload.zip", {"img1.jpg": JPEG, "sub/img2.jpg": JPEG[::-1], "empty/": b""})
    with zipfile.ZipFile(archive, "a") as handle:  # an executable, setuid member: its mode must not be taken
        info = zipfile.ZipInfo("run.jpg")
        info.external_attr = (stat.S_IFREG | 0o4777) << 16
        handle.writestr(info, b"x")
    files = extract_archive(archive, out / "shoot")
    dest = out / "shoot"
    assert files == [dest / "img1.jpg", dest / "sub" / "img2.jpg", dest / "run.jpg"]
    assert (dest / "img1.jpg").read_bytes() == JPEG
    assert (dest / "sub" / "img2.jpg").read_bytes() == JPEG[::-1]
    assert (dest / "empty").is_dir()
    assert stat.S_IMODE((dest / "run.jpg").stat().st_mode) == 0o644
    assert stat.S_IMODE((dest / "sub").stat().st_mode) == 0o755
    assert stat.S_IMODE(dest.stat().st_mode) == 0o755
    assert sorted(os.listdir(out)) == ["shoot"]


def test_good_tgz_and_tar_extract(tmp_path: Path, out: Path) -> None:
    for name, mode in (("upload.tgz", "w:gz"), ("upload.tar.gz", "w:gz"), ("upload.tar", "w")):
        archive = _tar(tmp_path / "up" / name, [("a.jpg", JPEG), ("b/c.jpg", b"c")], mode)
        dest = out / name.replace(".", "_")
        assert extract_archive(archive, dest) == [dest / "a.jpg", dest / "b" / "c.jpg"]
        assert (dest / "a.jpg").read_bytes() == JPEG
        assert stat.S_IMODE((dest / "a.jpg").stat().st_mode) == 0o644


def test_compression_is_detected_by_content_not_name(tmp_path: Path, out: Path) -> None:
    archive = _tar(tmp_path / "upload.tar", [("a.jpg", JPEG)], "w:gz")
    assert extract_archive(archive, out / "shoot") == [out / "shoot" / "a.jpg"]


def test_single_top_folder_is_stripped_and_finder_junk_skipped(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "shoot42.zip", {
        "shoot42/": b"", "shoot42/img1.jpg": JPEG, "shoot42/day2/img2.jpg": JPEG, "shoot42/.DS_Store": b"junk",
        "shoot42/._img1.jpg": b"fork", "__MACOSX/shoot42/._img1.jpg": b"fork",
    })
    dest = out / "shoot"
    assert extract_archive(archive, dest) == [dest / "img1.jpg", dest / "day2" / "img2.jpg"]
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == ["day2", "day2/img2.jpg", "img1.jpg"]


def test_two_top_level_entries_are_kept(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {"shoot42/img1.jpg": JPEG, "notes.txt": b"n"})
    dest = out / "shoot"
    assert extract_archive(archive, dest) == [dest / "shoot42" / "img1.jpg", dest / "notes.txt"]


def test_empty_destination_folder_is_accepted(tmp_path: Path, out: Path) -> None:
    (out / "shoot").mkdir()
    archive = _zip(tmp_path / "upload.zip", {"img1.jpg": JPEG})
    assert extract_archive(archive, out / "shoot") == [out / "shoot" / "img1.jpg"]


def test_destination_that_is_not_empty_is_refused(tmp_path: Path, out: Path) -> None:
    (out / "shoot").mkdir()
    (out / "shoot" / "old.jpg").write_bytes(b"old")
    archive = _zip(tmp_path / "upload.zip", {"img1.jpg": JPEG})
    with pytest.raises(InputError, match="not empty"):
        extract_archive(archive, out / "shoot")
    assert sorted(os.listdir(out)) == ["shoot"]
    assert os.listdir(out / "shoot") == ["old.jpg"]
    (out / "file").write_bytes(b"")
    with pytest.raises(InputError, match="not a folder"):
        extract_archive(archive, out / "file")


@pytest.mark.parametrize("name, match", [
    ("../evil.jpg", "points outside the archive"),
    ("shoot/../../evil.jpg", "points outside the archive"),
    ("..\\evil.jpg", "points outside the archive"),
    ("/etc/evil.jpg", "absolute path"),
    ("C:\\evil.jpg", "absolute path"),
    ("c:/evil.jpg", "absolute path"),
    ("\\\\server\\share\\evil.jpg", "absolute path"),
])
def test_names_leaving_the_destination_are_refused(tmp_path: Path, out: Path, name: str, match: str) -> None:
    zipped = _zip(tmp_path / "upload.zip", {"good.jpg": JPEG, name: JPEG})
    message = _refused(zipped, out, match)
    assert str(message).startswith(f"upload.zip: member {name!r} ")
    assert str(message).endswith("nothing was extracted")
    _refused(_tar(tmp_path / "upload.tgz", [("good.jpg", JPEG), (name, JPEG)]), out, match)


def test_refusal_message_reads_as_one_sentence(tmp_path: Path, out: Path) -> None:
    message = _refused(_zip(tmp_path / "upload.zip", {"../evil.jpg": JPEG}), out, "outside")
    assert str(message) == "upload.zip: member '../evil.jpg' points outside the archive; nothing was extracted"


def test_tar_links_and_devices_are_refused(tmp_path: Path, out: Path) -> None:
    cases = [(tarfile.SYMTYPE, "symbolic link"), (tarfile.LNKTYPE, "hard link"), (tarfile.CHRTYPE, "device"),
             (tarfile.FIFOTYPE, "device or pipe")]
    for kind, match in cases:
        link = tarfile.TarInfo("img2.jpg")
        link.type = kind
        link.linkname = "/etc/passwd" if kind in (tarfile.SYMTYPE, tarfile.LNKTYPE) else ""
        archive = _tar(tmp_path / f"upload{kind.decode()}.tgz", [("img1.jpg", JPEG), link])
        _refused(archive, out, match)


def test_zip_symlink_member_is_refused(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {"img1.jpg": JPEG})
    with zipfile.ZipFile(archive, "a") as handle:
        info = zipfile.ZipInfo("img2.jpg")
        info.create_system = 3
        info.external_attr = (stat.S_IFLNK | 0o777) << 16
        handle.writestr(info, "/etc/passwd")
    _refused(archive, out, "symbolic link")


def test_encrypted_zip_member_is_refused(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {"img1.jpg": JPEG}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())  # set the "encrypted" flag bit in the local and the central header
    data[data.index(b"PK\x03\x04") + 6] |= 0x1
    data[data.index(b"PK\x01\x02") + 8] |= 0x1
    archive.write_bytes(bytes(data))
    _refused(archive, out, "encrypted")


def test_duplicate_names_are_refused(tmp_path: Path, out: Path) -> None:
    _refused(_tar(tmp_path / "upload.tgz", [("img1.jpg", JPEG), ("./img1.jpg", b"other")]), out, "appears twice")
    _refused(_tar(tmp_path / "upload.tar", [("a/img.jpg", JPEG), ("a//img.jpg", b"x")], "w"), out, "appears twice")
    _refused(_tar(tmp_path / "clash.tgz", [("a", JPEG), ("a/img.jpg", b"x")]), out, "both a file and a folder")


def test_too_many_files_are_refused(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {f"img{i}.jpg": JPEG for i in range(4)})
    _refused(archive, out, "4 files, more than the 3 allowed", max_files=3)
    assert len(extract_archive(archive, out / "shoot", ArchiveLimits(max_files=4))) == 4


def test_declared_sizes_above_the_limits_are_refused(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {"a.jpg": JPEG, "b.jpg": JPEG}, zipfile.ZIP_STORED)
    _refused(archive, out, "member 'a.jpg' is 1.0 KiB uncompressed", max_file_bytes=1000)
    _refused(archive, out, "more than the 1.5 KiB allowed for one upload", max_total_bytes=1536)


def test_zip_bomb_is_refused_by_ratio(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "bomb.zip", {"zeros.jpg": bytes(2 * 2**20)})
    assert archive.stat().st_size < 2**20 / 10
    _refused(archive, out, "zip bomb", max_ratio=10)
    tarred = _tar(tmp_path / "bomb.tgz", [("zeros.jpg", bytes(2 * 2**20))])
    _refused(tarred, out, "zip bomb", max_ratio=10)


def test_lying_declared_size_is_caught_while_streaming(tmp_path: Path, out: Path) -> None:
    """A zip whose central directory claims 10 bytes for a 1 MiB member passes the declared checks but is stopped
    while it is written, and nothing is left behind."""
    archive = _zip(tmp_path / "upload.zip", {"img1.jpg": JPEG, "big.jpg": os.urandom(2**20)})
    data = bytearray(archive.read_bytes())
    central = data.rindex(b"PK\x01\x02")  # the last (second) member's central header
    struct.pack_into("<I", data, central + 24, 10)
    archive.write_bytes(bytes(data))
    _refused(archive, out, "upload.zip", max_file_bytes=2000)


@pytest.mark.parametrize("name", ["upload.zip", "upload.tgz", "upload.tar"])
def test_not_an_archive_is_refused(tmp_path: Path, out: Path, name: str) -> None:
    archive = tmp_path / name
    archive.write_bytes(b"this is a JPEG, honest" * 100)
    kind = "zip" if name.endswith(".zip") else "tar"
    _refused(archive, out, f"{name} is not a readable {kind} archive: ")


def test_truncated_archives_are_refused(tmp_path: Path, out: Path) -> None:
    payload = [("a.jpg", os.urandom(200_000)), ("b.jpg", os.urandom(200_000))]
    tarred = _tar(tmp_path / "full.tgz", payload)
    cut = tmp_path / "upload.tgz"
    cut.write_bytes(tarred.read_bytes()[: tarred.stat().st_size // 2])
    _refused(cut, out, "not a readable tar archive")
    zipped = _zip(tmp_path / "full.zip", dict(payload))
    cut = tmp_path / "upload.zip"
    cut.write_bytes(zipped.read_bytes()[: zipped.stat().st_size // 2])
    _refused(cut, out, "not a readable zip archive")


def test_corrupt_member_data_leaves_nothing(tmp_path: Path, out: Path) -> None:
    archive = _zip(tmp_path / "upload.zip", {"a.jpg": JPEG, "b.jpg": os.urandom(50_000)}, zipfile.ZIP_STORED)
    data = bytearray(archive.read_bytes())
    data[data.index(b"PK\x03\x04", 4) + 30 + len("b.jpg") + 100] ^= 0xFF  # a byte of b.jpg: its CRC no longer fits
    archive.write_bytes(bytes(data))
    _refused(archive, out, "not a readable zip archive")


def test_other_names_and_empty_archives_are_refused(tmp_path: Path, out: Path) -> None:
    other = tmp_path / "upload.rar"
    other.write_bytes(b"x")
    _refused(other, out, "upload.rar is not a .zip, .tar, .tar.gz or .tgz archive")
    _refused(_zip(tmp_path / "upload.zip", {"__MACOSX/._a.jpg": b"", "folder/": b""}), out, "holds no files")
    with pytest.raises(InputError, match="does not exist"):
        extract_archive(tmp_path / "missing.zip", out / "shoot")


def test_limits_are_validated() -> None:
    for bad in ({"max_files": 0}, {"max_file_bytes": -1}, {"max_total_bytes": 1.5}, {"max_ratio": 0},
                {"max_ratio": float("nan")}, {"max_files": True}):
        with pytest.raises(InputError, match="must be a positive"):
            ArchiveLimits(**bad)  # type: ignore[arg-type]
