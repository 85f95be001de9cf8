"""``reconstruct``: SfM, dense stereo and scene building in one call (``adop reconstruct`` and the benchmark use it).

The cached pipeline calls ``run_sfm``, ``run_dense`` and ``build_scene`` as three tasks instead; this function gives the same
guarantee without a cache: everything is written into a temporary sibling of ``out_dir`` and renamed into place only
when both steps succeeded, so a failure never leaves something that looks like a finished scene.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

from adop.dense import DenseConfig
from adop.errors import InputError
from adop.reconstruct.build import SceneReport, build_scene
from adop.reconstruct.config import CleanupConfig, SfmConfig
from adop.reconstruct.dense import run_dense
from adop.reconstruct.sfm import Progress, run_sfm
from adop.storage import ensure_apart, remove_quietly, replace_folder, staging_folder

SFM_SUBDIR = "sfm"
DENSE_SUBDIR = "dense"


def reconstruct(
    image_dir: Path,
    out_dir: Path,
    sfm_config: SfmConfig = SfmConfig(),
    cleanup_config: CleanupConfig = CleanupConfig(),
    *,
    progress: Progress | None = None,
    overwrite: bool = False,
    dense_config: DenseConfig = DenseConfig(),
) -> SceneReport:
    """Images → scene folder ``out_dir`` (with the SfM and dense folders kept in ``out_dir/sfm``, ``out_dir/dense``).

    Args:
        image_dir: the capture's images; stored in the scene as given.
        out_dir: the scene folder to create.
        sfm_config: SfM options.
        cleanup_config: cleanup and preprocessing options.
        progress: optional ``(step, total, metrics)`` callback for the SfM stages.
        overwrite: replace an existing, non-empty ``out_dir``.
        dense_config: dense stereo options (``method="off"``: the SfM points only).

    Raises:
        InputError: ``out_dir`` exists and is not empty (and ``overwrite`` is off), or the input is unusable.
        SfmFailure: SfM did not register enough images (see ``run_sfm``).
    """
    out_dir = Path(out_dir)
    with _staged(out_dir, overwrite, image_folder=image_dir) as work:
        run_sfm(Path(image_dir), work / SFM_SUBDIR, sfm_config, progress)
        report = _dense_and_scene(work / SFM_SUBDIR, Path(image_dir), work, dense_config, cleanup_config)
    return replace(report, scene_dir=out_dir)  # the report files hold no absolute paths, only this does


def densify_scene(
    sfm_dir: Path,
    image_dir: Path,
    out_dir: Path,
    dense_config: DenseConfig = DenseConfig(),
    cleanup_config: CleanupConfig = CleanupConfig(),
    *,
    overwrite: bool = False,
) -> SceneReport:
    """A finished SfM folder → a dense scene folder ``out_dir`` (the dense folder kept in ``out_dir/dense``); the SfM
    folder is only read. Same guarantees as ``reconstruct``."""
    out_dir = Path(out_dir)
    with _staged(out_dir, overwrite, sfm_folder=sfm_dir, image_folder=image_dir) as work:
        report = _dense_and_scene(Path(sfm_dir), Path(image_dir), work, dense_config, cleanup_config)
    return replace(report, scene_dir=out_dir)


@contextlib.contextmanager
def _staged(out_dir: Path, overwrite: bool, **inputs: Path) -> Iterator[Path]:
    """A staging folder that replaces ``out_dir`` only when the block succeeds (and is removed either way); refuses
    an ``out_dir`` that overlaps an input or is not empty (unless ``overwrite``)."""
    ensure_apart(out_dir, "scene folder", **inputs)
    if out_dir.exists() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(f"{out_dir} already exists and is not empty; choose a new folder or pass --overwrite")
    work = staging_folder(out_dir)
    try:
        yield work
        replace_folder(work, out_dir)
    finally:
        remove_quietly(work)


def _dense_and_scene(sfm_dir: Path, image_dir: Path, work: Path, dense_config: DenseConfig,
                     cleanup_config: CleanupConfig) -> SceneReport:
    """The dense stage into ``work/dense``, then the scene into ``work``. The depth maps (gigabytes for a large set)
    go to a scratch folder in ``work`` that is removed afterwards, so the scene folder holds only the fused cloud and
    the report."""
    scratch = work / ".depth_maps"
    try:
        run_dense(sfm_dir, image_dir, work / DENSE_SUBDIR, dense_config, cache_dir=scratch)
    finally:
        remove_quietly(scratch)
    return build_scene(sfm_dir, image_dir, work, cleanup_config, dense_dir=work / DENSE_SUBDIR)
