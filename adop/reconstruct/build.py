"""SfM folder → our scene folder: import, cleanup, ADOP preprocessing, reports and the quick-look picture.

``build_scene`` writes into ``out_dir``::

    scene.json, points.ply           # the scene (adop.scene.folder), points with normals, colours and radius
    quicklook.png                    # top-down view of cameras and points
    reconstruction_summary.txt       # a few lines for people
    reconstruction_report.json       # everything measured, SfM included; written last (the completion marker)

It is cheap next to SfM (well under a second for 10 k points), so the pipeline caches it separately and a change of a
``CleanupConfig`` field reruns only this step.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.spatial import cKDTree

from adop.dense import load_dense_result
from adop.reconstruct.cleanup import CleanupStats, clean_points, view_vectors
from adop.reconstruct.config import CleanupConfig
from adop.reconstruct.preprocess import PreprocessStats, preprocess_points
from adop.images import write_png
from adop.reconstruct.quicklook import estimate_up, render_quicklook
from adop.reconstruct.sfm import MODEL_DIR, load_sfm_result
from adop.reconstruct.timing import StageTiming, Stopwatch
from adop.scene.colmap import read_reconstruction, scene_from_reconstruction
from adop.scene.folder import save_scene
from adop.scene.types import PointCloud
from adop.storage import write_text_atomic

log = logging.getLogger(__name__)

REPORT_FILE = "reconstruction_report.json"
SUMMARY_FILE = "reconstruction_summary.txt"
QUICKLOOK_FILE = "quicklook.png"


@dataclass(frozen=True)
class SceneReport:
    """What ``build_scene`` produced (``reconstruction_report.json`` holds this plus the SfM report)."""

    scene_dir: Path
    num_frames: int
    num_cameras: int
    cleanup: CleanupStats
    preprocess: PreprocessStats
    up: tuple[float, float, float]
    """World up estimated from the cameras, also stored as ``Scene.up``."""
    timings: tuple[StageTiming, ...]
    sfm: dict[str, Any]
    """The SfM folder's ``sfm_report.json``."""
    config: dict[str, Any]
    dense: dict[str, Any] | None = None
    """The dense folder's ``dense_report.json`` (None when the scene was built from SfM alone)."""
    points_dense: int = 0
    """Dense points that went into the cleanup."""
    points_sparse_kept: int = 0
    """SfM points added where the dense cloud has none."""

    @property
    def points_sfm(self) -> int:
        return int(self.sfm.get("num_points", self.cleanup.points_in))

    @property
    def points_final(self) -> int:
        return self.preprocess.points_out

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["scene_dir"]  # the folder may be renamed after writing (the cache does), so it is not recorded
        data["points_sfm"], data["points_final"] = self.points_sfm, self.points_final
        return data


