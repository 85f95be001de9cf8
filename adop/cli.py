"""The ``adop`` command line.

Every command maps its options onto the library's config dataclasses. Mistakes a user can fix (a wrong path, a
folder with no photos, an unwritable workspace) print one sentence and exit with status 2; anything else is a bug
and keeps its traceback.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.markup import escape

from adop.errors import AdopError
from adop.images import list_image_files
from adop.ingest import find_image_dir
from adop.paths.fly_through import parse_resolution
from adop.pipeline import LAST_STAGES, PipelineOptions
from adop.storage import ensure_apart, ensure_parent_exists, ensure_writable_dir

app = typer.Typer(
    name="adop",
    help="Capture set → SfM point cloud → trained ADOP neural point renderer → fly-through deliverables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scene_app = typer.Typer(help="Import and export scenes (COLMAP models, original ADOP scene folders).", no_args_is_help=True)
app.add_typer(scene_app, name="scene")
studio_app = typer.Typer(help="The studio service: add studios, set up the Prefect server, serve the studio page.",
                         no_args_is_help=True)
app.add_typer(studio_app, name="studio")

err_console = Console(stderr=True)
console = Console(soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


def user_errors(function: F) -> F:
    """Print adop's own errors (and permission/disk errors) as one line and exit 2 instead of a traceback."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except AdopError as error:
            err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except PermissionError as error:
            err_console.print(f"[bold red]error:[/] permission denied: {escape(str(error.filename))}; fix permissions "
                              "or choose another folder", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: bool) -> None:
    """adop's own loggers at INFO (DEBUG with --verbose); third-party libraries only warn; COLMAP's glog quiet."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    logging.getLogger("adop").setLevel(logging.DEBUG if verbose else logging.INFO)
    if not verbose:
        os.environ.setdefault("GLOG_minloglevel", "1")
        try:
            from adop.native import pycolmap

            pycolmap.logging.minloglevel = 1
        except (ImportError, AttributeError):  # pragma: no cover - pycolmap is a dependency
            pass


class Preset(str, Enum):
    tiny = "tiny"
    small = "small"
    sweep = "sweep"


class SceneFormat(str, Enum):
    colmap = "colmap"
    adop = "adop"


@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/images (the capture set) and OUT/ground_truth.")],
    preset: Annotated[Preset, typer.Option(help="tiny: ~24 views at 320x240 (<1 min); small: ~48 views at 640x480; sweep: 40 portrait video-like frames "
                 "without EXIF focal length.")] = Preset.tiny,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical images.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already exists.")] = False,
) -> None:
    """Generate a synthetic capture set with known cameras, exposure, white balance, vignetting and response."""
    from adop.synth import generate_capture_set

    _setup_logging(False)
    manifest = generate_capture_set(out, preset=preset.value, seed=seed, overwrite=overwrite)
    console.print(
        f"synthetic capture set written to [bold]{out}[/]: {manifest.image_count} photos in {manifest.images_dir}, "
        f"ground truth in {manifest.root / 'ground_truth'} ({manifest.seconds:.0f} s)"
    )


class PathKind(str, Enum):
    orbit = "orbit"
    cameras = "cameras"


_OPTIONS = PipelineOptions()
"""Defaults of ``adop run``, read from the library configs so that each default is declared once."""
_RESOLUTION_HELP = ("Frame size of a generated path, WIDTHxHEIGHT (e.g. 1920x1080); default: the photos' own "
                    "resolution.")
_DENSE_HELP = ("Dense stereo: ours (plane sweep, CPU or CUDA), colmap (COLMAP PatchMatch; needs pycolmap with CUDA "
               "and a GPU), auto (colmap where it can run, else ours) or off (SfM points only).")


@app.command()
@user_errors
def run(
    capture_dir: Annotated[Path, typer.Argument(help="A folder of photos, or a folder holding images/.")],
    workspace: Annotated[Path, typer.Option(help="Where artifacts are kept; reruns reuse finished stages.")] = Path(
        "workspace"
    ),
    min_images: Annotated[int, typer.Option(help="Fewest usable photos accepted.")] = _OPTIONS.ingest.min_images,
    preset: Annotated[str, typer.Option(help="Training preset: cpu-fast or gpu-quality.")] = _OPTIONS.train_preset,
    max_steps: Annotated[int | None, typer.Option(help="Training steps (default: the preset's).")] = None,
    mapper: Annotated[str, typer.Option(help="SfM mapper: global (GLOMAP) or incremental.")] = _OPTIONS.sfm.mapper,
    dense: Annotated[str, typer.Option(help=_DENSE_HELP)] = _OPTIONS.dense.method,
    path: Annotated[PathKind, typer.Option(help="Generated fly-through: orbit, or through the photos' cameras.")] = (
        PathKind(_OPTIONS.fly_through.kind)
    ),
    path_file: Annotated[Path | None, typer.Option(help="Camera path JSON (ours or nerfstudio's camera_path.json).")]
    = None,
    seconds: Annotated[float, typer.Option(help="Length of a generated path.")] = _OPTIONS.fly_through.seconds,
    fps: Annotated[float, typer.Option(help="Frame rate of a generated path.")] = _OPTIONS.fly_through.fps,
    resolution: Annotated[str | None, typer.Option(help=_RESOLUTION_HELP)] = None,
    ev: Annotated[float | None, typer.Option(help="Exposure (EV100) of the renders; default the photos' mean.")] = None,
    stop_after: Annotated[str, typer.Option(help="Last stage: ingest, reconstruct, train, render, deliver.")] = (
        _OPTIONS.stop_after
    ),
    chunk_size: Annotated[int, typer.Option(help="Frames per render chunk (one task each).")] = (
        _OPTIONS.render.chunk_size
    ),
    render_runner: Annotated[str, typer.Option(help="Where render chunks run: threads (at once, in this process), "
                                                    "serial, or dask (a local cluster, or --dask-address).")] = (
        _OPTIONS.scale_out.runner
    ),
    render_workers: Annotated[int, typer.Option(help="Chunks at once (threads) or local Dask worker processes.")] = (
        _OPTIONS.scale_out.workers
    ),
    dask_address: Annotated[str | None, typer.Option(help="Scheduler of a running Dask cluster (tcp://host:8786); "
                                                          "its workers must see the workspace at the same path.")]
    = None,
) -> None:
    """Run the pipeline (a Prefect flow) on a capture set; finished stages are reused from the workspace."""
    _setup_logging(False)
    image_dir = find_image_dir(capture_dir)  # fail fast on user mistakes, before Prefect starts
    if not list_image_files(image_dir).images:
        raise AdopError(f"{image_dir} holds no JPEG/PNG/TIFF/BMP photos; point to the folder that holds them")
    size = (None, None) if resolution is None else parse_resolution(resolution)
    ensure_apart(workspace, "workspace", capture_folder=capture_dir, path_file=path_file)
    ensure_parent_exists(workspace, "workspace")
    if path_file is not None:
        if not path_file.is_file():
            raise AdopError(f"camera path file {path_file} does not exist")
        from adop.paths import load_camera_path

        load_camera_path(path_file)  # a malformed file is refused now, not after hours of training
    if stop_after not in LAST_STAGES:
        raise AdopError(f"--stop-after must be one of {', '.join(LAST_STAGES)}; got {stop_after!r}")
    options = _OPTIONS.replace(
        ingest=_OPTIONS.ingest.replace(min_images=min_images),
        sfm=_OPTIONS.sfm.replace(mapper=mapper),
        dense=_OPTIONS.dense.replace(method=dense),
        train_preset=preset, max_steps=max_steps,
        fly_through=_OPTIONS.fly_through.replace(kind=path.value, seconds=seconds, fps=fps, width=size[0],
                                                 height=size[1],
                                                 file=None if path_file is None else path_file.resolve()),
        render=_OPTIONS.render.replace(ev=ev, chunk_size=chunk_size),
        scale_out=_OPTIONS.scale_out.replace(runner="dask" if dask_address else render_runner,
                                             workers=render_workers, dask_address=dask_address),
        stop_after=stop_after,
    )
    ensure_writable_dir(workspace, "workspace")  # created only once every option has been accepted
    from adop.flows.capture_to_deliverable import (  # the one command that imports Prefect
        RunInterrupted,
        run_capture_to_deliverable,
    )

    try:
        state = run_capture_to_deliverable(capture_dir, workspace, options)
    except RunInterrupted as stop:
        raise typer.Exit(stop.exit_status) from None
    if state.is_failed():
        raise AdopError(state.message or "the pipeline failed; see the log above")
    summary = state.result()
    for stage, info in summary["stages"].items():
        console.print(f"{stage:>12}: {info['state']:<10} {info['artifact']['path']}")
    if "deliver" in summary["stages"]:
        console.print(f"deliverables: [bold]{summary['stages']['deliver']['artifact']['path']}[/]")


@app.command()
@user_errors
def train(
    scene_dir: Annotated[Path, typer.Argument(help="A scene folder (from `adop reconstruct` or `adop scene import`).")],
    out: Annotated[Path, typer.Option(help="Run folder: checkpoints, log, config.json and the final model/.")],
    preset: Annotated[str, typer.Option(help="cpu-fast (small scenes on a laptop-class CPU) or gpu-quality (ADOP's "
                                             "released settings).")] = "cpu-fast",
    resume: Annotated[bool, typer.Option(help="Continue an interrupted run in OUT from its newest checkpoint.")] = True,
    max_steps: Annotated[int | None, typer.Option(help="Override the preset's number of steps.")] = None,
    config: Annotated[Path | None, typer.Option(help="A saved config.json instead of a preset.")] = None,
    vgg_weights: Annotated[Path | None, typer.Option(help="Local VGG-19 weights for the perceptual loss (never "
                                                          "downloaded).")] = None,
    checkpoint_every: Annotated[int | None, typer.Option(help="Checkpoint interval in steps.")] = None,
) -> None:
    """Train the neural point renderer and tonemapper on a scene; a killed run resumes where it stopped."""
    from adop.train import resolve_config
    from adop.train import train as train_scene

    _setup_logging(False)
    ensure_apart(out, "run folder", scene_folder=scene_dir, config_file=config, vgg_weights=vgg_weights)
    ensure_parent_exists(out, "run folder")
    train_config = resolve_config(preset, config_file=config, vgg_weights=vgg_weights,
                                  checkpoint_every=checkpoint_every)
    result = train_scene(scene_dir, out, train_config, resume=resume, max_steps=max_steps)
    psnr = "" if result.heldout_psnr is None else f", held-out PSNR {result.heldout_psnr:.2f} dB"
    console.print(f"trained {result.steps} steps ({result.epochs:.1f} epochs) in {result.elapsed_s / 60:.1f} min{psnr}; "
                  f"model in {result.model_dir}", markup=False, highlight=False)


@app.command(name="eval")
@user_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished training run folder.")],
    json_output: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    ground_truth: Annotated[Path | None, typer.Option(help="A synthetic set's ground_truth/ folder, for camera-model "
                                                           "and HDR metrics.")] = None,
    baselines: Annotated[bool, typer.Option(help="Also score baseline (a): SfM colours splatted, no network.")] = True,
    lpips_weights: Annotated[Path | None, typer.Option(help="Folder holding vgg16.pth (torchvision's VGG-16) and "
                                                            "vgg.pth (lpips v0.1 VGG heads) to score LPIPS; never "
                                                            "downloaded. Default: $ADOP_LPIPS_WEIGHTS, else no LPIPS.")]
    = None,
) -> None:
    """Score held-out views (PSNR, SSIM, LPIPS with local weights; exposure fitted on the left half, scored on the
    right) with baselines."""
    from adop.evaluate import evaluate as evaluate_run

    _setup_logging(False)
    report = evaluate_run(run_dir, ground_truth_dir=ground_truth, baselines=baselines, lpips_weights=lpips_weights)
    shown = Path(report.report_path if json_output else report.summary_path)
    sys.stdout.write(shown.read_text(encoding="utf-8").rstrip("\n") + "\n")  # verbatim: JSON must stay JSON


@app.command()
@user_errors
def render(
    run_dir: Annotated[Path, typer.Argument(help="A training run folder (holding model/), or a train artifact.")],
    out: Annotated[Path, typer.Option(help="Folder for the frames (NAME.1001.exr/png) and, with --deliver, movies.")],
    path: Annotated[str, typer.Option(help="orbit, cameras, or a camera path JSON file (ours or nerfstudio's).")] = (
        "orbit"
    ),
    seconds: Annotated[float, typer.Option(help="Length of a generated path.")] = _OPTIONS.fly_through.seconds,
    fps: Annotated[float, typer.Option(help="Frame rate of a generated path.")] = _OPTIONS.fly_through.fps,
    resolution: Annotated[str | None, typer.Option(help=_RESOLUTION_HELP)] = None,
    width: Annotated[int | None, typer.Option(help="Frame width of a generated path (default: the photos'; the height "
                                                   "follows their aspect ratio).")] = None,
    height: Annotated[int | None, typer.Option(help="Frame height of a generated path (default: the photos').")]
    = None,
    ev: Annotated[float | None, typer.Option(help="Exposure (EV100); default the photos' mean.")] = None,
    name: Annotated[str, typer.Option(help="File stem of the frames and movies.")] = _OPTIONS.render.name,
    deliver: Annotated[bool, typer.Option(help="Also encode H.264 + ProRes, a contact sheet and delivery.json.")]
    = True,
) -> None:
    """Render a fly-through with a trained model (no photos needed): half EXR + PNG frames, then the deliverables."""
    from adop.deliver.delivery import make_deliverables
    from adop.evaluate import heldout_metrics
    from adop.model import load_trained_model
    from adop.paths import FlyThroughConfig
    from adop.render import RenderConfig, camera_path_for, render_path

    _setup_logging(False)
    is_file = path not in ("orbit", "cameras")
    if is_file and not Path(path).is_file():
        raise AdopError(f"--path must be orbit, cameras or an existing camera path JSON file; {path} does not exist")
    ensure_apart(out, "output folder", run_folder=run_dir, camera_path_file=path if is_file else None)
    ensure_parent_exists(out, "output folder")
    if resolution is not None:
        width, height = parse_resolution(resolution)
    model = load_trained_model(run_dir)
    fly_through = FlyThroughConfig(kind="orbit" if is_file else path, file=Path(path) if is_file else None,  # type: ignore[arg-type]
                                   seconds=seconds, fps=fps, width=width, height=height)
    camera_path = camera_path_for(model, fly_through)
    result = render_path(model, camera_path, out / "frames", RenderConfig(ev=ev, name=name))
    console.print(f"rendered {len(result.frames)} frames into [bold]{out / 'frames'}[/]")
    if deliver:
        delivery = make_deliverables(result.png, out, name=name, fps=camera_path.fps, hdr_frames=result.exr,
                                     camera_path=camera_path, metrics=heldout_metrics(Path(run_dir)))
        for codec, movie in delivery.movies.items():
            console.print(f"{codec:>8}: {movie}")
        console.print(f"   sheet: {delivery.contact_sheet}\nmanifest: {delivery.manifest}")


@app.command()
@user_errors
def reconstruct(
    capture_dir: Annotated[Path, typer.Argument(help="A folder of photos, or a folder holding images/.")],
    out: Annotated[Path, typer.Option(help="The scene folder to create (scene.json, points.ply, report, sfm/).")],
    matcher: Annotated[str, typer.Option(help="auto (exhaustive up to ~100 images, sequential for numbered "
                                              "video-like sets above that), exhaustive or sequential.")]
    = _OPTIONS.sfm.matcher,
    camera_model: Annotated[str, typer.Option(help="COLMAP camera model to estimate (SIMPLE_RADIAL or OPENCV, ...).")]
    = _OPTIONS.sfm.camera_model,
    mapper: Annotated[str, typer.Option(help="global (GLOMAP, robust default) or incremental (COLMAP's classic "
                                             "mapper); the other is tried if registration falls short.")]
    = _OPTIONS.sfm.mapper,
    max_image_size: Annotated[int, typer.Option(help="Long side above which SIFT runs on a downscaled copy "
                                                     "(bounds memory).")] = _OPTIONS.sfm.max_image_size,
    voxel_factor: Annotated[float, typer.Option(help="Voxel downsampling in median point spacings (0 = off).")]
    = _OPTIONS.cleanup.voxel_factor,
    point_factor: Annotated[int, typer.Option(help="ADOP densification: copies per point (1 = off).")]
    = _OPTIONS.cleanup.point_factor,
    dense: Annotated[str, typer.Option(help=_DENSE_HELP)] = _OPTIONS.dense.method,
    dense_size: Annotated[int, typer.Option(help="Long side (px) of the depth maps on the CPU (0 = full size).")]
    = _OPTIONS.dense.max_image_size,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Structure from motion, dense stereo and point cleanup: photos in, an adop scene folder and a report out."""
    from adop.reconstruct import reconstruct as run_reconstruction

    _setup_logging(False)
    sfm_config = _OPTIONS.sfm.replace(matcher=matcher, mapper=mapper, camera_model=camera_model,
                                      max_image_size=max_image_size)
    cleanup_config = _OPTIONS.cleanup.replace(voxel_factor=voxel_factor, point_factor=point_factor)
    image_dir = find_image_dir(capture_dir).resolve()
    ensure_apart(out, "scene folder", capture_folder=capture_dir)
    ensure_parent_exists(out, "scene folder")
    dense_config = _OPTIONS.dense.replace(method=dense, max_image_size=dense_size)
    report = run_reconstruction(image_dir, out, sfm_config, cleanup_config, overwrite=overwrite,
                                dense_config=dense_config)
    summary = out / "reconstruction_summary.txt"
    if summary.is_file():
        console.print(summary.read_text(encoding="utf-8"))
    console.print(f"scene written to [bold]{out}[/] ({report.points_final} points)")


