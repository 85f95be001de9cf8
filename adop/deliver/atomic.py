"""Safe file output for deliverables: atomic writes, writability and free-space checks, checksums.

A farm job can die at any moment (preemption, out of memory, a full disk). Every deliverable is therefore written to
a hidden temporary name in its final folder and renamed into place with `os.replace` only once complete, so a file
with its final name is always whole; a crash leaves at most a ``.name.partial-*`` file, which no sequence glob or
manifest picks up.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import secrets
import shutil
from collections.abc import Iterator
from pathlib import Path

from adop.errors import InputError, StageError

PARTIAL_MARK = ".partial-"


def partial_path(final: Path) -> Path:
    """A unique hidden temporary name next to ``final`` (same folder, so the rename is atomic)."""
    return final.with_name(f".{final.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def atomic_output(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path to write; on success rename it to ``final``, on any error delete it.

    The folder is created if missing.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_output(Path(d) / "a.txt") as tmp:
        ...         _ = tmp.write_text("done")
        ...     (Path(d) / "a.txt").read_text()
        'done'
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the folder {final.parent} for {final.name} ({describe_os_error(exc)}); "
            "choose another output folder"
        ) from exc
    tmp = partial_path(final)
    try:
        yield tmp
        if not tmp.exists():
            raise StageError(f"{final}: the writer reported success but produced no file")
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def ensure_writable_dir(folder: str | os.PathLike[str]) -> Path:
    """Create ``folder`` if needed and prove it is writable by creating and deleting a probe file.

    Checking up front turns a permission problem into one clear message before minutes of rendering or encoding.

    Raises:
        InputError: the folder cannot be created or written (the message names it and the OS reason).
    """
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = partial_path(folder / "write-probe")
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise InputError(
            f"output folder {folder} is not writable ({exc.strerror or exc}); choose another folder or fix its "
            "permissions"
        ) from exc
    return folder


def check_free_space(folder: str | os.PathLike[str], needed_bytes: int, what: str) -> None:
    """Fail before writing ``what`` if ``folder``'s file system has less than ``needed_bytes`` free.

    Raises:
        StageError: not enough space; the message gives both numbers in MB.
    """
    free = shutil.disk_usage(folder).free
    if free < needed_bytes:
        raise StageError(
            f"not enough disk space in {folder} for {what}: about {needed_bytes / 1e6:.0f} MB needed, "
            f"{free / 1e6:.0f} MB free; free some space or write elsewhere"
        )


def sha256_file(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex SHA-256 of a file, read in 1 MiB chunks (videos can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def describe_os_error(exc: OSError) -> str:
    """Short human reason for an OSError, with a hint for the usual suspects."""
    if exc.errno == errno.ENOSPC:
        return "the disk is full"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return exc.strerror or str(exc)
