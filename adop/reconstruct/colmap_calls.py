"""The pycolmap calls of the SfM stage, each with the options ``SfmConfig`` asks for (CPU only, bounded threads).

Kept apart from ``sfm.py``, which decides what to run and judges the result.
"""

from __future__ import annotations

import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
import contextlib
import logging
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from adop.native import pycolmap
from adop.errors import InputError, StageError
from adop.reconstruct.config import SfmConfig
from adop.reconstruct.images import ImageScan

log = logging.getLogger(__name__)

MIN_IMAGES = 3
Mapper = Literal["incremental", "global", "incremental-relaxed"]


@dataclass(frozen=True)
class Attempt:
    """One mapping run: how pairs were matched, which mapper ran, what came out."""

    matcher: str
    mapper: Mapper
    model_sizes: tuple[int, ...]
    """Registered images per model found, largest first (empty: no model)."""


@contextlib.contextmanager
def pycolmap_errors(stage: str) -> Iterator[None]:
    """pycolmap turns C++ check failures into ``ValueError("[file.cc:line] Check failed ...")``; say which stage."""
    try:
        yield
    except ValueError as error:
        raise StageError(f"pycolmap failed during {stage}: {error}. Check the input images and options; "
                         "the full COLMAP log is on stderr") from error


def extract_features(database: Path, image_dir: Path, scan: ImageScan, config: SfmConfig) -> None:
    """SIFT on the CPU; one shared camera per image size (one call per size group with ``CameraMode.SINGLE``)."""
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads = config.num_threads
    extraction.max_image_size = config.max_image_size if config.max_image_size > 0 else -1
    extraction.use_gpu = False
    extraction.sift.max_num_features = config.max_num_features
    if config.camera_grouping == "single" and len(scan.sizes) > 1:
        raise InputError(
            f"camera_grouping 'single' needs one image size, but the set has {len(scan.sizes)} "
            f"({', '.join(f'{w}x{h}' for w, h in scan.sizes)}); use 'per_size'"
        )
    if config.camera_grouping == "per_image":
        groups = [[info.name for info in scan.images]]
        mode = pycolmap.CameraMode.PER_IMAGE
    else:
        by_size: dict[tuple[int, int], list[str]] = {}
        for info in scan.images:
            by_size.setdefault((info.width, info.height), []).append(info.name)
        groups = list(by_size.values())
        mode = pycolmap.CameraMode.SINGLE
    for group in groups:
        pycolmap.extract_features(
            str(database), str(image_dir), image_names=group, camera_mode=mode, reader_options=reader,
            extraction_options=extraction, device=pycolmap.Device.cpu,
        )


def drop_unread_images(database: Path, scan: ImageScan) -> None:
    """Move images that pycolmap could not decode (they are only logged by it) to ``scan.unreadable``."""
    db = pycolmap.Database.open(str(database))
    try:
        stored = {image.name for image in db.read_all_images()}
    finally:
        db.close()
    missing = [info for info in scan.images if info.name not in stored]
    for info in missing:
        scan.unreadable[info.name] = "pycolmap could not decode it (corrupt or unsupported pixel format)"
        log.warning("left out %s: pycolmap could not decode it", info.name)
    scan.images = [info for info in scan.images if info.name in stored]


def match_pairs(database: Path, matcher: str, config: SfmConfig) -> None:
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads = config.num_threads
    matching.use_gpu = False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = config.min_num_inliers
    if matcher == "exhaustive":
        pycolmap.match_exhaustive(
            str(database), matching_options=matching, verification_options=verification, device=pycolmap.Device.cpu
        )
        return
    pairing = pycolmap.SequentialPairingOptions()
    pairing.overlap = config.sequential_overlap
    pairing.quadratic_overlap = True
    pairing.loop_detection = config.vocab_tree_path is not None
    if config.vocab_tree_path is not None:
        pairing.vocab_tree_path = str(config.vocab_tree_path)
    pycolmap.match_sequential(
        str(database), matching_options=matching, pairing_options=pairing, verification_options=verification,
        device=pycolmap.Device.cpu,
    )