@app.command()
@user_errors
def densify(
    source: Annotated[Path, typer.Argument(help="A scene folder from `adop reconstruct` (holding sfm/), or an SfM "
                                                "folder (sfm_report.json + sparse/).")],
    out: Annotated[Path, typer.Option(help="The dense scene folder to create (scene.json, points.ply, report, "
                                           "dense/).")],
    images: Annotated[Path | None, typer.Option(help="The photos' folder (default: the scene's own).")] = None,
    dense: Annotated[str, typer.Option(help=_DENSE_HELP)] = "ours",
    dense_size: Annotated[int, typer.Option(help="Long side (px) of the depth maps on the CPU (0 = full size).")]
    = _OPTIONS.dense.max_image_size,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it exists.")] = False,
) -> None:
    """Dense stereo on a finished reconstruction: a new scene folder whose points are the fused dense cloud."""
    from adop.reconstruct import densify_scene
    from adop.reconstruct.pipeline import SFM_SUBDIR

    _setup_logging(False)
    if dense == "off":
        raise AdopError("--dense off would only copy the scene; choose ours, auto or colmap")
    sfm_dir = source / SFM_SUBDIR if (source / SFM_SUBDIR / "sfm_report.json").is_file() else source
    if not (sfm_dir / "sfm_report.json").is_file():
        raise AdopError(f"{source} is neither a scene folder from `adop reconstruct` (with sfm/) nor an SfM folder "
                        "(with sfm_report.json); dense stereo needs the SfM model and its tracks")
    if images is None:
        from adop.scene import load_scene

        if not (source / "scene.json").is_file():
            raise AdopError(f"{source} is an SfM folder, which does not record where the photos are; pass --images")
        images = load_scene(source).image_folder(source)
    if images is None or not Path(images).is_dir():
        raise AdopError(f"the photos' folder {images} does not exist; pass --images")
    ensure_apart(out, "scene folder", source=source, image_folder=images)
    ensure_parent_exists(out, "scene folder")
    report = densify_scene(sfm_dir, Path(images).resolve(), out,
                           _OPTIONS.dense.replace(method=dense, max_image_size=dense_size), _OPTIONS.cleanup,
                           overwrite=overwrite)
    console.print((out / "reconstruction_summary.txt").read_text(encoding="utf-8"))
    console.print(f"dense scene written to [bold]{out}[/] ({report.points_final} points)")


