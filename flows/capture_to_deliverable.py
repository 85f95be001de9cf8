"""The main job: a capture set in, a scene, a trained model and deliverables out.

Stages (each a cached Prefect task over the workspace's artifact cache; see flows/stages.py):
ingest → (reconstruct → train → render → deliver, added by later stages of the pipeline).
Run it with ``adop run CAPTURE_DIR --workspace DIR``; with no Prefect server configured it runs in Prefect's local
ephemeral mode.
"""

from __future__ import annotations

import flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)

from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.states import Failed
from pydantic import BaseModel, Field

from adop.cache import Workspace
from adop.errors import AdopError
from adop.ingest import IngestConfig, find_image_dir, ingest_capture
from flows.stages import STAGE_TASK_OPTIONS, run_stage

INGEST_VERSION = "ingest-1"

Stage = Literal["ingest"]


class PipelineOptions(BaseModel):
    """Flow parameters; they mirror the library configs so a deployment can set any of them."""

    min_images: int = Field(3, ge=3, description="fewest usable photos accepted")
    link_images: bool = Field(True, description="hard-link photos into the workspace instead of copying")
    stop_after: Stage = Field("ingest", description="last stage to run")


@task(name="ingest", **STAGE_TASK_OPTIONS)
def ingest(key: str, fingerprints: dict, workspace: str, params: dict, capture_dir: str) -> dict:
    """Validate the capture set and bring its photos into the workspace."""
    config = IngestConfig(**params)
    try:
        ref, built = Workspace(Path(workspace)).get_or_build_keyed(
            "ingest", INGEST_VERSION, key, fingerprints, params,
            lambda out: ingest_capture(Path(capture_dir), out, config),
        )
    except AdopError as error:
        return Failed(message=str(error))  # a user error: one line in the log, no traceback
    get_run_logger().info("ingest: %s artifact %s", "built" if built else "reused", ref.key)
    return ref.to_dict()


@flow(name="capture-to-deliverable", log_prints=True)
def capture_to_deliverable(
    capture_dir: str, workspace: str, options: PipelineOptions = PipelineOptions()
) -> dict[str, Any]:
    """Turn a capture set into deliverables, skipping every stage whose inputs have not changed."""
    try:
        return _run_pipeline(Path(capture_dir), Path(workspace), options)
    except AdopError as error:
        return Failed(message=str(error))


def _run_pipeline(capture_dir: Path, workspace: Path, options: PipelineOptions) -> dict[str, Any]:
    ws = Workspace(workspace)
    ws.clean_stale_builds()
    summary: dict[str, Any] = {"workspace": str(ws.root), "stages": {}}

    ingest_config = IngestConfig(min_images=options.min_images, link=options.link_images)
    capture_ref, state = run_stage(
        ingest, ws, stage="ingest", version=INGEST_VERSION,
        inputs={"images": find_image_dir(capture_dir).resolve()}, params=asdict(ingest_config),
        capture_dir=str(capture_dir.resolve()),
    )
    summary["stages"]["ingest"] = {"state": state, "artifact": capture_ref.to_dict()}
    get_run_logger().info("pipeline finished after %s", options.stop_after)
    return summary
