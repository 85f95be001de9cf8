"""Submitting a studio's capture sets as flow runs, following them, cancelling them and fetching what they delivered.

Runs are flow runs of the ``studio-capture/on-demand`` deployment, tagged ``studio:<name>``, ``shot:<shot>``,
``version:<n>`` and ``submitter:<who>`` and created in the studio's work queue for the submission's priority; the
idempotency key ``<studio>/<shot>/v<NNN>#<submission id>`` makes a repeated queueing of one submission (a sweep
after a crash) return the run that exists instead of queueing a second one; the random submission id keeps a later
submission that gets the same version number (after a refused one was removed) from being taken for it.
"""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from uuid import UUID

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.filters import (
    DeploymentFilter, DeploymentFilterName, FlowRunFilter, FlowRunFilterId, FlowRunFilterTags,
)
from prefect.client.schemas.objects import FlowRun
from prefect.client.schemas.sorting import FlowRunSort
from prefect.exceptions import ObjectNotFound
from prefect.states import Cancelling

from adop.errors import InputError
from adop.pipeline import LAST_STAGES
from adop.service.connection import RunNotFound, ServiceError, api_url, connect
from adop.storage import ensure_apart
from adop.studio.inbox import Submission, mark_queued, read_submission
from adop.studio.layout import StudioRoot
from adop.studio.names import check_studio, queue_name, run_tags, version_folder

FLOW_NAME = "studio-capture"
DEPLOYMENT_NAME = "on-demand"
DEPLOYMENT = f"{FLOW_NAME}/{DEPLOYMENT_NAME}"
STAGES_UP_TO = {"ingest": 1, "reconstruct": 4, "train": 5, "render": 7, "deliver": 8}
"""How many stages a run has when it stops after each of ``LAST_STAGES`` (render counted as one chunk)."""


def run_url(run_id: str | UUID) -> str:
    """Where the run is shown: Prefect's UI where the settings name one (``PREFECT_UI_URL``), else the run's API
    address."""
    from prefect.settings import get_current_settings

    ui = get_current_settings().ui_url
    return f"{ui.rstrip('/')}/runs/flow-run/{run_id}" if ui else f"{api_url().rstrip('/')}/flow_runs/{run_id}"


def queue_run(client: SyncPrefectClient, submission: Submission) -> FlowRun:
    """Create (or find, by idempotency key) the flow run of ``submission`` in its studio's queue."""
    try:
        deployment = client.read_deployment_by_name(DEPLOYMENT)
    except ObjectNotFound:
        raise ServiceError(f"the Prefect server at {api_url()} has no deployment {DEPLOYMENT}; "
                           "run `adop studio setup` on the service host") from None
    return client.create_flow_run_from_deployment(
        deployment.id,
        parameters={"studio": submission.studio, "shot": submission.shot, "version": submission.version},
        name=f"{submission.studio}-{submission.shot}-{version_folder(submission.version)}",
        tags=run_tags(submission.studio, submission.shot, submission.version, submission.submitter),
        idempotency_key=f"{submission.label}#{submission.id}",
        work_queue_name=queue_name(submission.studio, submission.priority),
    )


def submit(root: StudioRoot, submission: Submission) -> FlowRun:
    """Queue a submission that is already in the inbox; records the run beside it."""
    with connect() as client:
        run = queue_run(client, submission)
    mark_queued(root, submission, str(run.id))
    return run


@dataclass
class RunStatus:
    """What ``adop status`` and the studio page show of one run."""

    id: str
    name: str
    studio: str
    shot: str
    version: int
    submitter: str
    state: str
    state_type: str
    message: str | None
    created: datetime | None
    started: datetime | None
    ended: datetime | None
    stage: str | None = None
    stages_done: int = 0
    stages_total: int = 0
    eta_seconds: float | None = None
    stages: dict[str, str] = field(default_factory=dict)

    @property
    def progress(self) -> float:
        return 1.0 if self.state_type == "COMPLETED" else (
            min(1.0, self.stages_done / self.stages_total) if self.stages_total else 0.0)

    def to_dict(self) -> dict[str, Any]:
        document = {k: v for k, v in self.__dict__.items()}
        for key in ("created", "started", "ended"):
            document[key] = None if document[key] is None else document[key].isoformat(timespec="milliseconds")
        document["progress"] = round(self.progress, 3)
        return document


def _tag(run: FlowRun, prefix: str) -> str:
    return next((t.split(":", 1)[1] for t in run.tags if t.startswith(prefix + ":")), "")


def _status(client: SyncPrefectClient, run: FlowRun, root: StudioRoot | None) -> RunStatus:
    state = run.state
    status = RunStatus(
        id=str(run.id), name=run.name, studio=_tag(run, "studio"), shot=_tag(run, "shot"),
        version=int(_tag(run, "version") or 0), submitter=_tag(run, "submitter"),
        state=state.name if state else "Unknown", state_type=state.type.value if state else "UNKNOWN",
        message=state.message if state else None, created=run.created, started=run.start_time, ended=run.end_time)
    tasks = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run.id])))
    tasks = sorted(tasks, key=lambda t: t.start_time or t.expected_start_time or t.created or datetime.min.replace(
        tzinfo=timezone.utc))
    for task in tasks:
        stage = task.name.rsplit("-", 1)[0]
        status.stages[stage] = task.state.name if task.state else "Unknown"
        status.stage = stage
    status.stages_done = sum(1 for name in status.stages.values() if name in ("Completed", "Cached"))
    stop_after = "deliver"
    if root is not None and status.studio and status.shot:
        try:
            stop_after = read_submission(root, status.studio, status.shot, status.version).options.get(
                "stop_after", "deliver")
        except InputError:
            pass
    status.stages_total = STAGES_UP_TO.get(stop_after, len(LAST_STAGES))
    if state is not None and state.is_running() and run.start_time and 0 < status.progress < 1:
        elapsed = (datetime.now(timezone.utc) - run.start_time).total_seconds()
        status.eta_seconds = elapsed / status.progress * (1 - status.progress)
    return status