@app.command()
@user_errors
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to put the example capture set and the workspace.")] = Path(
        "demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic capture set.")] = 0,
    max_steps: Annotated[int, typer.Option(help="Training steps of the cpu-fast preset; the tiny set's held-out PSNR "
                                                "levels off by about 1500.")] = 1500,
) -> None:
    """The main job on the built-in example: generate the tiny synthetic capture set, then run the pipeline."""
    capture = folder / "capture"
    if not (capture / "images").is_dir():
        synth(capture, preset=Preset.tiny, seed=seed, overwrite=False)
    else:
        console.print(f"reusing the synthetic capture set in [bold]{capture}[/]")
    run(capture, workspace=folder / "workspace", max_steps=max_steps)


@scene_app.command("import")
@user_errors
def scene_import(
    source: Annotated[Path, typer.Argument(help="A COLMAP sparse model folder (cameras/images/points3D .bin or .txt) "
                                                "or an ADOP scene folder (dataset.ini, ...).")],
    out: Annotated[Path, typer.Option(help="The adop scene folder to write.")],
    format: Annotated[SceneFormat, typer.Option(help="Format of SOURCE.")] = SceneFormat.colmap,
    images: Annotated[Path | None, typer.Option(help="Folder of the photos (COLMAP models do not record it).")] = None,
) -> None:
    """Import a COLMAP model or an ADOP scene folder into an adop scene folder."""
    from adop.scene import save_scene

    ensure_apart(out, "scene folder", source=source, image_folder=images)
    if format is SceneFormat.colmap:
        from adop.scene.colmap import import_colmap

        scene = import_colmap(source, images)
    else:
        from adop.scene.adop_folder import import_adop_scene

        scene = import_adop_scene(source)
        if images is not None:
            scene.image_dir = images.resolve()
    save_scene(scene, out)
    console.print(f"imported {len(scene.frames)} frames, {len(scene.cameras)} cameras, {len(scene.points)} points "
                  f"into [bold]{out}[/]")


