"""Safe extraction of a studio's uploaded capture set (``.zip``, ``.tar``, ``.tar.gz``/``.tgz``).

The studio service receives archives from outside, so every archive is treated as hostile until proven otherwise:

* Nothing is written before the whole member list has been checked: names that are absolute or climb out with
  ``..`` (the "zip slip"), links (a link followed by a file written "through" it lands anywhere on the disk), devices
  and pipes, duplicate names (which one wins would be an accident), too many files, too many bytes, and a size far
  above the upload's own (a zip bomb) are all refused with one sentence naming the archive and the member.
* Declared sizes can lie, so the bytes actually written are counted while each member is streamed, and the same
  limits stop the extraction there too.
* Extraction goes into a hidden staging folder beside the destination, which is renamed into place only once every
  member is written; any refusal or failure deletes it, so a refused upload leaves nothing behind and a half-extracted
  capture set can never be mistaken for a whole one.
* Nothing is taken from the archive but names and bytes: files are plain ``0o644``, folders ``0o755``, whatever
  permission bits or owners the archive carries. ``extractall`` is never used.

Finder's junk (``__MACOSX/``, ``._*`` AppleDouble files, ``.DS_Store``) is skipped, and a capture set zipped as its
one folder (``shoot42.zip`` holding ``shoot42/...``) is unwrapped, so the photos land directly in the destination
however the studio made the archive.
"""

from __future__ import annotations

import errno
import lzma
import math
import os
import re
import stat
import tarfile
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from adop.errors import InputError
from adop.storage import describe_os_error, ensure_free_space, remove_quietly, staging_folder

ARCHIVE_SUFFIXES = (".zip", ".tar", ".tar.gz", ".tgz")
"""The upload formats the studio service accepts (matched case-insensitively)."""

_CHUNK = 1 << 20
_FILE_MODE = 0o644
_DIR_MODE = 0o755
_RATIO_FLOOR_BYTES = 1 << 20
"""Below this many uncompressed bytes the ratio is not checked: a few small text files (a readme, a sidecar) compress
far better than any photo, and an upload that small cannot fill a disk whatever its ratio."""
_DRIVE = re.compile(r"^[A-Za-z]:")
_JUNK_FOLDERS = frozenset({"__MACOSX"})
_JUNK_FILES = frozenset({".DS_Store"})
_READ_ERRORS: tuple[type[BaseException], ...] = (
    zipfile.BadZipFile, tarfile.TarError, zlib.error, lzma.LZMAError, EOFError, OSError, NotImplementedError,
    RuntimeError,
)
"""What the zip, tar and decompression libraries raise for a corrupt or truncated archive (gzip's and bz2's errors
are ``OSError``s)."""


