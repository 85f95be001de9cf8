"""The main job: a capture set in, a scene, a trained model and deliverables out.

    ingest ─► sfm ─► dense ─► scene ─► train ─► path ─► render (one task per frame chunk, at once) ─► deliver

Every stage is a cached Prefect task over the workspace's artifact cache (``adop.flows.stage``), keyed by the content
of its inputs, its parameters and its version: a rerun skips what is done, a changed parameter reruns only what
depends on it. ``sfm`` (pycolmap database + model), ``dense`` (fused cloud) and ``scene`` (cleanup + ADOP
preprocessing) are separate artifacts, so a new cleanup parameter reruns only ``scene``. Depth maps and training
checkpoints live in ``WS/runs/<key>`` (outside the artifact), so a killed dense run or training resumes when the
flow is rerun. ``path`` is the fly-through planned from the trained model's own poses and points. Each render chunk
is its own artifact, so a new exposure or path rerenders only what changed; the chunks run at once on threads or a
Dask cluster (``adop.flows.scale_out``). Run it with ``adop run CAPTURE_DIR --workspace DIR``; with no Prefect server
configured it runs in Prefect's local ephemeral mode.
"""

# No ``from __future__ import annotations`` here: Prefect builds the flow's parameter model from the signature in a
# fresh process, and postponed annotations would leave ``PipelineOptions`` unresolved there.

import adop.flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)

import contextlib
import json
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger
from prefect.states import Failed

from adop.cache import MANIFEST, ArtifactRef, Workspace, compute_key
from adop.deliver.delivery import make_deliverables
from adop.errors import AdopError
from adop.evaluate import evaluate, heldout_metrics
from adop.flows._env import configure_library_logging
from adop.flows.interrupts import RunInterrupted, stop_on_signals
from adop.flows.scale_out import task_runner
from adop.flows.stage import SCRATCH_DIR, ArtifactBuild, Budget, Stages, stage, stage_logger
from adop.ingest import IngestConfig, find_image_dir, ingest_photos, read_capture_manifest
from adop.model import TrainConfig, load_trained_model
from adop.paths import FlyThroughConfig, load_camera_path
from adop.pipeline import PipelineOptions
from adop.dense import DenseConfig
from adop.reconstruct import CleanupConfig, SfmConfig, build_scene, run_dense, run_sfm
from adop.render import RenderConfig, camera_path_for, chunk_ranges, render_chunk
from adop.storage import link_or_copy, link_tree
from adop.train import train

CAMERA_PATH_FILE = "camera_path.json"
MODEL_FILES = ("model", "config.json", "train_log.jsonl", "eval")
"""What of a training run folder becomes the ``train`` artifact (checkpoints stay behind in the run folder)."""


def _files_in(folder: Path) -> int:
    return sum(1 for entry in folder.iterdir() if entry.is_file()) if folder.is_dir() else 0


def _photos(arguments: Mapping[str, Any]) -> int:
    """Photos of the stage's capture artifact (or, for ingest, of the user's folder)."""
    if "images" in arguments:
        return _files_in(Path(arguments["images"]))
    return _files_in(arguments["capture"].folder / "images")


def _frames(arguments: Mapping[str, Any]) -> int:
    if "frames" in arguments:
        start, stop = arguments["frames"]
        return stop - start
    return sum(_files_in(chunk.folder) for chunk in arguments["chunks"]) // 2  # an EXR and a PNG per frame


# Time budgets (``adop.flows.stage.Budget``): about ten times the 2-core figures (SfM 2 s, dense 1-3 s and cleanup
# under 1 s per photo; training 0.18 s per cpu-fast step on a 29-photo street capture; a frame in seconds).
INGEST_BUDGET = Budget(300, 10, _photos)
SFM_BUDGET = Budget(600, 60, _photos)
DENSE_BUDGET = Budget(600, 60, _photos)
SCENE_BUDGET = Budget(600, 20, _photos)
TRAIN_BUDGET = Budget(900, 2, lambda arguments: arguments["config"].max_steps)
PATH_BUDGET = Budget(600)
RENDER_BUDGET = Budget(300, 60, _frames)
DELIVER_BUDGET = Budget(600, 5, _frames)