@scene_app.command("export")
@user_errors
def scene_export(
    scene_dir: Annotated[Path, typer.Argument(help="An adop scene folder (scene.json + points.ply).")],
    out: Annotated[Path, typer.Option(help="The folder to write.")],
    format: Annotated[SceneFormat, typer.Option(help="Format to write.")] = SceneFormat.colmap,
    text: Annotated[bool, typer.Option(help="COLMAP only: write the text model instead of binary.")] = False,
) -> None:
    """Export an adop scene folder as a COLMAP model or an ADOP scene folder."""
    from adop.scene import load_scene

    ensure_apart(out, "output folder", scene_folder=scene_dir)
    scene = load_scene(scene_dir)
    folder = scene.image_folder(scene_dir)
    if folder is not None:
        scene.image_dir = folder.resolve()
    if format is SceneFormat.colmap:
        from adop.scene.colmap import export_colmap

        export_colmap(scene, out, text=text)
    else:
        from adop.scene.adop_folder import export_adop_scene

        export_adop_scene(scene, out)
    console.print(f"exported {len(scene.frames)} frames to [bold]{out}[/] ({format.value})")


# -- the studio service ----------------------------------------------------------------------------------------------

_ROOT_HELP = "The studio service's folder (studios, inboxes, workspaces, deliveries); the same on every machine."
RootOption = Annotated[Path, typer.Option("--root", envvar="ADOP_STUDIO_ROOT", help=_ROOT_HELP)]


