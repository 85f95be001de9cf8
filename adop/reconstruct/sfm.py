"""Structure from motion with pycolmap on the CPU: SIFT extraction, matching, incremental mapping.

``run_sfm`` writes one folder (the pipeline caches it as its own artifact, so cleanup changes never rerun it)::

    OUT/database.db        # COLMAP features and verified matches
    OUT/sparse/            # the chosen (largest) model: cameras/images/points3D/frames/rigs .bin
    OUT/sfm_report.json    # written last: its presence means the folder is complete

pycolmap signals most failures only with an empty result and a log line (docs/method.md §13), so every result is checked
here: the largest model is taken, the registered fraction compared with ``SfmConfig.min_registered_fraction``, one
retry made (global mapping, then relaxed incremental thresholds), and otherwise an ``SfmFailure`` raised whose message says what happened and what to do.
"""

from __future__ import annotations

import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
import json
import logging
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adop.native import pycolmap
from adop.errors import InputError
from adop.reconstruct.colmap_calls import (
    MIN_IMAGES,
    Attempt,
    drop_unread_images,
    extract_features,
    map_images,
    match_pairs,
    pycolmap_errors,
    refine_principal_point,
    remove_coincident_points,
    retriangulate,
)
from adop.reconstruct.check import ModelCheck, check_model
from adop.reconstruct.config import SfmConfig
from adop.reconstruct.failure import SfmFailure, explain_failure, explain_inconsistency, read_match_stats
from adop.reconstruct.images import ImageScan, looks_sequential, scan_images
from adop.reconstruct.timing import StageTiming, Stopwatch
from adop.storage import write_text_atomic

log = logging.getLogger(__name__)

DATABASE_FILE = "database.db"
MODEL_DIR = "sparse"
SFM_REPORT_FILE = "sfm_report.json"

Progress = Callable[[int, int, dict[str, Any]], None]
"""``progress(step, total, metrics)``: called after each stage (metrics hold ``stage`` and numbers)."""


@dataclass(frozen=True)
class SfmResult:
    """What ``run_sfm`` produced; also written as ``sfm_report.json``."""

    out_dir: Path
    model_dir: Path
    database_path: Path
    images_found: int
    """Image files in the folder (usable, unreadable and byte-identical copies)."""
    registered: tuple[str, ...]
    unregistered: tuple[str, ...]
    """Usable images that SfM did not place."""
    unreadable: dict[str, str]
    duplicates: dict[str, str]
    registered_fraction: float
    """Registered / (usable + unreadable); copies are not counted."""
    matcher: str
    matcher_reason: str
    mapper: str
    """The mapper whose model was kept (``global``, ``incremental`` or ``incremental-relaxed``)."""
    retries: int
    """Retry rounds made because too few images registered (0 or 1)."""
    attempts: tuple[Attempt, ...]
    """Every mapping run, in order: the first mapper, a retry round's, the mapper policy's second opinion."""
    models_found: tuple[int, ...]
    """Registered images per model of the chosen attempt, largest (chosen) first."""
    num_cameras: int
    camera_model: str
    focal_from_exif: int
    """Cameras whose focal-length prior came from EXIF (the others start at 1.2 × the long side)."""
    downscaled_for_sift: int
    """Images whose long side exceeded ``max_image_size`` and were downscaled for SIFT only."""
    num_points: int
    mean_reprojection_error: float
    mean_track_length: float
    mean_observations_per_image: float
    timings: tuple[StageTiming, ...]
    config: dict[str, Any] = field(default_factory=dict)
    points_mapped: int = 0
    """Points of the mapper's model before retriangulation (``num_points`` is after it)."""
    check: dict[str, Any] | None = None
    """``ModelCheck.to_dict()`` of the kept model: the evidence and the verdict."""
    mapper_reason: str = ""
    """Why this mapper's model was kept (and over which other)."""

    @property
    def pycolmap_seconds(self) -> float:
        return sum(t.wall_s for t in self.timings if t.stage.startswith("colmap:"))

    @property
    def total_seconds(self) -> float:
        return sum(t.wall_s for t in self.timings)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        del data["out_dir"]  # paths are relative to the folder, which the cache renames after writing
        data["model_dir"], data["database_path"] = MODEL_DIR, DATABASE_FILE
        data["pycolmap_seconds"] = self.pycolmap_seconds
        data["total_seconds"] = self.total_seconds
        data["pycolmap_version"] = pycolmap.__version__
        return data


