"""File safety: atomic files and folders, writability and free-space checks, checksums, links.

A farm job can die at any moment (preemption, out of memory, a full disk). Every file adop produces is therefore
written to a hidden temporary sibling and renamed into place only once it is complete (``os.replace`` is atomic within
one file system), so a file or folder under its final name is always whole; a crash leaves at most a hidden
``.stem.partial-PID-HEX.ext`` entry. It keeps the suffix (writers choose the format by it), so a bare ``*.png`` glob
would see it: adop never globs for outputs, and frame sequences are matched by their ``name.####.ext`` pattern, which a
partial name never fits. A full disk or a folder that cannot be
written is the user's to fix, so both raise one ``InputError`` that says so.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from adop.errors import InputError, StageError

PARTIAL_MARK = ".partial-"
_CHUNK = 1 << 20


def partial_path(final: Path) -> Path:
    """A unique hidden temporary name beside ``final`` that keeps its suffix (writers choose formats by it)."""
    final = Path(final)
    return final.with_name(f".{final.stem}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}{final.suffix}")


def describe_os_error(error: OSError) -> str:
    """A short human reason for an ``OSError``."""
    if error.errno == errno.ENOSPC:
        return "the disk is full"
    if error.errno == errno.EFBIG:
        return "the file is larger than this file system or a limit allows"
    if error.errno == errno.EDQUOT:
        return "the disk quota is exhausted"
    if error.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "permission denied"
    return error.strerror or str(error)


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it to ``final``, on any error delete it.

    The folder is created if missing. A full disk becomes an ``InputError``.

    Example:
        >>> import tempfile
        >>> with tempfile.TemporaryDirectory() as d:
        ...     with atomic_path(Path(d) / "a.txt") as tmp:
        ...         _ = tmp.write_text("done")
        ...     (Path(d) / "a.txt").read_text()
        'done'
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise InputError(
            f"cannot create the folder {final.parent} for {final.name} ({describe_os_error(error)}); "
            "choose another output folder"
        ) from None
    tmp = partial_path(final)
    try:
        yield tmp
        if not tmp.exists():
            raise StageError(f"{final}: the writer reported success but produced no file")
        os.replace(tmp, final)
    except OSError as error:
        remove_quietly(tmp)
        if error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            raise InputError(f"writing {final} failed: the disk is full, a quota is reached or the file is too large "
                             f"({describe_os_error(error)}); free some space and run again") from None
        raise
    except BaseException:
        remove_quietly(tmp)
        raise


def write_text_atomic(final: Path, text: str) -> Path:
    """Write a text file atomically (flushed and fsynced before the rename)."""
    with atomic_path(final) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    return Path(final)


def write_json_atomic(final: str | os.PathLike[str], document: Mapping[str, Any]) -> Path:
    """Write ``document`` as indented JSON atomically, so readers never see half of it."""
    return write_text_atomic(Path(final), json.dumps(document, indent=1) + "\n")


def replace_folder(staging: Path, final: Path) -> None:
    """Move the finished folder ``staging`` to ``final``; an old ``final`` is set aside first, deleted only after.

    Readers see the old folder or the new one, never a mixture or nothing but during the two renames.
    """
    staging, final = Path(staging), Path(final)
    old = None
    if final.exists():
        old = final.with_name(f".{final.name}{PARTIAL_MARK}old-{secrets.token_hex(4)}")
        os.replace(final, old)
    os.replace(staging, final)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def staging_folder(final: Path) -> Path:
    """A new empty hidden folder beside ``final`` to build it in (publish it with ``replace_folder``)."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.with_name(f".{final.name}{PARTIAL_MARK}{os.getpid()}-{secrets.token_hex(4)}")
    staging.mkdir()
    return staging


def remove_quietly(path: Path) -> None:
    """Delete a file or folder if it exists; never raises for a missing one."""
    path = Path(path)
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            path.unlink()