def _studio_root(root: Path, create: bool = False) -> Any:
    from adop.studio.layout import StudioRoot

    if not create and not root.is_dir():
        raise AdopError(f"the studio folder {root} does not exist; create it with `adop studio add NAME --root {root}`")
    return StudioRoot(root)


def _when(moment: Any) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment is not None else "-"


@app.command()
@user_errors
def submit(
    capture: Annotated[Path, typer.Argument(help="A folder of photos (or holding images/), or a .zip/.tar archive.")],
    studio: Annotated[str, typer.Option(help="Your studio's name.")],
    shot: Annotated[str, typer.Option(help="Shot name; submitting it again makes the next version.")],
    root: RootOption,
    priority: Annotated[str, typer.Option(help="low, normal or high (high queues are served first).")] = "normal",
    preset: Annotated[str, typer.Option(help="Training preset: cpu-fast or gpu-quality.")] = _OPTIONS.train_preset,
    max_steps: Annotated[int | None, typer.Option(help="Training steps (default: the preset's).")] = None,
    stop_after: Annotated[str, typer.Option(help="Last stage: ingest, reconstruct, train, render, deliver.")] = (
        "deliver"
    ),
    path: Annotated[Path | None, typer.Option(help="Camera path JSON to render (copied into the submission).")] = None,
    seconds: Annotated[float, typer.Option(help="Length of a generated path.")] = _OPTIONS.fly_through.seconds,
    submitter: Annotated[str | None, typer.Option(help="Who submits (default: your user name).")] = None,
    tonight: Annotated[bool, typer.Option(help="Only put it in the inbox; the nightly sweep queues it.")] = False,
) -> None:
    """Check a capture set, bring it into the studio's inbox and queue its run on the studio's Prefect server."""
    import getpass

    from adop.service.runs import run_url, submit_capture_set

    _setup_logging(False)
    if stop_after not in LAST_STAGES:
        raise AdopError(f"--stop-after must be one of {', '.join(LAST_STAGES)}; got {stop_after!r}")
    if path is not None:
        from adop.paths import load_camera_path

        load_camera_path(path)
    options = _OPTIONS.replace(train_preset=preset, max_steps=max_steps, stop_after=stop_after,
                               fly_through=_OPTIONS.fly_through.replace(seconds=seconds))
    entry, run = submit_capture_set(_studio_root(root), studio, shot, capture, tonight=tonight,
                                    submitter=submitter or getpass.getuser(), priority=priority, options=options,
                                    camera_path=path)
    console.print(f"{entry.label}: {entry.photos} photos in the inbox")
    if run is None:
        console.print("queued for tonight's sweep")
    else:
        console.print(f"flow run {run.id} queued ({run.name}, {priority} priority)")
        console.print(run_url(run.id))


