"""The main job: a capture set in, a scene, a trained model and deliverables out.

Stages, each a cached Prefect task over the workspace's artifact cache (flows/stages.py):

    ingest ─► sfm ─► scene ─► train ─► render (one task per frame chunk) ─► deliver

``sfm`` (pycolmap database + model) and ``scene`` (cleanup + ADOP preprocessing) are separate artifacts, so changing a
cleanup parameter reruns only ``scene``. Training checkpoints live in ``WS/runs/<key>`` (outside the artifact), so a
killed training resumes from its last checkpoint when the flow is rerun; the finished model becomes the ``train``
artifact. Each render chunk is its own artifact, so a new exposure or path rerenders only what changed, and chunks can
be spread over workers by a distributed task runner. Run it with ``adop run CAPTURE_DIR --workspace DIR``; with no Prefect server
configured it runs in Prefect's local ephemeral mode.
"""

from __future__ import annotations

import flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)

from dataclasses import asdict
from pathlib import Path
from typing import Any, Literal

from prefect import flow, get_run_logger, task
from prefect.states import Failed
from pydantic import BaseModel, Field

from adop.errors import AdopError
from adop.ingest import IngestConfig, find_image_dir, ingest_capture
from adop.reconstruct import CleanupConfig, SfmConfig, build_scene, run_sfm
from flows import stages_late
from flows.stages import STAGE_TASK_OPTIONS, build_artifact, run_stage

INGEST_VERSION = "ingest-1"
SFM_VERSION = "sfm-1"
SCENE_VERSION = "scene-1"

Stage = Literal["ingest", "reconstruct", "train", "render", "deliver"]
STAGE_ORDER: tuple[str, ...] = ("ingest", "reconstruct", "train", "render", "deliver")


class PipelineOptions(BaseModel):
    """Flow parameters; they mirror the library configs so a deployment can set any of them."""

    min_images: int = Field(3, ge=3, description="fewest usable photos accepted")
    link_images: bool = Field(True, description="hard-link photos into the workspace instead of copying")
    matcher: Literal["auto", "exhaustive", "sequential"] = Field("auto", description="SfM feature matcher")
    mapper: Literal["global", "incremental"] = Field("global", description="SfM mapper (GLOMAP or incremental)")
    camera_model: Literal["SIMPLE_RADIAL", "OPENCV", "PINHOLE", "RADIAL", "FULL_OPENCV"] = Field(
        "SIMPLE_RADIAL", description="COLMAP camera model estimated by SfM"
    )
    max_image_size: int = Field(1600, ge=256, description="long side above which SIFT works on a downscaled copy")
    voxel_factor: float = Field(0.0, ge=0.0, description="voxel downsampling, in median point spacings (0 = off)")
    point_factor: int = Field(1, ge=1, le=8, description="ADOP densification: copies per point (1 = off)")
    train_preset: str = Field("cpu-fast", description="training preset (cpu-fast, gpu-quality)")
    max_steps: int | None = Field(None, ge=1, description="override the preset's number of training steps")
    path: Literal["orbit", "cameras"] = Field("orbit", description="fly-through: orbit the scene or follow the photos")
    path_file: str | None = Field(None, description="a camera path JSON (ours or nerfstudio's) instead of a generated one")
    seconds: float = Field(4.0, gt=0, description="length of a generated path")
    fps: float = Field(24.0, gt=0, description="frame rate")
    ev: float | None = Field(None, description="exposure (EV100) of the renders; default the photos' mean")
    chunk_size: int = Field(24, ge=1, description="frames per render task")
    stop_after: Stage = Field("deliver", description="last stage to run")

    def sfm_config(self) -> SfmConfig:
        return SfmConfig(matcher=self.matcher, mapper=self.mapper, camera_model=self.camera_model,
                         max_image_size=self.max_image_size)

    def cleanup_config(self) -> CleanupConfig:
        return CleanupConfig(voxel_factor=self.voxel_factor, point_factor=self.point_factor)