@stage("ingest", version=1, budget=INGEST_BUDGET)
def ingest_capture(build: ArtifactBuild, *, images: Path, config: IngestConfig) -> None:
    """Check the photos of the capture set and bring the usable ones into the workspace."""
    ingest_photos(images, build.folder, config)


@stage("sfm", version=1, resource="cpu", budget=SFM_BUDGET)
def structure_from_motion(build: ArtifactBuild, *, capture: ArtifactRef, config: SfmConfig) -> None:
    """Features, matches and the sparse model (pycolmap); messages name the user's folder, not the working copy."""
    run_sfm(capture.folder / "images", build.folder, config, source=read_capture_manifest(
        capture.folder / "capture.json").get("source"))


@stage("dense", version=1, resource="cpu", budget=DENSE_BUDGET)
def dense_stereo(build: ArtifactBuild, *, capture: ArtifactRef, sfm: ArtifactRef, config: DenseConfig) -> None:
    """Depth maps of every view fused into one dense cloud. The maps are kept in ``WS/runs/dense-<key>``, keyed by
    the photos, the SfM model and the fields the maps depend on (not fusion's), so a killed run resumes and a new
    fusion setting reruns only the fusion."""
    maps_key, _ = compute_key("dense-maps", "1", {"capture": capture, "sfm": sfm}, config.depth_map_fields())
    run_dense(sfm.folder, capture.folder / "images", build.folder, config,
              cache_dir=build.workspace / SCRATCH_DIR / f"dense-{maps_key}")


@stage("scene", version=2, budget=SCENE_BUDGET)
def build_point_scene(build: ArtifactBuild, *, capture: ArtifactRef, sfm: ArtifactRef, dense: ArtifactRef,
                      config: CleanupConfig) -> None:
    """The dense cloud (SfM points where it has none), cleanup, normals and ADOP's point preprocessing; writes the
    scene folder and the reconstruction report."""
    build_scene(sfm.folder, capture.folder / "images", build.folder, config, dense_dir=dense.folder)