def studio_run(root: StudioRoot, studio: str, run_id: str) -> Path:
    """The delivery folder of the studio's run ``run_id`` (one request to the server; for the page's file routes).

    Raises:
        RunNotFound: no such run, or not the studio's.
    """
    with connect() as client:
        run = read_run(client, run_id, studio)
    shot, version = _tag(run, "shot"), _tag(run, "version")
    if not (shot and version.isdigit()):
        raise RunNotFound(f"flow run {run_id} is not a studio run")
    return root.delivery_dir(studio, shot, int(version))


def list_runs(studio: str | None = None, run_id: str | None = None, *, root: StudioRoot | None = None,
              limit: int = 50) -> list[RunStatus]:
    """The studio's runs (or every studio's), newest first, or the one run ``run_id``."""
    with connect() as client:
        if run_id is not None:
            return [_status(client, read_run(client, run_id, studio), root)]
        tags = FlowRunFilterTags(all_=[f"studio:{check_studio(studio)}"]) if studio else None
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(tags=tags) if tags else None,
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[DEPLOYMENT_NAME])),
            sort=FlowRunSort.EXPECTED_START_TIME_DESC, limit=limit)
        return [_status(client, run, root) for run in runs]


def read_run(client: SyncPrefectClient, run_id: str, studio: str | None = None) -> FlowRun:
    """The flow run ``run_id``; with ``studio``, only if it is that studio's."""
    try:
        run = client.read_flow_run(UUID(str(run_id)))
    except (ValueError, ObjectNotFound):
        raise RunNotFound(f"the Prefect server at {api_url()} has no flow run {run_id}") from None
    if studio is not None and f"studio:{check_studio(studio)}" not in run.tags:
        raise RunNotFound(f"flow run {run_id} does not belong to studio {studio!r}")
    return run


def cancel(run_id: str, studio: str | None = None) -> str:
    """Cancel a run: a queued one at once, a running one through its worker (which stops the process)."""
    with connect() as client:
        run = read_run(client, run_id, studio)
        if run.state is not None and run.state.is_final():
            raise ServiceError(f"flow run {run_id} has already finished ({run.state.name}); nothing to cancel")
        # Cancelling, never forced: the server turns it into Cancelled for a run that no worker has started, and a
        # run that started meanwhile is stopped by its worker instead of left running with its GPU.
        result = client.set_flow_run_state(run.id, Cancelling(message="cancelled by adop cancel"))
        return result.state.name if result.state is not None else "Cancelling"


def fetch(root: StudioRoot, run_id: str, out: Path, studio: str | None = None) -> Path:
    """Copy what ``run_id`` delivered into ``out`` (a new or empty folder); refuses a run that has not finished."""
    with connect() as client:
        run = read_run(client, run_id, studio)
    if run.state is None or not run.state.is_completed():
        name = run.state.name if run.state else "unknown"
        raise ServiceError(f"flow run {run_id} is {name}; its deliverables are ready once it has completed")
    owner, shot, version = _tag(run, "studio"), _tag(run, "shot"), _tag(run, "version")
    if not (owner and shot and version.isdigit()):
        raise RunNotFound(f"flow run {run_id} is not a studio run (it has no studio, shot and version tags)")
    source = root.delivery_dir(owner, shot, int(version))
    if not source.is_dir():
        raise ServiceError(f"flow run {run_id} completed but {source} is missing; was the studio folder moved?")
    out = Path(out)
    ensure_apart(out, "output folder", deliveries=root.root)
    if out.exists() and any(out.iterdir()):
        raise InputError(f"{out} is not empty; choose a new folder for the deliverables")
    shutil.copytree(source, out, dirs_exist_ok=True)
    return out


def check_server() -> None:
    """Fail now, before anything is written to an inbox, if the server is unreachable, refuses us or lacks the
    on-demand deployment."""
    with connect() as client:
        try:
            client.read_deployment_by_name(DEPLOYMENT)
        except ObjectNotFound:
            raise ServiceError(f"the Prefect server at {api_url()} has no deployment {DEPLOYMENT}; "
                               "run `adop studio setup` on the service host") from None


def submit_capture_set(root: StudioRoot, studio: str, shot: str, source: Path, *, tonight: bool = False,
                       **submission: Any) -> tuple[Submission, FlowRun | None]:
    """Check the server (unless ``tonight``), bring the capture set into the inbox, and queue it now (or leave it
    for the nightly sweep). If queueing fails after the photos were copied, the new version is removed again, so a
    refused submission leaves nothing behind."""
    from adop.studio.inbox import submit_capture
    from adop.studio.names import check_shot

    root.studio(check_studio(studio))  # a bad name or an unknown studio is refused before the server is asked
    check_shot(shot)
    if not tonight:
        check_server()
    entry = submit_capture(root, studio, shot, source, **submission)
    if tonight:
        return entry, None
    try:
        return entry, submit(root, entry)
    except BaseException:
        folder = root.submission_dir(entry.studio, entry.shot, entry.version)
        shutil.rmtree(folder, ignore_errors=True)
        with contextlib.suppress(OSError):
            folder.parent.rmdir()  # the shot's folder, if this was its only version
        raise