@task(name="ingest", **STAGE_TASK_OPTIONS)
def ingest(key: str, fingerprints: dict, workspace: str, params: dict, capture_dir: str) -> dict:
    """Validate the capture set and bring its photos into the workspace."""
    config = IngestConfig(**params)
    return build_artifact(
        "ingest", INGEST_VERSION, key, fingerprints, workspace, params,
        lambda out: ingest_capture(Path(capture_dir), out, config),
    )


@task(name="sfm", **STAGE_TASK_OPTIONS)
def structure_from_motion(key: str, fingerprints: dict, workspace: str, params: dict, image_dir: str) -> dict:
    """Features, matches and the sparse model (pycolmap)."""
    config = SfmConfig(**params)
    return build_artifact(
        "sfm", SFM_VERSION, key, fingerprints, workspace, params,
        lambda out: run_sfm(Path(image_dir), out, config),
    )


@task(name="scene", **STAGE_TASK_OPTIONS)
def point_scene(key: str, fingerprints: dict, workspace: str, params: dict, sfm_dir: str, image_dir: str) -> dict:
    """Cleanup, normals and ADOP's point preprocessing; writes the scene folder and the reconstruction report."""
    config = CleanupConfig(**params)
    return build_artifact(
        "scene", SCENE_VERSION, key, fingerprints, workspace, params,
        lambda out: build_scene(Path(sfm_dir), Path(image_dir), out, config),
    )


@flow(name="capture-to-deliverable", log_prints=True)
def capture_to_deliverable(
    capture_dir: str, workspace: str, options: PipelineOptions = PipelineOptions()
) -> dict[str, Any]:
    """Turn a capture set into deliverables, skipping every stage whose inputs have not changed."""
    try:
        return _run_pipeline(Path(capture_dir), Path(workspace), options)
    except AdopError as error:
        return Failed(message=str(error))  # type: ignore[return-value]


def _run_pipeline(capture_dir: Path, workspace: Path, options: PipelineOptions) -> dict[str, Any]:
    from adop.cache import Workspace

    ws = Workspace(workspace)
    ws.clean_stale_builds()
    summary: dict[str, Any] = {"workspace": str(ws.root), "stages": {}}
    last = STAGE_ORDER.index(options.stop_after)

    def record(stage: str, ref: Any, state: str) -> None:
        summary["stages"][stage] = {"state": state, "artifact": ref.to_dict()}

    ingest_config = IngestConfig(min_images=options.min_images, link=options.link_images)
    capture, state = run_stage(
        ingest, ws, stage="ingest", version=INGEST_VERSION,
        inputs={"images": find_image_dir(capture_dir).resolve()}, params=asdict(ingest_config),
        capture_dir=str(capture_dir.resolve()),
    )
    record("ingest", capture, state)
    if last < STAGE_ORDER.index("reconstruct"):
        return summary

    images = str(capture.folder / "images")
    sfm_config = options.sfm_config()
    sfm, state = run_stage(
        structure_from_motion, ws, stage="sfm", version=SFM_VERSION,
        inputs={"capture": capture}, params=sfm_config.to_dict(), image_dir=images,
    )
    record("sfm", sfm, state)
    cleanup_config = options.cleanup_config()
    scene, state = run_stage(
        point_scene, ws, stage="scene", version=SCENE_VERSION,
        inputs={"capture": capture, "sfm": sfm}, params=cleanup_config.to_dict(),
        sfm_dir=str(sfm.folder), image_dir=images,
    )
    record("scene", scene, state)
    get_run_logger().info("scene ready: %s (report: %s)", scene.folder, scene.folder / "reconstruction_summary.txt")
    if last < STAGE_ORDER.index("train"):
        return summary
    stages_late.run_late_stages(ws, scene, options, summary, last=last, order=STAGE_ORDER)
    return summary