def run_sfm(image_dir: Path, out_dir: Path, config: SfmConfig = SfmConfig(), progress: Progress | None = None, *,
            source: Path | None = None) -> SfmResult:
    """Estimate cameras, poses and a sparse point cloud for the images in ``image_dir``.

    Args:
        image_dir: the capture's images (searched recursively; names are kept relative to it).
        out_dir: an empty or missing folder to write into (see the module docstring for the layout).
        config: SfM options.
        progress: optional ``(step, total, metrics)`` callback, called after each stage.
        source: the folder the user gave, named in messages when ``image_dir`` is a working copy of it.

    Returns:
        The result, also written to ``out_dir/sfm_report.json``.

    Raises:
        InputError: ``image_dir`` is missing or ``config`` is invalid.
        SfmFailure: a ``StageError`` saying how many images registered, which did not, the likely cause and what to
            do (also for fewer than 3 usable images and for all-identical copies).
    """
    _check_config(config)
    watch = Stopwatch()
    out_dir = Path(out_dir)
    with watch("scan"):
        scan = scan_images(Path(image_dir))
        shown = Path(source) if source is not None else Path(image_dir)
        _check_enough_images(scan, shown)
        names = [info.name for info in scan.images]
        matcher, reason = choose_matcher(names, config)
        out_dir.mkdir(parents=True, exist_ok=True)
        database = out_dir / DATABASE_FILE
        for stale in (database, out_dir / SFM_REPORT_FILE):  # a rerun into the same folder starts clean
            stale.unlink(missing_ok=True)
        shutil.rmtree(out_dir / MODEL_DIR, ignore_errors=True)
        pycolmap.set_random_seed(config.seed)
    log.info("SfM on %d images with %s matching (%s)", len(names), matcher, reason)
    total_steps = 3
    step = _stepper(progress, total_steps)
    downscaled = _note_downscaling(scan, config)
    with watch("colmap:extract"), pycolmap_errors("feature extraction"):
        extract_features(database, Path(image_dir), scan, config)
    drop_unread_images(database, scan)
    _check_enough_images(scan, shown)
    step("extract", images=len(scan.images))
    with watch("colmap:match"), pycolmap_errors("matching"):
        match_pairs(database, matcher, config)
    step("match")
    first = "incremental" if config.mapper == "incremental" else "global"
    with watch("colmap:map"), pycolmap_errors("mapping"):
        attempt, models = map_images(database, Path(image_dir), out_dir / "_map", config, matcher, first)
    attempts = [attempt]
    step("map", registered=attempt.model_sizes[0] if attempt.model_sizes else 0)
    usable = len(scan.images) + len(scan.unreadable)
    if _fraction(models, usable) < config.min_registered_fraction and config.retry:
        attempt, models = _retry(database, Path(image_dir), out_dir, config, matcher, usable, watch, attempts, models)
        if attempt.matcher != matcher:
            matcher, reason = attempt.matcher, f"retry, after {matcher} matching registered too few images"
    retries = int(len(attempts) > 1)
    choice = _choose_model(database, Path(image_dir), out_dir, config, matcher, usable, watch, attempts,
                           Candidate(attempt, models, _check(attempt, models, database, config, watch)))
    attempt, models = choice.attempt, choice.models
    if config.refine_principal_point and models and _fraction(models, usable) >= config.min_registered_fraction:
        with watch("colmap:principal_point"), pycolmap_errors("bundle adjustment"):
            refined = refine_principal_point(models[0], config)
        if refined is not None:
            models = choice.models = [refined, *models[1:]]
    points_mapped = int(models[0].num_points3D()) if models else 0
    if config.retriangulate and models and _fraction(models, usable) >= config.min_registered_fraction:
        with watch("colmap:retriangulate"), pycolmap_errors("retriangulation"):
            denser = retriangulate(models[0], database, Path(image_dir), out_dir / "_retriangulate", config)
        removed = remove_coincident_points(denser, config.duplicate_tolerance)
        log.info("retriangulation: %d coincident points (one keypoint seen twice) removed", removed)
        if denser.num_points3D() > points_mapped:
            log.info("retriangulation: %d -> %d points", points_mapped, denser.num_points3D())
            models = choice.models = [denser, *models[1:]]
    return _finish(out_dir, scan, config, matcher, reason, choice, attempts, retries, downscaled, database, watch,
                   points_mapped)


