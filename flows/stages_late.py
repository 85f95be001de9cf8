"""The train, render and deliver stages of capture_to_deliverable (split out to keep each flow module short)."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path
from typing import Any

from prefect import get_run_logger, task

from adop.cache import ArtifactRef, Workspace
from adop.deliver.delivery import make_deliverables
from adop.paths import CameraPath, orbit_path, path_through_cameras
from adop.render import RenderConfig, chunk_ranges, render_chunk
from adop.scene import load_scene
from adop.train import load_trained_model, preset, train
from flows.stages import STAGE_TASK_OPTIONS, build_artifact, run_stage

TRAIN_VERSION = "train-1"
RENDER_VERSION = "render-1"
DELIVER_VERSION = "deliver-1"
_MODEL_FILES = ("model", "config.json", "train_log.jsonl", "eval")


def _link_tree(source: Path, target: Path) -> None:
    """Hard-link (else copy) a file or folder: artifacts share bytes with the run folder at no disk cost."""
    if source.is_dir():
        shutil.copytree(source, target, copy_function=_link_file)
    elif source.is_file():
        _link_file(str(source), str(target))


def _link_file(source: str, target: str) -> None:
    try:
        os.link(source, target)
    except OSError:
        shutil.copy2(source, target)


@task(name="train", **STAGE_TASK_OPTIONS)
def train_model(key: str, fingerprints: dict, workspace: str, params: dict, scene_dir: str) -> dict:
    """Train (resuming from the run folder's last checkpoint) and keep the finished model as the artifact."""
    from adop.train import TrainConfig

    config = TrainConfig.from_dict(params["config"])
    run_dir = Path(workspace) / "runs" / key
    logger = get_run_logger()

    def progress(step: int, total: int, metrics: dict) -> None:
        if step == total or step % max(1, total // 20) == 0:
            logger.info("train: step %d/%d %s", step, total, {k: round(v, 4) for k, v in metrics.items()
                                                             if isinstance(v, float)})

    def build(out: Path) -> None:
        train(Path(scene_dir), run_dir, config, resume=True, progress=progress, bar=False)
        _evaluate_quietly(run_dir)
        for name in _MODEL_FILES:
            if (run_dir / name).exists():
                _link_tree(run_dir / name, out / name)

    return build_artifact("train", TRAIN_VERSION, key, fingerprints, workspace, params, build)


def _evaluate_quietly(run_dir: Path) -> None:
    """Held-out metrics for the delivery manifest; a failed evaluation is logged, it does not fail the model."""
    try:
        from adop.evaluate import evaluate
    except ImportError:  # pragma: no cover - evaluation ships with adop
        return
    try:
        evaluate(run_dir, baselines=False)
    except Exception as error:  # noqa: BLE001 - metrics are a report, not a product
        get_run_logger().warning("evaluation of %s failed: %s", run_dir, error)


@task(name="render-chunk", **STAGE_TASK_OPTIONS)
def render_frames(key: str, fingerprints: dict, workspace: str, params: dict, model_dir: str, path_json: str,
                  start: int, stop: int) -> dict:
    """Render path frames [start, stop) as EXR + PNG."""
    config = RenderConfig(**{k: v for k, v in params["render"].items() if k != "white_balance"},
                          white_balance=None if params["render"]["white_balance"] is None
                          else tuple(params["render"]["white_balance"]))
    camera_path = CameraPath.from_json(json.loads(path_json))

    def build(out: Path) -> None:
        render_chunk(load_trained_model(Path(model_dir)), camera_path, range(start, stop), out, config)

    return build_artifact("render", RENDER_VERSION, key, fingerprints, workspace, params, build)


@task(name="deliver", **STAGE_TASK_OPTIONS)
def deliver(key: str, fingerprints: dict, workspace: str, params: dict, chunks: list[str], path_json: str,
            model_dir: str) -> dict:
    """Collect the frames, encode H.264 + ProRes, draw the contact sheet, write delivery.json."""
    camera_path = CameraPath.from_json(json.loads(path_json))

    def build(out: Path) -> None:
        exr, png = [], []
        for folder in map(Path, chunks):
            for file in sorted(folder.iterdir()):
                if file.suffix in (".exr", ".png"):
                    target = out / ("exr" if file.suffix == ".exr" else "png") / file.name
                    target.parent.mkdir(exist_ok=True)
                    _link_file(str(file), str(target))
                    (exr if file.suffix == ".exr" else png).append(target)
        metrics = _heldout_metrics(Path(model_dir))
        make_deliverables(sorted(png), out, name=params["name"], fps=camera_path.fps, hdr_frames=sorted(exr),
                          camera_path=camera_path, metrics=metrics)

    return build_artifact("deliver", DELIVER_VERSION, key, fingerprints, workspace, params, build)


def _heldout_metrics(model_dir: Path) -> dict[str, float]:
    """Mean held-out metrics of the full model from ``eval/report.json`` (empty when it was not evaluated)."""
    report = model_dir / "eval" / "report.json"
    if not report.is_file():
        return {}
    data = json.loads(report.read_text(encoding="utf-8"))
    full = next((m for m in data.get("methods", []) if m.get("name") == "full"), None)
    if full is None:
        return {}
    metrics = {"heldout_psnr": full.get("mean_psnr"), "heldout_ssim": full.get("mean_ssim"),
               "heldout_lpips": full.get("mean_lpips"), "heldout_views": len(full.get("views", []))}
    return {k: float(v) for k, v in metrics.items() if isinstance(v, (int, float))}


def model_resolution(model: Any) -> tuple[int, int, float]:
    """``(W, H, focal)`` of the first camera at the scale the model was trained at.

    The one-pixel rasterizer's hole pattern depends on points per pixel, so the network renders best at the scale it
    learned; rendering larger leaves holes it never saw (``adop render --width/--height`` can still ask for it).
    """
    camera = model.cameras[0]
    return camera.width, camera.height, float(camera.intrinsics[0])


def make_camera_path(scene_dir: Path, options: Any, width: int, height: int, focal: float) -> CameraPath:
    """The fly-through: the user's path file, or an orbit / a path through the photos' cameras."""
    if options.path_file:
        return CameraPath.from_json(Path(options.path_file))
    scene = load_scene(scene_dir)
    rotations = [f.rotation for f in scene.frames]
    translations = [f.translation for f in scene.frames]
    import numpy as np

    kwargs = dict(width=width, height=height, fps=options.fps, seconds=options.seconds, focal_px=focal)
    if options.path == "cameras":
        return path_through_cameras(np.array(rotations), np.array(translations), **kwargs)
    center = np.median(scene.points.positions, axis=0) if len(scene.points) else scene.centers().mean(axis=0)
    return orbit_path(np.array(rotations), np.array(translations), center, **kwargs)


def run_late_stages(ws: Workspace, scene: ArtifactRef, options: Any, summary: dict[str, Any], *, last: int,
                    order: tuple[str, ...]) -> None:
    """train → render chunks → deliver, recording each stage's state in ``summary``."""
    logger = get_run_logger()
    config = preset(options.train_preset)
    if options.max_steps is not None:
        config = dataclasses.replace(config, max_steps=options.max_steps)
    train_params = {"config": config.to_dict()}
    model, state = run_stage(train_model, ws, stage="train", version=TRAIN_VERSION, inputs={"scene": scene},
                             params=train_params, scene_dir=str(scene.folder))
    summary["stages"]["train"] = {"state": state, "artifact": model.to_dict()}
    if last < order.index("render"):
        return

    trained = load_trained_model(model.folder)
    width, height, focal = model_resolution(trained)
    camera_path = make_camera_path(scene.folder, options, width, height, focal)
    path_json = json.dumps(camera_path.to_json())
    render = RenderConfig(ev=options.ev, chunk_size=options.chunk_size)
    chunk_refs: list[ArtifactRef] = []
    states = []
    for start, stop in chunk_ranges(len(camera_path.rotations), render.chunk_size):
        ref, chunk_state = run_stage(
            render_frames, ws, stage="render", version=RENDER_VERSION,
            inputs={"model": model, "path": path_json.encode()},
            params={"render": render.to_dict(), "start": start, "stop": stop},
            model_dir=str(model.folder), path_json=path_json, start=start, stop=stop,
        )
        chunk_refs.append(ref)
        states.append(chunk_state)
    summary["stages"]["render"] = {"state": ",".join(sorted(set(states))), "artifact": chunk_refs[-1].to_dict(),
                                   "chunks": [r.to_dict() for r in chunk_refs]}
    if last < order.index("deliver"):
        return
    delivery, state = run_stage(
        deliver, ws, stage="deliver", version=DELIVER_VERSION,
        inputs={f"chunk{i:04d}": r for i, r in enumerate(chunk_refs)} | {"model": model},
        params={"name": render.name}, chunks=[str(r.folder) for r in chunk_refs], path_json=path_json,
        model_dir=str(model.folder),
    )
    summary["stages"]["deliver"] = {"state": state, "artifact": delivery.to_dict()}
    logger.info("deliverables: %s", delivery.folder)