def map_images(
    database: Path, image_dir: Path, work: Path, config: SfmConfig, matcher: str, mapper: Mapper
) -> tuple[Attempt, list[pycolmap.Reconstruction]]:
    """Run one mapper; returns the models largest first (by registered images, then points)."""
    if mapper == "global":
        options = pycolmap.GlobalPipelineOptions()
        options.num_threads, options.random_seed = config.num_threads, config.seed
        found = pycolmap.global_mapping(str(database), str(image_dir), str(work), options)
    else:
        relaxed = mapper == "incremental-relaxed"
        incremental = pycolmap.IncrementalPipelineOptions()
        incremental.num_threads, incremental.random_seed = config.num_threads, config.seed
        incremental.mapper.init_min_tri_angle = 4.0 if relaxed else config.init_min_tri_angle
        incremental.mapper.init_min_num_inliers = 30 if relaxed else config.init_min_num_inliers
        if relaxed:
            incremental.mapper.abs_pose_min_num_inliers = 15
            incremental.mapper.abs_pose_min_inlier_ratio = 0.15
            incremental.min_model_size = MIN_IMAGES
            incremental.init_num_trials = 400
        found = pycolmap.incremental_mapping(str(database), str(image_dir), str(work), incremental)
    shutil.rmtree(work, ignore_errors=True)  # models are kept in memory; the chosen one is written once
    models = sorted(found.values(), key=lambda r: (r.num_reg_images(), r.num_points3D()), reverse=True)
    return Attempt(matcher, mapper, tuple(int(m.num_reg_images()) for m in models)), models


def refine_principal_point(model: pycolmap.Reconstruction, config: SfmConfig) -> pycolmap.Reconstruction | None:
    """A copy of ``model`` after a bundle adjustment that also refines principal points, or None when a principal
    point moved further than ``config.principal_point_max_offset`` of the long side from the image centre."""
    refined = pycolmap.Reconstruction(model)
    options = pycolmap.BundleAdjustmentOptions()
    options.refine_principal_point = True
    pycolmap.bundle_adjustment(refined, options)
    for camera in refined.cameras.values():
        offset = np.hypot(camera.principal_point_x - camera.width / 2, camera.principal_point_y - camera.height / 2)
        if offset > config.principal_point_max_offset * max(camera.width, camera.height):
            log.warning("principal point refinement moved camera %d by %.0f px; keeping the centred one",
                        camera.camera_id, offset)
            return None
    return refined


def remove_coincident_points(model: pycolmap.Reconstruction, tolerance: float) -> int:
    """Delete every 3-D point that coincides (closer than ``tolerance`` × the cloud's robust extent) with a point of
    a longer track seen in a common image; returns how many were deleted.

    SIFT keeps up to two orientations of one keypoint, so one image can hold two keypoints at the same spot; each
    starts its own track and the mapper (and, more so, retriangulation) triangulates the same surface point twice.
    """
    from scipy.spatial import cKDTree

    from adop.reconstruct.preprocess import extent

    ids = list(model.point3D_ids())
    if len(ids) < 2 or tolerance <= 0:
        return 0
    positions = np.array([model.points3D[i].xyz for i in ids])
    pairs = cKDTree(positions).query_pairs(tolerance * extent(positions), output_type="ndarray")
    doomed: set[int] = set()
    for a, b in pairs:
        point_a, point_b = model.points3D[ids[a]], model.points3D[ids[b]]
        images_a = {element.image_id for element in point_a.track.elements}
        if ids[a] in doomed or ids[b] in doomed or not images_a & {e.image_id for e in point_b.track.elements}:
            continue
        doomed.add(ids[b] if point_a.track.length() >= point_b.track.length() else ids[a])
    for point_id in doomed:
        model.delete_point3D(point_id)
    return len(doomed)


def retriangulate(
    model: pycolmap.Reconstruction, database: Path, image_dir: Path, work: Path, config: SfmConfig
) -> pycolmap.Reconstruction:
    """Triangulate ``model``'s matches again with its poses fixed and relaxed thresholds (``SfmConfig.retriangulate``).

    Returns a new reconstruction; ``model`` is not modified.
    """
    options = pycolmap.IncrementalPipelineOptions()
    options.num_threads, options.random_seed = config.num_threads, config.seed
    options.triangulation.min_angle = config.retriangulation_min_angle
    options.triangulation.ignore_two_view_tracks = False
    options.triangulation.create_max_angle_error = 4.0
    options.triangulation.complete_max_reproj_error = 8.0
    work.mkdir(parents=True, exist_ok=True)
    try:
        return pycolmap.triangulate_points(pycolmap.Reconstruction(model), str(database), str(image_dir), str(work),
                                           clear_points=True, options=options)
    finally:
        shutil.rmtree(work, ignore_errors=True)

