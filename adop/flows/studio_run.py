"""The studio service's flow: one submission (studio, shot, version) through the pipeline, delivered to the studio.

A run is named by studio, shot and version only: the capture set is read from the studio's inbox and everything is
written to the studio's workspace and deliveries (``adop.studio``), so a run cannot read or write another studio's
files whatever its parameters say. The options are the submission's own (``submission.json``), recorded when it was
submitted. When the run ends, ``deliveries/<shot>/v<NNN>/`` holds what the studio collects (the fly-through, the
contact sheet, the reconstruction quick look and report, ``run.json`` with the state and the metrics) and the
studio's webhook gets a JSON message.
"""

# No ``from __future__ import annotations``: Prefect builds the flow's parameter model from the signature.

import adop.flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)

import json
import logging
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.runtime import flow_run as current_run
from prefect.client.schemas.objects import FlowRun
from prefect.states import Failed, State

from adop.cache import ArtifactRef, Workspace
from adop.errors import AdopError
from adop.evaluate import heldout_metrics
from adop.flows._env import configure_library_logging
from adop.flows.capture_to_deliverable import run_pipeline
from adop.flows.scale_out import farm_scale_out
from adop.flows.recovery import requeue_crashed, requeue_limit_reached
from adop.storage import link_tree, remove_quietly, write_json_atomic
from adop.studio.inbox import Submission, capture_folder, read_submission, resolve_options
from adop.studio.layout import StudioRoot
from adop.studio.names import check_shot, check_studio
from adop.studio.notify import post_json, run_message

RUN_RECORD = "run.json"
SCENE_FILES = ("quicklook.png", "reconstruction_summary.txt", "reconstruction_report.json")
"""What of the scene artifact a studio sees: the top-down picture and the report."""

PAGE_URL_VARIABLE = "ADOP_STUDIO_PAGE_URL"
"""Where studios reach the page (e.g. https://adop.studio.example); webhook links point there, else at the files."""

logger = logging.getLogger(__name__)


def _publish(root: StudioRoot, submission: Submission, summary: dict[str, Any]) -> dict[str, Any]:
    """Link the deliverables of a finished run into ``deliveries/<shot>/v<NNN>/``; returns the metrics."""
    target = root.delivery_dir(submission.studio, submission.shot, submission.version)
    root.inside(submission.studio, target, "delivery folder")
    target.mkdir(parents=True, exist_ok=True)
    stages = summary["stages"]
    workspace = Workspace(Path(summary["workspace"]))

    def folder(stage: str) -> Path | None:
        record = stages.get(stage)
        if record is None:
            return None
        ref = workspace.lookup(stage, ArtifactRef.from_dict(record["artifact"]).key, checksums=False)
        return None if ref is None else ref.folder

    sources: list[Path] = []
    scene = folder("scene")
    if scene is not None:
        sources += [scene / name for name in SCENE_FILES]
    delivered = folder("deliver")
    if delivered is not None:
        sources += sorted(delivered.iterdir())
    for source in sources:
        destination = target / source.name
        if source.exists():
            remove_quietly(destination)
            link_tree(source, destination)
    model = folder("train")
    return heldout_metrics(model) if model is not None else {}


def _write_record(root: StudioRoot, submission: Submission, **fields: Any) -> None:
    target = root.delivery_dir(submission.studio, submission.shot, submission.version)
    target.mkdir(parents=True, exist_ok=True)
    files = sorted(p.name for p in target.iterdir() if p.name != RUN_RECORD and not p.name.startswith("."))
    record = {**submission.to_dict(), "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
              "files": files, **fields}
    write_json_atomic(target / RUN_RECORD, record)


def notify_studio(flow: Any, flow_run: FlowRun, state: State) -> None:
    """Flow hook (completed, failed, crashed, cancelled): post the run's message to the studio's webhook."""
    parameters = flow_run.parameters or {}
    try:
        root = StudioRoot.from_environment()
        studio = root.studio(parameters["studio"])
        shot, version = check_shot(parameters["shot"]), int(parameters["version"])
    except (AdopError, KeyError, TypeError, ValueError) as error:
        logger.warning("no notification for flow run %s: %s", flow_run.id, error)
        return
    if studio.webhook is None:
        return
    folder = root.delivery_dir(studio.name, shot, version)
    record: dict[str, Any] = {}
    try:
        record = json.loads((folder / RUN_RECORD).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        pass
    page = os.environ.get(PAGE_URL_VARIABLE, "").rstrip("/")
    links = {name: (f"{page}/studios/{studio.name}/runs/{flow_run.id}/files/{name}" if page else str(folder / name))
             for name in record.get("files", []) if name != "exr"}
    reason = None if state.is_completed() else (state.message or state.name)
    message = run_message(studio=studio.name, shot=shot, version=version, run_id=str(flow_run.id),
                          state=state.name, reason=reason, links=links, metrics=record.get("metrics", {}))
    if post_json(studio.webhook, message):
        logger.info("studio %s notified: run %s %s", studio.name, flow_run.id, state.name)


def requeue_or_notify(flow: Any, flow_run: FlowRun, state: State) -> None:
    """Flow hook (crashed): put the run back in its queue (``adop.flows.recovery``); past the limit, notify."""
    if not requeue_crashed(flow_run, state):
        notify_studio(flow, flow_run, state)


@flow(name="studio-capture", log_prints=True, on_completion=[notify_studio], on_failure=[notify_studio],
      on_crashed=[requeue_or_notify], on_cancellation=[notify_studio])
def studio_capture(studio: str, shot: str, version: int) -> dict[str, Any]:
    """Run one submission of a studio through the pipeline and deliver it to the studio's deliveries folder."""
    configure_library_logging()
    run_logger = get_run_logger()
    try:
        root = StudioRoot.from_environment()
        root.studio(check_studio(studio))
        submission = read_submission(root, studio, check_shot(shot), int(version))
    except AdopError as error:
        return Failed(message=str(error))  # type: ignore[return-value]
    given_up = requeue_limit_reached(current_run.id)
    if given_up is not None:
        _write_record(root, submission, state="Failed", reason=given_up, metrics={})
        return Failed(message=given_up)  # type: ignore[return-value]
    try:
        capture = capture_folder(root, submission)
        options = resolve_options(root, submission, submission.pipeline_options()).replace(
            scale_out=farm_scale_out())  # the farm's cluster, never one a submission names
        workspace = root.inside(studio, root.workspace(studio), "workspace")
        run_logger.info("%s: %d photos, stop after %s, submitted by %s", submission.label, submission.photos,
                        options.stop_after, submission.submitter)
        summary = run_pipeline(capture, Workspace(workspace), options)
        metrics = _publish(root, submission, summary)
    except AdopError as error:
        _write_record(root, submission, state="Failed", reason=str(error), metrics={})
        return Failed(message=str(error))  # type: ignore[return-value]
    _write_record(root, submission, state="Completed", reason=None, metrics=metrics,
                  stages={name: record["state"] for name, record in summary["stages"].items()})
    run_logger.info("%s delivered to %s", submission.label,
                    root.delivery_dir(studio, submission.shot, submission.version))
    return summary
