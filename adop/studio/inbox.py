"""Submissions: a capture set brought into a studio's inbox as ``<shot>/v<NNN>``, checked before anything is queued.

A submission folder is complete when its ``submission.json`` exists (written last, atomically); a run that has been
queued for it records the flow run in ``queued.json`` beside it. The nightly sweep queues every complete submission
without ``queued.json``, with an idempotency key made of studio, shot and version, so a sweep that crashed between
creating a run and writing ``queued.json`` does not queue the submission twice.

A shot submitted again becomes the next version; older versions and their deliveries are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from adop.errors import InputError
from adop.ingest import IngestConfig, scan_capture
from adop.pipeline import PipelineOptions
from adop.storage import clone_or_copy, remove_quietly, write_json_atomic
from adop.studio.archive import ArchiveLimits, extract_archive, is_archive
from adop.studio.layout import StudioRoot
from adop.studio.names import check_priority, check_shot, check_studio, check_submitter, version_folder

SUBMISSION_FILE = "submission.json"
QUEUED_FILE = "queued.json"
CAMERA_PATH_FILE = "camera_path.json"
MAX_VERSIONS = 999


@dataclass(frozen=True)
class Submission:
    """One capture set in a studio's inbox, and what was asked of it."""

    studio: str
    shot: str
    version: int
    submitter: str
    priority: str = "normal"
    submitted: str = ""
    options: dict[str, Any] = field(default_factory=dict)
    """``PipelineOptions`` as plain JSON (the camera-path file, if any, is the submission's own copy)."""
    photos: int = 0
    id: str = ""
    """Random, unique to this submission (part of its run's idempotency key)."""

    @property
    def label(self) -> str:
        """``studio/shot/v001``: how a submission is named in messages and idempotency keys."""
        return f"{self.studio}/{self.shot}/{version_folder(self.version)}"

    def pipeline_options(self) -> PipelineOptions:
        return PipelineOptions.from_dict(self.options, where="submission options")

    def to_dict(self) -> dict[str, Any]:
        return {"studio": self.studio, "shot": self.shot, "version": self.version, "submitter": self.submitter,
                "priority": self.priority, "submitted": self.submitted, "options": self.options,
                "photos": self.photos, "id": self.id}


def read_submission(root: StudioRoot, studio: str, shot: str, version: int) -> Submission:
    """The submission ``studio/shot/vNNN``; ``InputError`` if it does not exist, is incomplete or lies elsewhere."""
    folder = root.submission_dir(studio, shot, version)
    root.inside(studio, folder, "submission folder")
    path = folder / SUBMISSION_FILE
    if not path.is_file():
        raise InputError(f"there is no complete submission {studio}/{shot}/{version_folder(version)} in the inbox")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
        submission = Submission(**document)
    except (OSError, ValueError, TypeError) as error:
        raise InputError(f"{path} is not a readable submission record ({error})") from None
    if (submission.studio, submission.shot, submission.version) != (studio, shot, version):
        raise InputError(f"{path} records {submission.label}, not {studio}/{shot}/{version_folder(version)}")
    return submission


def submit_capture(root: StudioRoot, studio: str, shot: str, source: Path, *, submitter: str,
                   priority: str = "normal", options: PipelineOptions = PipelineOptions(),
                   camera_path: Path | None = None, limits: ArchiveLimits = ArchiveLimits()) -> Submission:
    """Check ``source`` (a capture folder or a ``.zip``/``.tar`` archive of one) and bring its usable photos into
    the studio's inbox as the shot's next version. Nothing is written to the inbox if the checks fail.

    Raises:
        InputError: a bad name, an unknown studio, a missing or unreadable capture set, an unsafe archive, or too
            few usable photos (the ingest checks of the pipeline).
    """
    root.studio(check_studio(studio))
    check_shot(shot)
    check_submitter(submitter)
    check_priority(priority)
    source = Path(source)
    if not source.exists():
        raise InputError(f"capture set {source} does not exist")
    if camera_path is not None and not Path(camera_path).is_file():
        raise InputError(f"camera path file {camera_path} does not exist")
    shot_dir = root.inbox(studio) / shot
    for attempt in range(3):  # another submission's clean-up may remove an empty shot folder in between
        shot_dir.mkdir(parents=True, exist_ok=True)
        try:
            staging = Path(tempfile.mkdtemp(prefix=".incoming-", dir=shot_dir))
            break
        except FileNotFoundError:
            if attempt == 2:
                raise
    try:
        if source.is_file():
            if not is_archive(source):
                raise InputError(f"{source} is neither a folder of photos nor a .zip/.tar archive of one")
            capture = staging / "upload"
            extract_archive(source, capture, limits)
        else:
            capture = source
        image_dir, report = scan_capture(capture, options.ingest)
        images = staging / "images"
        images.mkdir()
        for image in report.images:
            clone_or_copy(image_dir / image.name, images / image.name)
        remove_quietly(staging / "upload")
        plain = options.to_dict()
        if camera_path is not None:
            shutil.copyfile(camera_path, staging / CAMERA_PATH_FILE)
            plain["fly_through"]["file"] = CAMERA_PATH_FILE
        return _publish(staging, shot_dir, Submission(
            studio=studio, shot=shot, version=0, submitter=submitter, priority=priority,
            submitted=datetime.now(timezone.utc).isoformat(timespec="seconds"), options=plain,
            photos=len(report.images), id=secrets.token_hex(8)), root.deliveries(studio) / shot)
    finally:
        remove_quietly(staging)
        with contextlib.suppress(OSError):
            shot_dir.rmdir()  # only if this submission would have been the shot's first and failed