@dataclass
class Candidate:
    """One mapper's model (largest first) and its check; ``why`` says why it was kept, once chosen."""

    attempt: Attempt
    models: list[pycolmap.Reconstruction]
    check: ModelCheck | None
    why: str = ""

    def rank(self, usable: int, config: SfmConfig) -> tuple[bool, bool, int, float]:
        """Consistent first, then enough registered images, then more of them, then more agreeing pairs."""
        registered = self.models[0].num_reg_images() if self.models else 0
        consistent = self.check is not None and self.check.consistent
        return (consistent, registered >= config.min_registered_fraction * usable, registered,
                self.check.agreement if self.check else 0.0)


def _check(attempt: Attempt, models: list[pycolmap.Reconstruction], database: Path, config: SfmConfig,
           watch: Stopwatch) -> ModelCheck | None:
    if not models:
        return None
    with watch(f"check_{attempt.mapper}"):
        result = check_model(models[0], database, config)
    log.info("%s; explained matches %.0f%%", result.summary(), 100 * result.explained_matches)
    for problem in (*result.reasons, *result.notes):
        log.warning("model check: %s", problem)
    return result


def _choose_model(
    database: Path, image_dir: Path, out_dir: Path, config: SfmConfig, matcher: str, usable: int, watch: Stopwatch,
    attempts: list[Attempt], first: Candidate,
) -> Candidate:
    """The mapper policy: with ``auto``, also run the incremental mapper when the first model fails its check or the
    set is small, and keep the model the evidence supports (``Candidate.rank``)."""
    candidates = [first]
    failed = first.check is None or not first.check.consistent
    small = usable <= config.both_mappers_max_images
    second_opinion = (config.mapper == "auto" and first.attempt.mapper == "global" and bool(first.models)
                      and len(attempts) == 1)  # a retry round has already run the incremental mapper
    if second_opinion and (failed or small):
        why = "the global model failed its check" if failed else f"{usable} images: both mappers are cheap"
        log.info("running the incremental mapper too (%s)", why)
        with watch("colmap:map_incremental"), pycolmap_errors("mapping"):
            attempt, models = map_images(database, image_dir, out_dir / "_map", config, matcher, "incremental")
        attempts.append(attempt)
        candidates.append(Candidate(attempt, models, _check(attempt, models, database, config, watch)))
    chosen = max(candidates, key=lambda c: c.rank(usable, config))
    if len(candidates) == 1:
        chosen.why = f"mapper {config.mapper}" if config.mapper != "auto" else "the global model passed its check"
    else:
        others = [c for c in candidates if c is not chosen]
        chosen.why = "; ".join(
            f"kept {chosen.attempt.mapper} ({_describe(chosen, usable)}) over {other.attempt.mapper} "
            f"({_describe(other, usable)})" for other in others
        )
    log.info("SfM model: %s", chosen.why)
    return chosen


def _describe(candidate: Candidate, usable: int) -> str:
    registered = candidate.models[0].num_reg_images() if candidate.models else 0
    if candidate.check is None:
        return f"{registered}/{usable} registered, not checked"
    verdict = "consistent" if candidate.check.consistent else "inconsistent"
    return (f"{registered}/{usable} registered, {verdict}, {candidate.check.pairs_agreeing}/"
            f"{candidate.check.pairs_checked} pairs agree")