def build_scene(sfm_dir: Path, image_dir: Path, out_dir: Path, config: CleanupConfig = CleanupConfig(), *,
                dense_dir: Path | None = None) -> SceneReport:
    """Turn a finished ``run_sfm`` folder into a scene folder ready for training.

    Args:
        sfm_dir: output folder of ``run_sfm``.
        image_dir: the images' folder, stored in the scene exactly as given (pass the ingested, absolute folder);
            also read for each frame's EXIF exposure.
        out_dir: the scene folder to write (created if missing).
        config: cleanup and preprocessing options.
        dense_dir: output folder of the dense stage; its cloud replaces the SfM points (which are kept only where
            it has none, see ``CleanupConfig.sparse_fill``). None, or a dense folder without a cloud (``off``, a
            fallback): the SfM points.

    Returns:
        The report, also written to ``out_dir/reconstruction_report.json``.

    Raises:
        InputError: ``sfm_dir`` is not a finished SfM folder or its model cannot be read.
    """
    watch = Stopwatch()
    out_dir = Path(out_dir)
    with watch("import"):
        sfm_report = load_sfm_result(sfm_dir)
        reconstruction = read_reconstruction(Path(sfm_dir) / MODEL_DIR)
        scene = scene_from_reconstruction(reconstruction, Path(image_dir), source=str(sfm_dir))
        views = view_vectors(reconstruction, sorted(reconstruction.point3D_ids()))
        dense_report, dense_cloud = load_dense_result(dense_dir) if dense_dir is not None else (None, None)
    points_in, points_dense, sparse_kept = scene.points, 0, 0
    if dense_cloud is not None and len(dense_cloud):
        with watch("merge"):
            points_in, views, sparse_kept = merge_dense(dense_cloud, scene.points, views, config)
            points_dense = len(dense_cloud)
    with watch("cleanup"):
        cleaned, cleanup_stats = clean_points(points_in, views, config)
    with watch("preprocess"):
        points, pre_stats = preprocess_points(
            cleaned, scene.centers(), duplicate_tolerance=config.duplicate_tolerance,
            lonely_ratio=config.lonely_ratio, point_factor=config.point_factor, seed=config.radius_seed,
        )
        up = estimate_up(scene)
        scene = replace(scene, points=points, up=(float(up[0]), float(up[1]), float(up[2])))
    with watch("save"):
        save_scene(scene, out_dir)
    with watch("quicklook"):
        check = sfm_report.get("check")
        verdict = "" if not check else (
            f", check {'ok' if check['consistent'] else 'FAILED'} {check['pairs_agreeing']}/{check['pairs_checked']}")
        caption = (
            f"{len(scene.frames)}/{sfm_report['images_found']} images registered, {len(points):,} points, "
            f"{sfm_report['mean_reprojection_error']:.2f} px{verdict}  (top-down; orange = cameras)"
        )
        write_png(out_dir / QUICKLOOK_FILE, render_quicklook(scene, up, config.quicklook_size, caption))
    report = SceneReport(
        scene_dir=out_dir, num_frames=len(scene.frames), num_cameras=len(scene.cameras), cleanup=cleanup_stats,
        preprocess=pre_stats, up=scene.up or (0.0, 0.0, 1.0), timings=tuple(watch.rows), sfm=sfm_report,
        config=config.to_dict(), dense=None if dense_report is None else dense_report.to_dict(),
        points_dense=points_dense, points_sparse_kept=sparse_kept,
    )
    write_text_atomic(out_dir / SUMMARY_FILE, summarize(report))
    write_text_atomic(out_dir / REPORT_FILE, json.dumps(report.to_dict(), indent=1))
    log.info("scene: %d frames, %d → %d points", report.num_frames, report.points_sfm, report.points_final)
    return report