@app.command()
@user_errors
def status(
    run_id: Annotated[str | None, typer.Argument(help="One flow run (default: the queue and recent runs).")] = None,
    studio: Annotated[str | None, typer.Option(help="Only this studio's runs.")] = None,
    root: Annotated[Path | None, typer.Option("--root", envvar="ADOP_STUDIO_ROOT", help=_ROOT_HELP)] = None,
    json_output: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")] = False,
) -> None:
    """The studio runs on the server: state, stage, progress and ETA."""
    import json

    from adop.service.runs import list_runs

    runs = list_runs(studio, run_id, root=None if root is None or not root.is_dir() else _studio_root(root))
    if json_output:
        console.print_json(json.dumps([r.to_dict() for r in runs]))
        return
    if not runs:
        console.print("no runs" + (f" of studio {studio}" if studio else ""))
        return
    header = f"{'run':<36}  {'studio':<12} {'shot':<24} {'state':<11} {'stage':<9} {'done':>5} {'ETA':>7}  " \
             f"{'submitter':<14} submitted"
    console.print(header, highlight=False)
    for r in runs:
        eta = "-" if r.eta_seconds is None else f"{r.eta_seconds / 60:.0f} min"
        console.print(f"{r.id:<36}  {r.studio:<12} {r.shot + ' v%03d' % r.version:<24} {r.state:<11} "
                      f"{r.stage or '-':<9} {r.progress * 100:>4.0f}% {eta:>7}  {r.submitter:<14} {_when(r.created)}",
                      highlight=False)
    for r in runs:
        if r.state_type in ("FAILED", "CRASHED") and r.message:
            console.print(f"{r.id}: {escape(r.message)}")