def _retry(
    database: Path, image_dir: Path, out_dir: Path, config: SfmConfig, matcher: str, usable: int, watch: Stopwatch,
    attempts: list[Attempt], models: list[pycolmap.Reconstruction],
) -> tuple[Attempt, list[pycolmap.Reconstruction]]:
    """One retry round: exhaustive matching (if it was not), then the other mapper, then relaxed incremental.

    Registration of a marginal set varies from run to run (RANSAC in the verification changes a few inliers;
    docs/method.md §13). Measured on the 640 px lund copies: a database on which incremental mapping registered 2 of 29
    images gave 29/29 with global mapping (GLOMAP, 1.3 s) and 21+2 with relaxed incremental thresholds.
    """
    best = attempts[0]
    if read_match_stats(database).overlapping_pairs == 0:
        log.warning("no image pair overlaps at all; a retry cannot help, so none is made")
        return best, models
    other = "global" if attempts[0].mapper == "incremental" else "incremental"
    log.warning("only %d of %d images registered; retrying once: exhaustive matching, %s mapping, relaxed "
                "incremental mapping", models[0].num_reg_images() if models else 0, usable, other)
    if matcher != "exhaustive":
        with watch("colmap:match_retry"), pycolmap_errors("matching"):
            match_pairs(database, "exhaustive", config)
    for mapper in (other, "incremental-relaxed"):
        with watch(f"colmap:map_{mapper}"), pycolmap_errors("mapping"):
            attempt, found = map_images(database, image_dir, out_dir / "_map", config, "exhaustive", mapper)
        attempts.append(attempt)
        if _fraction(found, usable) > _fraction(models, usable):
            best, models = attempt, found
        if _fraction(models, usable) >= config.min_registered_fraction:
            break
    return best, models


def choose_matcher(names: list[str], config: SfmConfig) -> tuple[str, str]:
    """The matcher to use and why (``auto``: exhaustive for small sets, sequential for large ordered ones)."""
    if config.matcher != "auto":
        return config.matcher, "set in the configuration"
    if len(names) <= config.exhaustive_max_images:
        return "exhaustive", f"{len(names)} images <= {config.exhaustive_max_images}"
    if looks_sequential(names):
        return "sequential", f"{len(names)} images named like an ordered sequence"
    return "exhaustive", f"{len(names)} images, but their names do not look ordered (slow: all pairs are matched)"


def _check_config(config: SfmConfig) -> None:
    """What the config cannot check by itself: files it names must exist when SfM runs."""
    if config.vocab_tree_path is not None and not Path(config.vocab_tree_path).is_file():
        raise InputError(f"the vocabulary tree file {config.vocab_tree_path} does not exist")


def _check_enough_images(scan: ImageScan, image_dir: Path) -> None:
    usable = len(scan.images)
    if usable >= MIN_IMAGES:
        return
    details = []
    if scan.duplicates and usable <= 1:
        details.append(f"{len(scan.duplicates)} of the files are byte-identical copies of another")
    if scan.unreadable:
        bad = "; ".join(f"{name}: {why}" for name, why in list(scan.unreadable.items())[:5])
        details.append(f"{len(scan.unreadable)} could not be used ({bad})")
    if scan.ignored:
        details.append(f"{len(scan.ignored)} files are not images by extension (e.g. {scan.ignored[0]})")
    detail = f" ({'; '.join(details)})" if details else ""
    raise SfmFailure(
        f"{image_dir} holds {usable} usable image(s){detail}; SfM needs at least {MIN_IMAGES} distinct, overlapping "
        "photos taken from different positions (a few dozen for a reliable model). Add photos and run again.",
        {"images_found": scan.num_files, "usable": usable, "unreadable": scan.unreadable,
         "duplicates": scan.duplicates},
    )


def _note_downscaling(scan: ImageScan, config: SfmConfig) -> int:
    if config.max_image_size <= 0:
        return 0
    large = [info for info in scan.images if max(info.width, info.height) > config.max_image_size]
    if large:
        log.info(
            "%d of %d images are larger than %d px on the long side (e.g. %s, %dx%d); SIFT runs on them downscaled "
            "to %d px to bound memory (keypoints and cameras stay in full-resolution pixels)",
            len(large), len(scan.images), config.max_image_size, large[0].name, large[0].width, large[0].height,
            config.max_image_size,
        )
    return len(large)


def _fraction(models: list[pycolmap.Reconstruction], usable: int) -> float:
    return models[0].num_reg_images() / max(1, usable) if models else 0.0


def _stepper(progress: Progress | None, total: int) -> Callable[..., None]:
    count = [0]

    def step(stage: str, **metrics: Any) -> None:
        count[0] += 1
        if progress is not None:
            progress(min(count[0], total), total, {"stage": stage, **metrics})

    return step