@dataclass(frozen=True)
class ArchiveLimits:
    """How much one upload may hold; anything above is refused before (or, for lying sizes, while) it is written.

    The defaults fit a large photo capture set (thousands of full-resolution photos, up to 20 GiB) and refuse what
    no capture set needs: a single member above 512 MiB or an archive that expands to more than 200 times its size
    (photos barely compress, a zip bomb expands a thousandfold).
    """

    max_files: int = 5000
    max_file_bytes: int = 512 * 2**20
    max_total_bytes: int = 20 * 2**30
    max_ratio: float = 200.0

    def __post_init__(self) -> None:
        for name in ("max_files", "max_file_bytes", "max_total_bytes"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
                raise InputError(f"ArchiveLimits.{name} must be a positive whole number, got {value!r}")
        ratio = self.max_ratio
        if isinstance(ratio, bool) or not isinstance(ratio, (int, float)) or math.isnan(ratio) or ratio <= 0:
            raise InputError(f"ArchiveLimits.max_ratio must be a positive number, got {ratio!r}")


def is_archive(path: Path) -> bool:
    """Whether ``path`` is named like an upload format the studio service extracts (by suffix, any case)."""
    return Path(path).name.lower().endswith(ARCHIVE_SUFFIXES)


@dataclass(frozen=True)
class _Member:
    """One archive entry after the safety checks: where it goes and how to read it."""

    name: str
    """The name as stored in the archive, for messages."""
    parts: tuple[str, ...]
    """The normalised relative path (no empty, ``.`` or ``..`` components)."""
    is_dir: bool
    size: int
    """The declared uncompressed size (0 for folders)."""
    open: Callable[[], IO[bytes]]


def extract_archive(archive: Path, destination: Path, limits: ArchiveLimits = ArchiveLimits()) -> list[Path]:
    """Extract an uploaded capture set into ``destination`` (which must not exist yet, or be an empty folder).

    All members are checked before anything is written and the result appears under ``destination`` all at once,
    or not at all: a refused or broken upload leaves neither ``destination`` nor a temporary folder behind.

    Returns:
        The extracted files' final paths, in archive order (folders and skipped Finder junk are not listed).

    Raises:
        InputError: one sentence naming the archive (and the offending member) when the upload is unsafe, above
            ``limits``, encrypted, not a readable archive, holds no files, or the destination is taken.
    """
    archive, destination = Path(archive), Path(destination)
    _check_destination(archive, destination)
    if not is_archive(archive):
        raise InputError(f"{archive.name} is not a {', '.join(ARCHIVE_SUFFIXES[:-1])} or {ARCHIVE_SUFFIXES[-1]} "
                         "archive; upload the capture set in one of those formats")
    if not archive.is_file():
        raise InputError(f"the upload {archive} does not exist or is not a file")
    compressed = archive.stat().st_size
    is_zip = archive.name.lower().endswith(".zip")
    kind = "zip" if is_zip else "tar"
    try:
        handle: zipfile.ZipFile | tarfile.TarFile = (zipfile.ZipFile(archive) if is_zip
                                                     else tarfile.open(archive, _tar_mode(archive)))
    except (*_READ_ERRORS, ValueError) as error:
        raise _unreadable(archive, kind, error) from None
    with handle:
        members = (_zip_members(archive, handle, limits) if isinstance(handle, zipfile.ZipFile)
                   else _tar_members(archive, handle, limits))
        plan = _plan(archive, members, limits, compressed)
        ensure_free_space(destination.parent, sum(member.size for member in plan),
                          purpose=f"contents of {archive.name}")
        return _extract(archive, kind, plan, destination, limits, compressed)


_COMPRESSIONS = ((b"\x1f\x8b", "gz"), (b"BZh", "bz2"), (b"\xfd7zXZ\x00", "xz"))


def _tar_mode(archive: Path) -> str:
    """The ``tarfile`` mode for the compression the file really uses (by its first bytes, not its name), so a
    compressed tar named ``.tar`` still opens and a broken one fails with one reason rather than one per method."""
    with open(archive, "rb") as handle:
        head = handle.read(6)
    return next((f"r:{method}" for magic, method in _COMPRESSIONS if head.startswith(magic)), "r:")


def _check_destination(archive: Path, destination: Path) -> None:
    """Refuse a destination that holds anything: extracting must never mix an upload with other files."""
    if not os.path.lexists(destination):
        return
    if destination.is_symlink() or not destination.is_dir():
        raise InputError(f"cannot extract {archive.name}: {destination} exists and is not a folder; choose a new "
                         "destination")
    if any(destination.iterdir()):
        raise InputError(f"cannot extract {archive.name}: the destination {destination} is not empty; choose a new "
                         "or empty folder")


def _refuse(archive: Path, name: str, reason: str) -> InputError:
    return InputError(f"{archive.name}: member {name!r} {reason}; nothing was extracted")


def _unreadable(archive: Path, kind: str, error: BaseException) -> InputError:
    reason = str(error) or type(error).__name__
    return InputError(f"{archive.name} is not a readable {kind} archive: {reason}; nothing was extracted")


def _size(count: float) -> str:
    """A byte count for people: ``512.0 MiB``."""
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if count < 1024:
            return f"{count:.0f} {unit}" if unit == "bytes" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count:.1f} TiB"


def _max_entries(limits: ArchiveLimits) -> int:
    """How many entries of any kind (files, folders, junk) an archive may list before it is refused unread: macOS
    adds an AppleDouble file per photo, folders add a few more, but millions of empty entries only exhaust memory."""
    return 4 * limits.max_files + 1000


def _parts(archive: Path, name: str) -> tuple[str, ...]:
    """The member's relative path as components, or a refusal for anything that could land outside the destination.

    Backslashes count as separators (Windows tools write them), so ``..\\x`` and ``C:\\x`` are caught too.
    """
    if "\x00" in name:
        raise _refuse(archive, name, "has a NUL character in its name")
    unified = name.replace("\\", "/")
    if unified.startswith("/") or _DRIVE.match(unified):
        raise _refuse(archive, name, "is an absolute path, which would be written outside the destination")
    parts = tuple(part for part in unified.split("/") if part not in ("", "."))
    if ".." in parts:
        raise _refuse(archive, name, "points outside the archive")
    return parts


