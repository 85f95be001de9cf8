"""Safe file writing: atomic replacement, free-space checks, writability checks.

Every file a stage produces goes through ``atomic_path`` so that a killed process or a full disk never leaves a
half-written file under its final name: the data is written to a temporary sibling and renamed into place only
once it is complete (``os.replace`` is atomic within one filesystem).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

from adop.errors import InputError


@contextlib.contextmanager
def atomic_path(final: Path) -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success rename it to ``final``, on error delete it.

    The temporary name keeps ``final``'s suffix so that libraries choosing a format by extension still work.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.stem}.tmp-{uuid.uuid4().hex[:8]}{final.suffix}")
    try:
        yield tmp
        os.replace(tmp, final)
    except OSError as error:
        _unlink_quietly(tmp)
        if error.errno == errno.ENOSPC:
            raise InputError(f"the disk is full while writing {final}; free some space and run again") from None
        raise
    except BaseException:
        _unlink_quietly(tmp)
        raise


def write_text_atomic(final: Path, text: str) -> None:
    """Write a text file atomically (flushed and fsynced before the rename)."""
    with atomic_path(final) as tmp:
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())


def _unlink_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError, IsADirectoryError):
        path.unlink()
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)


def ensure_writable_dir(path: Path, purpose: str = "output") -> Path:
    """Create ``path`` if needed and prove it is writable; raise one clear ``InputError`` otherwise."""
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


def ensure_free_space(path: Path, needed_bytes: int, purpose: str = "output") -> None:
    """Raise a clear error when the filesystem holding ``path`` has less than ``needed_bytes`` free."""
    probe = Path(path)
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    free = shutil.disk_usage(probe).free
    if free < needed_bytes:
        raise InputError(
            f"not enough free disk space for the {purpose} in {path}: {free / 2**20:.0f} MiB free, "
            f"about {needed_bytes / 2**20:.0f} MiB needed; free some space or choose another folder"
        )