def _finish(
    out_dir: Path, scan: ImageScan, config: SfmConfig, matcher: str, reason: str, choice: Candidate,
    attempts: list[Attempt], retries: int, downscaled: int, database: Path, watch: Stopwatch, points_mapped: int,
) -> SfmResult:
    """Judge the chosen model, then write it and the report (report last); raise ``SfmFailure`` otherwise."""
    attempt, models, check = choice.attempt, choice.models, choice.check
    with watch("write"):
        best = models[0] if models else None
        registered = sorted(best.image(i).name for i in best.reg_image_ids()) if best else []
        unregistered = sorted({info.name for info in scan.images} - set(registered))
        usable = len(scan.images) + len(scan.unreadable)
        fraction = len(registered) / max(1, usable)
        report_base = {
            "images_found": scan.num_files, "registered": registered, "unregistered": unregistered,
            "unreadable": scan.unreadable, "duplicates": scan.duplicates, "registered_fraction": fraction,
            "matcher": matcher, "attempts": [asdict(a) for a in attempts], "config": config.to_dict(),
        }
        if best is None or fraction < config.min_registered_fraction:
            stats = read_match_stats(database)
            message = explain_failure(
                num_used=len(scan.images), registered=registered, unregistered=unregistered,
                model_sizes=list(attempt.model_sizes), stats=stats, threshold=config.min_registered_fraction,
                unreadable=scan.unreadable,
            )
            raise SfmFailure(message, {**report_base, "match_stats": stats.to_dict()})
        if check is not None and not check.consistent:
            message = explain_inconsistency(check, [a.mapper for a in attempts])
            if config.require_consistent:
                raise SfmFailure(message, {**report_base, "check": check.to_dict()})
            log.warning("%s (kept anyway: require_consistent is off)", message)
        if len(models) > 1:
            log.warning("COLMAP found %d models (%s registered images); keeping the largest", len(models),
                        ", ".join(str(s) for s in attempt.model_sizes))
        model_dir = out_dir / MODEL_DIR
        model_dir.mkdir(parents=True, exist_ok=True)
        best.write(str(model_dir))
        cameras = list(best.cameras.values())
    result = SfmResult(
        out_dir=out_dir, model_dir=model_dir, database_path=database, images_found=scan.num_files,
        registered=tuple(registered), unregistered=tuple(unregistered), unreadable=dict(scan.unreadable),
        duplicates=dict(scan.duplicates), registered_fraction=fraction, matcher=matcher, matcher_reason=reason, mapper=attempt.mapper,
        retries=retries, attempts=tuple(attempts), models_found=attempt.model_sizes,
        num_cameras=len(cameras), camera_model=config.camera_model,
        focal_from_exif=sum(bool(c.has_prior_focal_length) for c in cameras), downscaled_for_sift=downscaled,
        num_points=int(best.num_points3D()), mean_reprojection_error=float(best.compute_mean_reprojection_error()),
        mean_track_length=float(best.compute_mean_track_length()),
        mean_observations_per_image=float(best.compute_mean_observations_per_reg_image()),
        timings=tuple(watch.rows), config=config.to_dict(), points_mapped=points_mapped,
        check=None if check is None else check.to_dict(), mapper_reason=choice.why,
    )
    write_text_atomic(out_dir / SFM_REPORT_FILE, json.dumps(result.to_dict(), indent=1))
    log.info("SfM registered %d/%d images (%.0f%%), %d points, %.2f px mean reprojection error",
             len(registered), usable, 100 * fraction, result.num_points, result.mean_reprojection_error)
    return result


def load_sfm_result(sfm_dir: Path) -> dict[str, Any]:
    """The ``sfm_report.json`` of a finished SfM folder (raises ``InputError`` when the folder is incomplete)."""
    path = Path(sfm_dir) / SFM_REPORT_FILE
    if not path.is_file() or not (Path(sfm_dir) / MODEL_DIR).is_dir():
        raise InputError(f"{sfm_dir} is not a finished SfM folder (no {SFM_REPORT_FILE}); run run_sfm first")
    return json.loads(path.read_text(encoding="utf-8"))


__all__ = ["Attempt", "SfmFailure", "SfmResult", "choose_matcher", "load_sfm_result", "run_sfm"]