@app.command()
@user_errors
def cancel(
    run_id: Annotated[str, typer.Argument(help="The flow run to cancel.")],
    studio: Annotated[str | None, typer.Option(help="Refuse if the run is not this studio's.")] = None,
) -> None:
    """Cancel a queued or running studio run (a running one is stopped by its worker)."""
    from adop.service.runs import cancel as cancel_run

    console.print(f"flow run {run_id}: {cancel_run(run_id, studio)}")


@app.command()
@user_errors
def fetch(
    run_id: Annotated[str, typer.Argument(help="A completed flow run.")],
    out: Annotated[Path, typer.Option(help="A new (or empty) folder for the deliverables.")],
    root: RootOption,
    studio: Annotated[str | None, typer.Option(help="Refuse if the run is not this studio's.")] = None,
) -> None:
    """Copy what a completed run delivered (videos, EXR/PNG frames, contact sheet, reports) into OUT."""
    from adop.service.runs import fetch as fetch_run

    folder = fetch_run(_studio_root(root), run_id, out, studio)
    console.print(f"deliverables of {run_id} copied to [bold]{folder}[/]: "
                  f"{', '.join(sorted(p.name for p in folder.iterdir()))}")


@studio_app.command("add")
@user_errors
def studio_add(
    name: Annotated[str, typer.Argument(help="Studio name: lower-case letters, digits and '-'.")],
    root: RootOption,
    webhook: Annotated[str | None, typer.Option(help="URL that gets a JSON message when a run finishes or fails.")]
    = None,
    new_token: Annotated[bool, typer.Option(help="Issue a new page token (the old one stops working).")] = False,
) -> None:
    """Add a studio (its inbox, workspace and deliveries folders and its page token), or update its webhook."""
    token = _studio_root(root, create=True).add_studio(name, webhook, replace_token=new_token)
    console.print(f"studio {name} ready in {root / name}")
    if token is not None:
        console.print(f"page token (shown once, keep it): {token}")
    console.print("run `adop studio setup` to create its work queues on the server")


