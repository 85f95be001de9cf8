"""``reconstruct``: SfM and scene building in one call (``adop reconstruct`` and the benchmark use it).

The cached pipeline calls ``run_sfm`` and ``build_scene`` as two tasks instead; this function gives the same
guarantee without a cache: everything is written into a temporary sibling of ``out_dir`` and renamed into place only
when both steps succeeded, so a failure never leaves something that looks like a finished scene.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from adop.errors import InputError
from adop.reconstruct.build import SceneReport, build_scene
from adop.reconstruct.config import CleanupConfig, SfmConfig
from adop.reconstruct.sfm import Progress, run_sfm
from adop.storage import ensure_apart, remove_quietly, replace_folder, staging_folder

SFM_SUBDIR = "sfm"


def reconstruct(
    image_dir: Path,
    out_dir: Path,
    sfm_config: SfmConfig = SfmConfig(),
    cleanup_config: CleanupConfig = CleanupConfig(),
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
) -> SceneReport:
    """Images → scene folder ``out_dir`` (with the SfM folder kept in ``out_dir/sfm``).

    Args:
        image_dir: the capture's images; stored in the scene as given.
        out_dir: the scene folder to create.
        sfm_config: SfM options.
        cleanup_config: cleanup and preprocessing options.
        progress: optional ``(step, total, metrics)`` callback for the SfM stages.
        overwrite: replace an existing, non-empty ``out_dir``.

    Raises:
        InputError: ``out_dir`` exists and is not empty (and ``overwrite`` is off), or the input is unusable.
        SfmFailure: SfM did not register enough images (see ``run_sfm``).
    """
    out_dir = Path(out_dir)
    ensure_apart(out_dir, "scene folder", image_folder=image_dir)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"{out_dir} already exists and is not empty; choose a new folder or pass --overwrite")
    work = staging_folder(out_dir)
    try:
        run_sfm(Path(image_dir), work / SFM_SUBDIR, sfm_config, progress)
        report = build_scene(work / SFM_SUBDIR, Path(image_dir), work, cleanup_config)
        replace_folder(work, out_dir)
    finally:
        remove_quietly(work)
    return replace(report, scene_dir=out_dir)  # the report files hold no absolute paths, only this does

