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

from adop.errors import AdopError

app = typer.Typer(
    name="adop",
    help="Capture set → SfM point cloud → trained ADOP neural point renderer → fly-through deliverables.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
scene_app = typer.Typer(help="Import and export scenes (COLMAP models, original ADOP scene folders).", no_args_is_help=True)
app.add_typer(scene_app, name="scene")

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
            err_console.print(f"[bold red]error:[/] {error}", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None
        except PermissionError as error:
            err_console.print(f"[bold red]error:[/] permission denied: {error.filename}; fix permissions or choose "
                              "another folder", highlight=False, soft_wrap=True)
            raise typer.Exit(2) from None

    return wrapper  # type: ignore[return-value]


def _setup_logging(verbose: bool) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr)


class Preset(str, Enum):
    tiny = "tiny"
    small = "small"


class SceneFormat(str, Enum):
    colmap = "colmap"
    adop = "adop"


@app.command()
@user_errors
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to create: OUT/images (the capture set) and OUT/ground_truth.")],
    preset: Annotated[Preset, typer.Option(help="tiny: ~24 views at 320x240 (<1 min); small: ~48 views at 640x480.")] = Preset.tiny,
    seed: Annotated[int, typer.Option(help="Random seed; the same seed gives byte-identical images.")] = 0,
    overwrite: Annotated[bool, typer.Option(help="Replace OUT if it already exists.")] = False,
) -> None:
    """Generate a synthetic capture set with known cameras, exposure, white balance, vignetting and response."""
    from adop.synth import generate_capture_set

    _setup_logging(False)
    manifest = generate_capture_set(out, preset=preset.value, seed=seed, overwrite=overwrite)
    console.print(f"synthetic capture set written to [bold]{out}[/] ({manifest})")


@app.command()
@user_errors
def run(
    capture_dir: Annotated[Path, typer.Argument(help="A folder of photos, or a folder holding images/.")],
    workspace: Annotated[Path, typer.Option(help="Where artifacts are kept; reruns reuse finished stages.")] = Path(
        "workspace"
    ),
    min_images: Annotated[int, typer.Option(help="Fewest usable photos accepted.")] = 3,
    stop_after: Annotated[str, typer.Option(help="Last stage to run.")] = "ingest",
) -> None:
    """Run the pipeline (a Prefect flow) on a capture set; finished stages are reused from the workspace."""
    from adop.ingest import IMAGE_SUFFIXES, find_image_dir
    from adop.storage import ensure_writable_dir

    image_dir = find_image_dir(capture_dir)  # fail fast on user mistakes, before Prefect starts
    if not any(p.suffix.lower() in IMAGE_SUFFIXES for p in image_dir.iterdir()):
        raise AdopError(f"{image_dir} holds no JPEG/PNG/TIFF photos; point to the folder that holds them")
    ensure_writable_dir(workspace, "workspace")
    from flows.capture_to_deliverable import PipelineOptions, capture_to_deliverable

    options = PipelineOptions(min_images=min_images, stop_after=stop_after)  # type: ignore[arg-type]
    state = capture_to_deliverable(str(capture_dir), str(workspace), options, return_state=True)
    if state.is_failed():
        raise AdopError(state.message or "the pipeline failed; see the log above")
    summary = state.result()
    for stage, info in summary["stages"].items():
        console.print(f"{stage:>12}: {info['state']:<10} {info['artifact']['path']}")


@app.command()
@user_errors
def demo(
    folder: Annotated[Path, typer.Argument(help="Where to put the example capture set and the workspace.")] = Path(
        "demo"
    ),
    seed: Annotated[int, typer.Option(help="Seed of the synthetic capture set.")] = 0,
) -> None:
    """The main job on the built-in example: generate the tiny synthetic capture set, then run the pipeline."""
    capture = folder / "capture"
    if not (capture / "images").is_dir():
        synth(capture, preset=Preset.tiny, seed=seed, overwrite=False)
    else:
        console.print(f"reusing the synthetic capture set in [bold]{capture}[/]")
    run(capture, workspace=folder / "workspace")


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

    scene = load_scene(scene_dir)
    if scene.image_dir is not None and not scene.image_dir.is_absolute():
        scene.image_dir = (scene_dir / scene.image_dir).resolve()
    if format is SceneFormat.colmap:
        from adop.scene.colmap import export_colmap

        export_colmap(scene, out, text=text)
    else:
        from adop.scene.adop_folder import export_adop_scene

        export_adop_scene(scene, out)
    console.print(f"exported {len(scene.frames)} frames to [bold]{out}[/] ({format.value})")


def main() -> None:  # pragma: no cover - console entry point
    os.environ.setdefault("DO_NOT_TRACK", "1")
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