def _zip_members(archive: Path, handle: zipfile.ZipFile, limits: ArchiveLimits) -> list[_Member]:
    infos = handle.infolist()
    if len(infos) > _max_entries(limits):
        raise InputError(f"{archive.name} lists {len(infos)} entries, more than the {_max_entries(limits)} allowed "
                         "for one upload; nothing was extracted")
    members = []
    for info in infos:
        parts = _parts(archive, info.filename)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise _refuse(archive, info.filename, "is a symbolic link, which could point outside the archive")
        if stat.S_IFMT(mode) and not (stat.S_ISREG(mode) or stat.S_ISDIR(mode)):
            raise _refuse(archive, info.filename, "is a device, pipe or socket, not a photo")
        if info.flag_bits & 0x1:
            raise _refuse(archive, info.filename, "is encrypted; upload the capture set without a password")
        is_dir = info.is_dir() or (stat.S_ISDIR(mode) and info.file_size == 0)
        members.append(_Member(info.filename, parts, is_dir, 0 if is_dir else info.file_size,
                               lambda info=info: handle.open(info)))
    return members


def _tar_members(archive: Path, handle: tarfile.TarFile, limits: ArchiveLimits) -> list[_Member]:
    """The tar's members, read header by header. Each header's declared size is checked as soon as it is read:
    reading the next header means decompressing this member's data, which for a bomb is what must not happen."""
    infos: list[tarfile.TarInfo] = []
    declared = 0
    try:
        while (info := handle.next()) is not None:
            infos.append(info)
            if len(infos) > _max_entries(limits):
                raise InputError(f"{archive.name} lists more than the {_max_entries(limits)} entries allowed for one "
                                 "upload; nothing was extracted")
            if info.size > limits.max_file_bytes:
                raise _refuse(archive, info.name, f"is {_size(info.size)}, more than the {_size(limits.max_file_bytes)} "
                                                  "allowed for one file")
            declared += info.size
            if declared > limits.max_total_bytes:
                raise InputError(f"{archive.name} holds more than {_size(limits.max_total_bytes)}, the limit of one "
                                 "upload; nothing was extracted")
    except _READ_ERRORS as error:
        raise _unreadable(archive, "tar", error) from None
    members = []
    for info in infos:
        parts = _parts(archive, info.name)
        if info.issym() or info.islnk():
            kind = "symbolic" if info.issym() else "hard"
            raise _refuse(archive, info.name, f"is a {kind} link, which could point outside the archive")
        if info.ischr() or info.isblk() or info.isfifo():
            raise _refuse(archive, info.name, "is a device or pipe, not a photo")
        if not (info.isreg() or info.isdir()):
            raise _refuse(archive, info.name, "is neither a regular file nor a folder")

        def opener(info: tarfile.TarInfo = info) -> IO[bytes]:
            stream = handle.extractfile(info)
            assert stream is not None  # regular members always have one
            return stream

        members.append(_Member(info.name, parts, info.isdir(), 0 if info.isdir() else info.size, opener))
    return members


def _is_junk(parts: tuple[str, ...]) -> bool:
    """Finder's resource forks and folder settings: never part of a capture set."""
    return any(part in _JUNK_FOLDERS for part in parts) or parts[-1] in _JUNK_FILES or parts[-1].startswith("._")


def _plan(archive: Path, members: Iterable[_Member], limits: ArchiveLimits, compressed: int) -> list[_Member]:
    """The members to write, relative to the destination, once the whole list has passed every check."""
    kept = []
    for member in members:
        if not member.parts:
            if member.is_dir:
                continue  # "./" names the archive's root
            raise _refuse(archive, member.name, "has no file name")
        if not _is_junk(member.parts):
            kept.append(member)

    files: dict[tuple[str, ...], _Member] = {}
    folders: set[tuple[str, ...]] = set()
    for member in kept:
        if member.is_dir:
            folders.add(member.parts)
        elif member.parts in files:
            raise _refuse(archive, member.name, "appears twice in the archive, so which copy is meant is unclear")
        else:
            files[member.parts] = member
        folders.update(member.parts[:i] for i in range(1, len(member.parts)))
    for parts, member in files.items():
        if parts in folders:
            raise _refuse(archive, member.name, "is both a file and a folder in the archive")

    if not files:
        raise InputError(f"{archive.name} holds no files; nothing was extracted")
    if len(files) > limits.max_files:
        raise InputError(f"{archive.name} holds {len(files)} files, more than the {limits.max_files} allowed for one "
                         "upload (split the capture set into several uploads); nothing was extracted")
    for member in files.values():
        if member.size > limits.max_file_bytes:
            raise _refuse(archive, member.name, f"is {_size(member.size)} uncompressed, more than the "
                                                f"{_size(limits.max_file_bytes)} allowed for one file")
    total = sum(member.size for member in files.values())
    if total > limits.max_total_bytes:
        raise InputError(f"{archive.name} would expand to {_size(total)}, more than the "
                         f"{_size(limits.max_total_bytes)} allowed for one upload; nothing was extracted")
    if _ratio_exceeded(total, compressed, limits):
        raise InputError(f"{archive.name} would expand from {_size(compressed)} to {_size(total)}, more than "
                         f"{limits.max_ratio:g} times its size, which only a zip bomb does; nothing was extracted")

    tops = {member.parts[0] for member in kept}
    if len(tops) == 1 and (next(iter(tops)),) not in files:
        kept = [_Member(m.name, m.parts[1:], m.is_dir, m.size, m.open) for m in kept if len(m.parts) > 1]
    return kept