def merge_dense(dense: PointCloud, sparse: PointCloud, sparse_views: np.ndarray,
                config: CleanupConfig) -> tuple[PointCloud, np.ndarray, int]:
    """The dense cloud plus (with ``sparse_fill``) the SfM points farther than ``sparse_fill_spacing`` median dense
    spacings from any dense point; returns the points, their view vectors and how many SfM points were kept.

    The dense points' fused normals face the cameras, so they serve as view vectors: the cleanup then fits normals
    again from the neighbourhood (as for SfM points) and only takes their side from them."""
    views = dense.normals.astype(np.float64) if dense.normals is not None else np.zeros((len(dense), 3))
    colors = dense.colors if dense.colors is not None else np.full((len(dense), 3), 128, np.uint8)
    if not config.sparse_fill or len(sparse) == 0 or len(dense) < 2:
        return PointCloud(dense.positions, colors=colors), views, 0
    tree = cKDTree(dense.positions)
    sample = dense.positions[:: max(1, len(dense) // 20000)]
    gaps = tree.query(sample, k=2)[0][:, 1]
    spacing = float(np.median(gaps[gaps > 0])) if np.any(gaps > 0) else 0.0
    far = tree.query(sparse.positions)[0] > config.sparse_fill_spacing * spacing
    sparse_colors = sparse.colors if sparse.colors is not None else np.full((len(sparse), 3), 128, np.uint8)
    merged = PointCloud(np.concatenate([dense.positions, sparse.positions[far]]),
                        colors=np.concatenate([colors, sparse_colors[far]]))
    return merged, np.concatenate([views, sparse_views[far]]), int(far.sum())


def _dense_lines(report: SceneReport) -> list[str]:
    dense = report.dense
    if dense is None:
        return []
    if dense["method"] == "off":
        return ["  dense:    off (the SfM points only)"]
    seconds = sum(dense["seconds"].values())
    coverage = sorted(dense["coverage"].values())
    median = coverage[len(coverage) // 2] if coverage else 0.0
    lines = [f"  dense:    {dense['method']} on {dense['device']} at {dense['map_size']}: {dense['views_used']}/"
             f"{dense['views']} views, {dense['points']:,} points, median photo coverage {median:.0%}, "
             f"{seconds:.1f} s; {report.points_dense:,} dense + {report.points_sparse_kept:,} SfM points kept"]
    lines += [f"  warning:  {warning}" for warning in dense["warnings"][:10]]
    if len(dense["warnings"]) > 10:
        lines.append(f"  warning:  ... and {len(dense['warnings']) - 10} more (dense_report.json)")
    return lines


def summarize(report: SceneReport) -> str:
    """The human summary: a dozen lines a supervisor can read at a glance."""
    sfm = report.sfm
    usable = len(sfm["registered"]) + len(sfm["unregistered"]) + len(sfm["unreadable"])
    timings = {row["stage"]: row["wall_s"] for row in sfm["timings"]}
    colmap = ", ".join(f"{k.split(':')[1]} {v:.1f} s" for k, v in timings.items() if k.startswith("colmap:"))
    c, p = report.cleanup, report.preprocess
    lines = [
        "Reconstruction",
        f"  images:   {sfm['images_found']} found, {len(sfm['registered'])} of {usable} registered "
        f"({sfm['registered_fraction']:.0%}); {len(sfm['unreadable'])} unreadable, {len(sfm['duplicates'])} copies "
        "left out",
        f"  matcher:  {sfm['matcher']} ({sfm['matcher_reason']}); mapper: {sfm['mapper']}; retries: {sfm['retries']}; "
        "models found: "
        f"{len(sfm['models_found'])} ({', '.join(str(s) for s in sfm['models_found'])} images)",
        f"  cameras:  {report.num_cameras} × {sfm['camera_model']} (focal prior from EXIF for {sfm['focal_from_exif']})"
        + (f"; {sfm['downscaled_for_sift']} images downscaled for SIFT" if sfm["downscaled_for_sift"] else ""),
        f"  SfM:      {sfm['num_points']:,} points, mean reprojection error {sfm['mean_reprojection_error']:.3f} px, "
        f"mean track length {sfm['mean_track_length']:.2f}",
        *_check_lines(sfm),
        *_dense_lines(report),
        f"  cleanup:  {c.points_in:,} → {c.after_outliers:,} (outliers) → {c.after_voxel:,} (voxel) → "
        f"{p.points_out:,} points (-{p.duplicates_removed} duplicates, -{p.lonely_removed} lonely, "
        f"+{p.points_added} densified); normals and drop-out radius stored",
        f"  time:     SfM {sfm['total_seconds']:.1f} s ({colmap}); scene {sum(t.wall_s for t in report.timings):.1f} s",
    ]
    if p.duplicates_removed > 0.2 * max(1, c.after_voxel):
        lines.append(f"  warning:  {p.duplicates_removed / max(1, c.after_voxel):.0%} of the points were duplicates "
                     "(closer than the duplicate tolerance to another point): the model may be degenerate; see the "
                     "check above")
    if sfm["unregistered"]:
        lines.append(f"  not registered: {', '.join(sfm['unregistered'][:20])}"
                     + (" ..." if len(sfm["unregistered"]) > 20 else ""))
    for name, reason in list(sfm["unreadable"].items())[:20]:
        lines.append(f"  unreadable: {name}: {reason}")
    lines.append(f"  look: {QUICKLOOK_FILE} (top-down: points in colour, cameras orange)")
    return "\n".join(lines) + "\n"


def _check_lines(sfm: dict[str, Any]) -> list[str]:
    """The model check's verdict and evidence (absent in reports of SfM folders made before the check existed)."""
    check = sfm.get("check")
    if not check:
        return []
    verdict = "consistent" if check["consistent"] else "INCONSISTENT"
    focal = "" if check["focal_prior_ratio"] is None else f", focal {check['focal_prior_ratio']:.3f}× EXIF"
    lines = [
        f"  check:    {verdict}: {check['pairs_agreeing']}/{check['pairs_checked']} two-view rotations agree "
        f"(median {check['median_disagreement_deg']:.2f}°, p90 {check['p90_disagreement_deg']:.2f}°), "
        f"{check['explained_matches']:.0%} of verified matches explained{focal}, "
        f"{check['collapsed_cameras']} collapsed cameras",
        f"  model:    {sfm.get('mapper_reason') or sfm['mapper']}",
    ]
    if check["cameras_without_focal_prior"]:
        lines.append(f"  note:     {check['cameras_without_focal_prior']} camera(s) had no EXIF focal length; the "
                     "global mapper depends on a good focal prior, so the incremental model was checked too")
    lines += [f"  problem:  {reason}" for reason in check["reasons"]]
    lines += [f"  note:     {note}" for note in check.get("notes", [])]
    return lines