@stage("train", version=1, resource="gpu", budget=TRAIN_BUDGET)
def train_model(build: ArtifactBuild, *, scene: ArtifactRef, config: TrainConfig) -> None:
    """Train (resuming from the run folder's last checkpoint), score the held-out views, keep the finished model."""
    run_dir = build.scratch_dir()
    logger = stage_logger()

    def progress(step: int, total: int, metrics: dict) -> None:
        if step == total or step % max(1, total // 20) == 0:
            logger.info("train: step %d/%d %s", step, total,
                        {k: round(v, 4) for k, v in metrics.items() if isinstance(v, float)})

    train(scene.folder, run_dir, config, resume=True, progress=progress, bar=False)
    try:
        evaluate(run_dir, baselines=False)
    except Exception as error:  # noqa: BLE001 - the metrics are a report on the model, not the model
        logger.warning("evaluation of %s failed: %s", run_dir, error)
    for name in MODEL_FILES:
        if (run_dir / name).exists():
            link_tree(run_dir / name, build.folder / name)


@stage("path", version=1, budget=PATH_BUDGET)
def plan_fly_through(build: ArtifactBuild, *, model: ArtifactRef, config: FlyThroughConfig,
                     path_file: Path | None) -> None:
    """The camera path to render: the user's file (an input, hashed by content) or one planned from the model."""
    camera_path = camera_path_for(load_trained_model(model.folder), config.replace(file=path_file))
    camera_path.save(build.folder / CAMERA_PATH_FILE)


@stage("render", version=1, chunked=True, resource="gpu", budget=RENDER_BUDGET)
def render_frames(build: ArtifactBuild, *, model: ArtifactRef, path: ArtifactRef, frames: tuple[int, int],
                  config: RenderConfig) -> None:
    """Render the path frames ``[start, stop)`` as half EXR + PNG, dated when the model was trained (so a chunk
    rendered again, on any worker, is the same files)."""
    camera_path = load_camera_path(path.folder / CAMERA_PATH_FILE)
    trained = datetime.fromisoformat(json.loads((model.folder / MANIFEST).read_text(encoding="utf-8"))["created"])
    render_chunk(load_trained_model(model.folder), camera_path, range(*frames), build.folder, config,
                 timestamp=trained.strftime("%Y:%m:%d %H:%M:%S"))


@stage("deliver", version=1, budget=DELIVER_BUDGET)
def deliver_frames(build: ArtifactBuild, *, chunks: list[ArtifactRef], model: ArtifactRef, path: ArtifactRef,
                   name: str) -> None:
    """Collect the frames, encode H.264 + ProRes, draw the contact sheet, write delivery.json."""
    sequences: dict[str, list[Path]] = {".exr": [], ".png": []}
    for chunk in chunks:
        for file in sorted(chunk.folder.iterdir()):
            if file.suffix in sequences:
                target = build.folder / file.suffix.lstrip(".") / file.name
                target.parent.mkdir(exist_ok=True)
                link_or_copy(file, target)
                sequences[file.suffix].append(target)
    camera_path = load_camera_path(path.folder / CAMERA_PATH_FILE)
    make_deliverables(sorted(sequences[".png"]), build.folder, name=name, fps=camera_path.fps,
                      hdr_frames=sorted(sequences[".exr"]), camera_path=camera_path,
                      metrics=heldout_metrics(model.folder))


@flow(name="capture-to-deliverable", log_prints=True)
def capture_to_deliverable(
    capture_dir: str, workspace: str, options: PipelineOptions = PipelineOptions()
) -> dict[str, Any]:
    """Turn a capture set into deliverables, skipping every stage whose inputs have not changed."""
    configure_library_logging()
    try:
        return run_pipeline(Path(capture_dir), Workspace(Path(workspace)), options)
    except AdopError as error:
        return Failed(message=str(error))  # type: ignore[return-value]


def run_capture_to_deliverable(capture_dir: Path, workspace: Path, options: PipelineOptions) -> Any:
    """Run the flow as ``adop run`` does, returning its final state; Ctrl-C and SIGTERM stop it cleanly
    (``adop.flows.interrupts``: exit 130 / 143, the temporary server stopped; ``RunInterrupted`` with a configured
    server)."""
    with stop_on_signals():
        return capture_to_deliverable(str(capture_dir), str(workspace), options, return_state=True)


__all__ = ["RunInterrupted", "capture_to_deliverable", "run_capture_to_deliverable"]


def run_pipeline(capture_dir: Path, workspace: Workspace, options: PipelineOptions) -> dict[str, Any]:
    """The stages in order, as far as ``options.stop_after``; returns ``Stages.summary()``."""
    workspace.clean_stale_builds()
    stages = Stages(workspace)
    capture = stages.run(ingest_capture, images=find_image_dir(capture_dir).resolve(), config=options.ingest)
    if not options.runs("reconstruct"):
        return stages.summary()

    sfm = stages.run(structure_from_motion, capture=capture, config=options.sfm)
    dense = stages.run(dense_stereo, capture=capture, sfm=sfm, config=options.dense)
    scene = stages.run(build_point_scene, capture=capture, sfm=sfm, dense=dense, config=options.cleanup)
    get_run_logger().info("scene ready: %s (report: %s)", scene.folder, scene.folder / "reconstruction_summary.txt")
    if not options.runs("train"):
        return stages.summary()

    model = stages.run(train_model, scene=scene, config=options.train_config())
    if not options.runs("render"):
        return stages.summary()

    fly_through = options.fly_through
    path = stages.run(plan_fly_through, model=model, config=fly_through.replace(file=None),
                      path_file=None if fly_through.file is None else fly_through.file.resolve())
    frame_count = len(load_camera_path(path.folder / CAMERA_PATH_FILE).rotations)
    calls = [{"model": model, "path": path, "frames": frames, "config": options.render}
             for frames in chunk_ranges(frame_count, options.render.chunk_size)]
    runner = task_runner(options.scale_out) if len(calls) > 1 else None  # one chunk: no cluster to start
    with runner or contextlib.nullcontext():
        chunks = stages.run_each(render_frames, calls, runner)
    if not options.runs("deliver"):
        return stages.summary()

    delivery = stages.run(deliver_frames, chunks=chunks, model=model, path=path, name=options.render.name)
    get_run_logger().info("deliverables: %s", delivery.folder)
    return stages.summary()