def _publish(staging: Path, shot_dir: Path, submission: Submission, delivered: Path) -> Submission:
    """Rename ``staging`` to the shot's next free version (a rename onto an existing version fails, so two
    submissions of one shot at once get two versions), then write ``submission.json`` into it. A version that has
    deliveries is never given again, even if its submission folder is gone."""
    taken = [int(p.name[1:]) for folder in (shot_dir, delivered) for p in folder.glob("v[0-9][0-9][0-9]")
             if p.name[1:].isdigit()]
    version = max(taken, default=0) + 1
    while version <= MAX_VERSIONS:
        target = shot_dir / version_folder(version)
        try:
            os.rename(staging, target)
        except OSError:
            version += 1
            continue
        final = Submission(**{**submission.to_dict(), "version": version})
        write_json_atomic(target / SUBMISSION_FILE, final.to_dict())
        return final
    raise InputError(f"shot {shot_dir.name} has {MAX_VERSIONS} versions already; use a new shot name")


def capture_folder(root: StudioRoot, submission: Submission) -> Path:
    """The submission's photos, checked to lie (links followed) inside the studio's folder."""
    folder = root.submission_dir(submission.studio, submission.shot, submission.version)
    images = root.inside(submission.studio, folder / "images", "capture folder")
    for photo in images.iterdir():
        root.inside(submission.studio, photo, "photo")
    return folder


def resolve_options(root: StudioRoot, submission: Submission, options: PipelineOptions) -> PipelineOptions:
    """``options`` with the camera-path file resolved inside the submission folder (a path elsewhere is refused)."""
    file = options.fly_through.file
    if file is None:
        return options
    folder = root.submission_dir(submission.studio, submission.shot, submission.version)
    resolved = root.inside(submission.studio, folder / file, "camera path file")
    return options.replace(fly_through=options.fly_through.replace(file=resolved))


def mark_queued(root: StudioRoot, submission: Submission, run_id: str) -> None:
    """Record that a flow run was created for this submission (the sweep skips it from now on)."""
    folder = root.submission_dir(submission.studio, submission.shot, submission.version)
    write_json_atomic(folder / QUEUED_FILE, {"flow_run_id": run_id,
                                             "queued": datetime.now(timezone.utc).isoformat(timespec="seconds")})


def queued_run(root: StudioRoot, submission: Submission) -> str | None:
    """The flow run created for this submission, if any."""
    path = root.submission_dir(submission.studio, submission.shot, submission.version) / QUEUED_FILE
    try:
        return json.loads(path.read_text(encoding="utf-8"))["flow_run_id"]
    except (OSError, ValueError, KeyError):
        return None


def pending_submissions(root: StudioRoot) -> list[Submission]:
    """Every complete submission of every studio that has no flow run yet, oldest first."""
    found = []
    for studio in root.studios():
        inbox = root.inbox(studio)
        for record in sorted(inbox.glob(f"*/v[0-9][0-9][0-9]/{SUBMISSION_FILE}")):
            folder = record.parent
            if (folder / QUEUED_FILE).exists():
                continue
            try:
                found.append(read_submission(root, studio, folder.parent.name, int(folder.name[1:])))
            except InputError:
                continue  # a damaged record is reported by `adop status`, not queued
    return sorted(found, key=lambda s: s.submitted)
