"""The artifact cache: every stage's output is a folder in a workspace, keyed by what went into it.

Layout::

    WORKSPACE/
      artifacts/<stage>/<key>/        one finished artifact: the stage's files + manifest.json
      artifacts/<stage>/.building-*   in progress (renamed into place only when complete)
      locks/<stage>-<key>.lock        one lock file per key, so two processes never build the same artifact twice

The key is a SHA-256 over the stage name, the stage's version string, the *content* of its inputs (files and folders
hashed by bytes and relative names, never by path or mtime; upstream artifacts by their content digest) and its
parameters (canonical JSON) and the package version. A copied capture set therefore hits the cache, and a stage whose upstream rebuilt to
identical bytes is not rebuilt (early cutoff).

``manifest.json`` records the key, inputs, parameters, creation time, adop version and the SHA-256 and size of every
file. An artifact is used only if its manifest parses, its key matches and every file is present with the recorded
checksum; otherwise it is moved aside and rebuilt. Building happens in a temporary sibling folder that is renamed into
place atomically once the builder returned and the manifest is written, so a killed build leaves nothing that looks
finished.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adop import __version__
from adop.errors import AdopError, InputError
from adop.storage import ensure_writable_dir, sha256_file

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith(".building-"))


_FILE_DIGESTS: dict[tuple[str, int, int, int], str] = {}
"""sha256 by (path, size, mtime, inode): a Prefect cache key and the task body hash the same inputs once per process."""


def _file_digest(file: Path) -> str:
    stat = file.stat()
    signature = (str(file.resolve()), stat.st_size, stat.st_mtime_ns, stat.st_ino)
    digest = _FILE_DIGESTS.get(signature)
    if digest is None:
        if len(_FILE_DIGESTS) > 100_000:
            _FILE_DIGESTS.clear()
        digest = _FILE_DIGESTS[signature] = sha256_file(file)
    return digest


def sha256_tree(path: Path) -> str:
    """Content hash of a file or a folder (relative names + bytes of every file; empty folders do not count)."""
    path = Path(path)
    if path.is_file():
        return _file_digest(path)
    if not path.is_dir():
        raise InputError(f"{path} does not exist")
    digest = hashlib.sha256()
    for file in _files_under(path):
        digest.update(file.relative_to(path).as_posix().encode())
        digest.update(b"\0")
        digest.update(_file_digest(file).encode())
    return digest.hexdigest()


@dataclass(frozen=True)
class ArtifactRef:
    """A small, JSON-friendly reference to a finished artifact (what Prefect tasks pass around, never the data).

    Attributes:
        stage: the stage that produced it.
        key: the cache key (hex).
        path: the artifact folder.
        digest: content digest of the artifact's files (from its manifest); downstream keys use this.
    """

    stage: str
    key: str
    path: str
    digest: str

    def to_dict(self) -> dict[str, str]:
        return {"stage": self.stage, "key": self.key, "path": self.path, "digest": self.digest}

    @classmethod
    def from_dict(cls, data: Mapping[str, str]) -> ArtifactRef:
        return cls(stage=data["stage"], key=data["key"], path=data["path"], digest=data["digest"])

    @property
    def folder(self) -> Path:
        return Path(self.path)


InputValue = Path | ArtifactRef | str | bytes | tuple[ArtifactRef, ...] | list[ArtifactRef]


def _input_fingerprint(value: InputValue) -> str:
    if isinstance(value, ArtifactRef):
        return f"artifact:{value.stage}:{value.digest}"
    if isinstance(value, (list, tuple)):
        return "artifacts:" + ",".join(_input_fingerprint(item) for item in value)
    if isinstance(value, Path):
        return f"content:{sha256_tree(value)}"
    if isinstance(value, bytes):
        return f"bytes:{hashlib.sha256(value).hexdigest()}"
    return f"text:{value}"


def _canonical(params: Mapping[str, Any]) -> str:
    return json.dumps(params, sort_keys=True, separators=(",", ":"), default=str)


def compute_key(
    stage: str, version: str, inputs: Mapping[str, InputValue], params: Mapping[str, Any]
) -> tuple[str, dict[str, str]]:
    """The cache key of a stage run, and the per-input fingerprints that went into it (for the manifest).

    The key covers the stage and its version, the package version (a new adop never reuses an older one's
    artifacts), the content of every input and the parameters (configs as their canonical ``to_dict``).
    """
    fingerprints = {name: _input_fingerprint(value) for name, value in sorted(inputs.items())}
    material = _canonical({"stage": stage, "version": version, "adop": __version__, "inputs": fingerprints,
                           "params": params})
    return hashlib.sha256(material.encode()).hexdigest()[:32], fingerprints


class CorruptArtifact(AdopError):
    """An artifact folder exists but fails validation (internal: the cache rebuilds it)."""


class Workspace:
    """A folder holding artifacts, with build-once-per-key semantics across threads and processes."""

    def __init__(self, root: Path) -> None:
        self.root = ensure_writable_dir(Path(root).expanduser().resolve(), "workspace")
        self.artifacts = ensure_writable_dir(self.root / "artifacts", "workspace's artifacts")
        self.locks = ensure_writable_dir(self.root / "locks", "workspace's locks")

    def artifact_dir(self, stage: str, key: str) -> Path:
        return self.artifacts / stage / key

    # ---- lookup ---------------------------------------------------------------------------------------------------

    def validate(self, folder: Path, key: str | None = None, *, checksums: bool = True) -> dict[str, Any]:
        """Return the manifest of a finished artifact, or raise ``CorruptArtifact`` saying what is wrong."""
        manifest_path = folder / MANIFEST
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise CorruptArtifact(f"{folder} has no {MANIFEST}") from None
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise CorruptArtifact(f"{manifest_path} is unreadable ({error})") from None
        if key is not None and manifest.get("key") != key:
            raise CorruptArtifact(f"{folder} belongs to key {manifest.get('key')}, not {key}")
        for name, record in manifest.get("files", {}).items():
            file = folder / name
            if not file.is_file():
                raise CorruptArtifact(f"{file} is missing")
            if file.stat().st_size != record["size"]:
                raise CorruptArtifact(f"{file} has {file.stat().st_size} bytes, the manifest says {record['size']}")
            if checksums and sha256_file(file) != record["sha256"]:
                raise CorruptArtifact(f"{file} does not match its checksum")
        return manifest

    def lookup(self, stage: str, key: str, *, checksums: bool = True, repair: bool = False) -> ArtifactRef | None:
        """The finished, valid artifact for ``key``, else None.

        A damaged artifact is logged; with ``repair`` (only under the key's lock) it is also moved aside.
        """
        folder = self.artifact_dir(stage, key)
        if not folder.exists():
            return None
        try:
            manifest = self.validate(folder, key, checksums=checksums)
        except CorruptArtifact as problem:
            log.warning("damaged artifact (%s); it will be rebuilt", problem)
            if repair:
                self._discard(folder)
            return None
        return ArtifactRef(stage=stage, key=key, path=str(folder), digest=manifest["digest"])

    def check(self, ref: ArtifactRef) -> bool:
        """Whether a reference (e.g. one Prefect returned from its result cache) still points at a valid artifact."""
        try:
            manifest = self.validate(Path(ref.path), ref.key)
        except CorruptArtifact as problem:
            log.warning("cached reference is stale (%s)", problem)
            return False
        return manifest.get("digest") == ref.digest

    # ---- build ----------------------------------------------------------------------------------------------------

    def get_or_build(
        self,
        stage: str,
        version: str,
        inputs: Mapping[str, InputValue],
        params: Mapping[str, Any],
        build: Callable[[Path], None],
    ) -> tuple[ArtifactRef, bool]:
        """Return ``(artifact, built)``; ``build(folder)`` runs only when no valid artifact exists for the key.

        ``build`` writes the stage's files into the empty folder it is given; it must not write anywhere else. If it
        raises, nothing is kept. Concurrent callers with the same key wait for the first and then reuse its result.
        """
        key, fingerprints = compute_key(stage, version, inputs, params)
        return self.get_or_build_keyed(stage, version, key, fingerprints, params, build)

    def get_or_build_keyed(
        self,
        stage: str,
        version: str,
        key: str,
        fingerprints: Mapping[str, str],
        params: Mapping[str, Any],
        build: Callable[[Path], None],
    ) -> tuple[ArtifactRef, bool]:
        """``get_or_build`` with a key already computed by ``compute_key`` (so inputs are hashed once)."""
        existing = self.lookup(stage, key)
        if existing is not None:
            return existing, False
        with self._lock(stage, key):
            existing = self.lookup(stage, key, repair=True)
            if existing is not None:
                return existing, False
            return self._build(stage, version, key, dict(fingerprints), params, build), True

    def _build(
        self,
        stage: str,
        version: str,
        key: str,
        fingerprints: dict[str, str],
        params: Mapping[str, Any],
        build: Callable[[Path], None],
    ) -> ArtifactRef:
        stage_dir = self.artifacts / stage
        stage_dir.mkdir(parents=True, exist_ok=True)
        staging = stage_dir / f".building-{key}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        started = time.perf_counter()
        try:
            build(staging)
            files = {
                file.relative_to(staging).as_posix(): {"sha256": sha256_file(file), "size": file.stat().st_size}
                for file in _files_under(staging)
                if file.name != MANIFEST
            }
            digest = hashlib.sha256(_canonical(files).encode()).hexdigest()
            manifest = {
                "stage": stage,
                "stage_version": version,
                "key": key,
                "digest": digest,
                "inputs": fingerprints,
                "params": json.loads(_canonical(params)),
                "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "build_seconds": round(time.perf_counter() - started, 3),
                "adop_version": __version__,
                "files": files,
            }
            with open(staging / MANIFEST, "w", encoding="utf-8") as handle:
                json.dump(manifest, handle, indent=1)
                handle.flush()
                os.fsync(handle.fileno())
            final = self.artifact_dir(stage, key)
            if final.exists():  # damaged (lookup refused it): set aside as a stale build, then publish
                self._discard(final)
            os.rename(staging, final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return ArtifactRef(stage=stage, key=key, path=str(final), digest=digest)

    def _discard(self, folder: Path) -> None:
        trash = folder.parent / f".building-discarded-{folder.name}-{uuid.uuid4().hex[:8]}"
        with contextlib.suppress(FileNotFoundError):
            os.rename(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    @contextlib.contextmanager
    def _lock(self, stage: str, key: str) -> Iterator[None]:
        lock_path = self.locks / f"{stage}-{key}.lock"
        with open(lock_path, "a+") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def clean_stale_builds(self) -> int:
        """Remove leftovers of killed builds (``.building-*`` folders not locked by a live builder)."""
        removed = 0
        for leftover in self.artifacts.glob("*/.building-*"):
            key = leftover.name.split("-")[1] if leftover.name.count("-") >= 2 else ""
            lock_path = self.locks / f"{leftover.parent.name}-{key}.lock"
            with open(lock_path, "a+") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    continue  # a live process is building it
                try:
                    shutil.rmtree(leftover, ignore_errors=True)
                    removed += 1
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        return removed