@studio_app.command("setup")
@user_errors
def studio_setup(
    root: RootOption,
    gpus: Annotated[int, typer.Option(help="Slots of the gpu concurrency limit (GPUs on the farm).")] = 1,
    cpus: Annotated[int, typer.Option(help="Slots of the cpu concurrency limit (SfM and dense stereo at once).")] = 2,
    nightly: Annotated[str, typer.Option(help="Cron schedule of the nightly sweep.")] = "0 1 * * *",
    timezone: Annotated[str, typer.Option(help="Time zone of the nightly schedule.")] = "Europe/Berlin",
    run_limit: Annotated[int | None, typer.Option(help="At most this many studio runs at once (default: the "
                                                       "workers' limits).")] = None,
    lost_after: Annotated[float, typer.Option(help="Seconds without a heartbeat after which a run's worker counts "
                                                   "as lost and the run is re-queued (at least 60).")] = 120.0,
) -> None:
    """Create or update the work pool (locked job template), the studio queues, the deployments, the gpu and cpu
    limits and the automation that re-queues lost runs."""
    from adop.service.setup import setup_server

    if gpus < 1 or cpus < 1:
        raise AdopError("--gpus and --cpus must be at least 1")
    if lost_after < 60:
        raise AdopError("--lost-after must be at least 60 seconds (two heartbeats of 30 s)")
    report = setup_server(_studio_root(root), gpu_slots=gpus, cpu_slots=cpus, nightly_cron=nightly, timezone=timezone,
                          run_limit=run_limit, lost_after_s=lost_after)
    console.print(f"work pool {report.pool}: queues {', '.join(report.queues) or '(no studios yet)'}")
    console.print(f"deployments: {', '.join(report.deployments)}; limits: gpu {report.gpu_slots}, "
                  f"cpu {report.cpu_slots}; a run without a heartbeat for {report.lost_after_s:.0f} s is re-queued")
    console.print(f"workers: ADOP_STUDIO_ROOT={root} prefect worker start --pool {report.pool} --limit 1")


@studio_app.command("sweep")
@user_errors
def studio_sweep(root: RootOption) -> None:
    """Queue every submission waiting in the inboxes now (what the nightly deployment does)."""
    from adop.service.nightly import sweep

    queued = sweep(_studio_root(root))
    console.print(f"queued {len(queued)} submission(s){': ' + ', '.join(queued) if queued else ''}")


@studio_app.command("serve")
@user_errors
def studio_serve(
    root: RootOption,
    host: Annotated[str, typer.Option(help="Address to listen on (127.0.0.1: this host only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port of the studio page.")] = 8400,
) -> None:
    """Serve the studio page (sign-in with the studio's token, submissions, pictures, downloads, upload form)."""
    import uvicorn

    from adop.service.connection import api_url
    from adop.service.page import create_app

    _setup_logging(False)
    api_url()
    uvicorn.run(create_app(_studio_root(root)), host=host, port=port, log_level="warning")


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