def _ratio_exceeded(total: int, compressed: int, limits: ArchiveLimits) -> bool:
    return total > _RATIO_FLOOR_BYTES and total > limits.max_ratio * max(compressed, 1)


def _make_dirs(root: Path, parts: tuple[str, ...]) -> None:
    """Create each folder of ``parts`` under ``root`` as a plain ``0o755`` folder (the archive's modes are ignored)."""
    path = root
    for part in parts:
        path = path / part
        if not path.is_dir():
            path.mkdir()
            os.chmod(path, _DIR_MODE)


def _extract(archive: Path, kind: str, plan: list[_Member], destination: Path, limits: ArchiveLimits,
             compressed: int) -> list[Path]:
    """Stream every planned member into a staging folder, counting real bytes, then publish it as ``destination``."""
    try:
        staging = staging_folder(destination)
    except OSError as error:
        raise InputError(f"cannot extract {archive.name} next to {destination} ({describe_os_error(error)}); choose "
                         "another destination") from None
    written_total = 0
    extracted = []
    try:
        os.chmod(staging, _DIR_MODE)
        for member in plan:
            try:
                if member.is_dir:
                    _make_dirs(staging, member.parts)
                    continue
                _make_dirs(staging, member.parts[:-1])
            except OSError as error:
                raise _write_failed(archive, destination, member, error) from None
            written_total = _copy_member(archive, kind, member, staging.joinpath(*member.parts), destination,
                                         limits, compressed, written_total)
            extracted.append(destination.joinpath(*member.parts))
        try:
            os.replace(staging, destination)
        except OSError as error:
            if error.errno in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
                raise InputError(f"cannot extract {archive.name}: {destination} appeared and is not an empty folder; "
                                 "choose a new destination; nothing was extracted") from None
            raise InputError(f"cannot extract {archive.name} into {destination} ({describe_os_error(error)}); "
                             "nothing was extracted") from None
    except BaseException:
        remove_quietly(staging)
        raise
    return extracted


def _write_failed(archive: Path, destination: Path, member: _Member, error: OSError) -> InputError:
    return InputError(f"cannot extract {archive.name} into {destination}: writing {member.name!r} failed "
                      f"({describe_os_error(error)}); nothing was extracted")


def _copy_member(archive: Path, kind: str, member: _Member, target: Path, destination: Path, limits: ArchiveLimits,
                 compressed: int, written_total: int) -> int:
    """Stream one member to ``target`` in chunks, stopping at the limits on the bytes really written (declared sizes
    can lie). Returns the new running total."""
    try:
        source = member.open()
    except _READ_ERRORS as error:
        raise _unreadable(archive, kind, error) from None
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
    with source:
        try:
            descriptor = os.open(target, flags, _FILE_MODE)
        except OSError as error:
            raise _write_failed(archive, destination, member, error) from None
        with open(descriptor, "wb") as sink:
            try:
                os.fchmod(descriptor, _FILE_MODE)
            except OSError as error:
                raise _write_failed(archive, destination, member, error) from None
            written = 0
            while True:
                try:
                    chunk = source.read(_CHUNK)
                except _READ_ERRORS as error:
                    raise _unreadable(archive, kind, error) from None
                if not chunk:
                    break
                written += len(chunk)
                written_total += len(chunk)
                if written > member.size:
                    raise _refuse(archive, member.name, f"holds more bytes than the {_size(member.size)} it declares")
                if written > limits.max_file_bytes:
                    raise _refuse(archive, member.name, f"is larger than the {_size(limits.max_file_bytes)} "
                                                        "allowed for one file")
                if written_total > limits.max_total_bytes:
                    raise InputError(f"{archive.name} expands to more than the {_size(limits.max_total_bytes)} "
                                     "allowed for one upload; nothing was extracted")
                if _ratio_exceeded(written_total, compressed, limits):
                    raise InputError(f"{archive.name} expands to more than {limits.max_ratio:g} times its size of "
                                     f"{_size(compressed)}, which only a zip bomb does; nothing was extracted")
                try:
                    sink.write(chunk)
                except OSError as error:
                    raise _write_failed(archive, destination, member, error) from None
            try:
                sink.flush()  # here, not in close(), so a full disk is reported like any other write failure
            except OSError as error:
                raise _write_failed(archive, destination, member, error) from None
            if written < member.size:
                raise _unreadable(archive, kind, EOFError(f"member {member.name!r} ends after {written} of its "
                                                          f"{member.size} bytes"))
    return written_total