def ensure_writable_dir(path: str | os.PathLike[str], purpose: str = "output") -> Path:
    """Create ``path`` if needed and prove it is writable; raise one clear ``InputError`` otherwise.

    Checking up front turns a permission problem into one message before minutes of work.
    """
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path, prefix=".write-test-"):
            pass
    except OSError as error:
        raise InputError(
            f"the {purpose} folder {path} is not writable ({error.strerror or error}); "
            "choose another folder or fix its permissions"
        ) from None
    return path


def ensure_parent_exists(path: str | os.PathLike[str], purpose: str = "output") -> Path:
    """Refuse an output folder whose parent does not exist: a mistyped path should not silently start a new tree.

    Raises:
        InputError: naming the first missing folder.
    """
    path = Path(path).expanduser()
    parent = path.absolute().parent
    if not parent.exists():
        missing = parent
        while not missing.parent.exists():
            missing = missing.parent
        raise InputError(f"the {purpose} {path} is inside {missing}, which does not exist; check the path, or "
                         "create that folder first")
    return path


def ensure_free_space(path: str | os.PathLike[str], needed_bytes: int, purpose: str = "output") -> None:
    """Raise a clear ``InputError`` when the file system holding ``path`` has less than ``needed_bytes`` free."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise InputError(
            f"not enough free disk space for the {purpose} in {path}: {free / 2**20:.0f} MiB free, "
            f"about {needed_bytes / 2**20:.0f} MiB needed; free some space or choose another folder"
        )


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks (movies and photo sets can be large)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


_FICLONE = 0x40049409
"""Linux ``ioctl`` that makes ``target`` share ``source``'s blocks copy-on-write (btrfs, XFS, bcachefs, ...)."""


def clone_or_copy(source: Path, target: Path) -> str:
    """A copy of ``source`` at ``target`` that can never change ``source``: a copy-on-write clone where the file
    system supports it (no extra disk until one side is written), otherwise a plain copy. Returns which was made.

    Unlike a hard link, writing to either file never changes the other, so a workspace cannot be a way to alter a
    user's photos.
    """
    source, target = Path(source), Path(target)
    try:
        with open(source, "rb") as src, open(target, "xb") as dst:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
        shutil.copystat(source, target)
        return "clone"
    except OSError:
        target.unlink(missing_ok=True)
    shutil.copy2(source, target)
    return "copy"


def ensure_apart(output: str | os.PathLike[str], what: str = "output", **inputs: str | os.PathLike[str] | None) -> None:
    """Refuse an output that is, contains or lies inside one of the named inputs, before anything is written.

    Example: ``ensure_apart(out, "scene folder", capture=capture_dir)``. An output inside an input would be read back as
    input on the next run (or, with an overwrite, replace the input); one that contains an input would be deleted
    with it.

    Raises:
        InputError: naming the output, the input and how they overlap.
    """
    target = Path(output).expanduser().resolve()
    for name, value in inputs.items():
        if value is None:
            continue
        source = Path(value).expanduser().resolve()
        if target == source:
            relation = "is"
        elif source.is_relative_to(target):
            relation = "contains"
        elif target.is_relative_to(source):
            relation = "lies inside"
        else:
            continue
        raise InputError(
            f"the {what} {output} {relation} the {name.replace('_', ' ')} {value}; choose a {what} outside it "
            "(adop never writes into its inputs)"
        )


def link_or_copy(source: Path, target: Path) -> None:
    """Hard-link ``source`` to ``target`` where the file system allows it, else copy it (with metadata).

    For adop's own files only (artifacts sharing bytes inside a workspace); a user's photos go through
    ``clone_or_copy``, which can never make the workspace a way to change them.
    """
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


def link_tree(source: Path, target: Path) -> None:
    """Hard-link (else copy) a file or a whole folder to ``target``: artifacts share bytes at no disk cost."""
    source, target = Path(source), Path(target)
    if source.is_dir():
        shutil.copytree(source, target, copy_function=lambda s, t: link_or_copy(Path(s), Path(t)))
    elif source.is_file():
        link_or_copy(source, target)
