"""The dense stage on a finished SfM folder: the scene and its SfM tracks read with pycolmap, then ``adop.dense``.

``run_dense`` picks the method ``DenseConfig.method`` asks for: ``ours`` (the plane sweep), ``colmap`` (COLMAP's
PatchMatch in a child process; refused with one sentence where it cannot run), ``auto`` (COLMAP's where it can run,
else ours, the reason noted in the report) or ``off`` (only the report; the scene keeps the SfM points).
"""

from __future__ import annotations

import time
import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
from pathlib import Path

import numpy as np

from adop.dense import DenseConfig, DenseReport, densify
from adop.dense.colmap_mvs import colmap_unavailable, run_colmap_mvs
from adop.dense.dense_cloud import REPORT_FILE, coverage, finish, peak_memory
from adop.dense.views import stereo_view
from adop.errors import AdopError
from adop.reconstruct.quicklook import estimate_up
from adop.reconstruct.sfm import MODEL_DIR, load_sfm_result
from adop.scene.colmap import read_reconstruction, scene_from_reconstruction
from adop.scene.ply import read_ply
from adop.scene.types import Scene
from adop.storage import write_json_atomic

COLMAP_TIMEOUT_S = 6 * 3600.0
"""How long COLMAP's dense stereo may run before it is given up on (a large set on one GPU takes hours)."""


def load_sfm_views(sfm_dir: Path, image_dir: Path) -> tuple[Scene, list[np.ndarray]]:
    """The SfM model as a scene, plus each frame's observed point rows (its tracks), in the scene's frame order.

    Raises:
        InputError: ``sfm_dir`` is not a finished SfM folder.
    """
    load_sfm_result(sfm_dir)
    reconstruction = read_reconstruction(Path(sfm_dir) / MODEL_DIR)
    scene = scene_from_reconstruction(reconstruction, Path(image_dir), source=str(sfm_dir))
    row_of = {pid: row for row, pid in enumerate(sorted(reconstruction.point3D_ids()))}
    by_name = {reconstruction.image(i).name: reconstruction.image(i) for i in reconstruction.reg_image_ids()}
    visibility = []
    for frame in scene.frames:
        rows = [row_of[p.point3D_id] for p in by_name[frame.name].points2D
                if p.has_point3D() and p.point3D_id in row_of]
        visibility.append(np.unique(np.asarray(rows, dtype=np.int64)))
    return scene, visibility


def run_dense(sfm_dir: Path, image_dir: Path, out_dir: Path, config: DenseConfig, *, cache_dir: Path) -> DenseReport:
    """The dense stage on a finished SfM folder, with the method ``config.method`` asks for (``auto``: COLMAP's
    where it can run, else ours; ``off``: only the report, and the scene keeps the SfM points)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if config.method == "off":
        report = DenseReport(method="off", device="none", map_size="0×0", views=0, views_used=0,
                             config=config.to_dict())
        write_json_atomic(out_dir / REPORT_FILE, report.to_dict())
        return report
    scene, visibility = load_sfm_views(sfm_dir, image_dir)
    method, fallback_note = "ours", None
    if config.method in ("auto", "colmap"):
        reason = colmap_unavailable()
        if reason is None:
            method = "colmap"
        elif config.method == "colmap":
            raise AdopError(f"--dense colmap cannot run here: {reason}; use --dense ours (or auto)")
        else:
            fallback_note = f"COLMAP's dense stereo was not used: {reason}"
    if method == "colmap":
        started = time.perf_counter()
        try:
            fused = run_colmap_mvs(Path(sfm_dir) / MODEL_DIR, Path(image_dir), Path(cache_dir) / "colmap",
                                   config.max_image_size_cuda, timeout_s=COLMAP_TIMEOUT_S)
        except AdopError as error:
            if config.method == "colmap":
                raise
            fallback_note = f"COLMAP's dense stereo failed, so ours ran instead: {error}"
        else:
            cloud = read_ply(fused)
            views = {i: stereo_view(scene, i, config.max_image_size_cuda) for i in range(len(scene.frames))}
            report = DenseReport(method="colmap", device="cuda", views=len(views), views_used=len(views),
                                 map_size="colmap", points=len(cloud), coverage=coverage(cloud, views),
                                 config=config.to_dict())
            report.seconds["colmap"] = round(time.perf_counter() - started, 2)
            report.peak_memory_mb["colmap"] = peak_memory("cpu")
            finish(report, cloud, out_dir)
            return report
    report = densify(scene, visibility, image_dir, out_dir, config, cache_dir=cache_dir, up=estimate_up(scene))
    if fallback_note:
        report.warnings.insert(0, fallback_note)
        write_json_atomic(out_dir / REPORT_FILE, report.to_dict())
    return report
