"""The dense stage: per-view depth maps (cached one file per view), fusion, and the report.

``densify`` runs our plane sweep (``adop.dense.sweep``) over every view that has source views and a depth range, then
fuses the maps (``adop.dense.fusion``) and writes::

    fused.ply            # positions, normals (facing the cameras) and colours; absent when nothing could be fused
    dense_report.json    # method, device, views used and skipped (with why), points, coverage, time, memory

A view without usable source views or without SfM points is skipped with a warning, and the stage goes on; when no
view is left, or fusion keeps nothing, the report says so (``fallback``) and the scene keeps the SfM points.
Depth maps go to ``cache_dir``, each under a key of what it depends on (its view, its sources, their cameras and
poses, the depth range, the parameters), with its checksum beside it: a killed run resumes with the finished views, and a
damaged file is noticed and computed again.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import resource
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from adop.dense.config import DenseConfig
from adop.dense.fusion import fuse_depth_maps
from adop.dense.sweep import DepthMap, plane_sweep
from adop.dense.views import (
    PlaneFamily,
    StereoView,
    choose_sources,
    depth_range,
    facade_planes,
    ground_planes,
    load_view_image,
    stereo_view,
)
from adop.scene.ply import write_ply
from adop.scene.types import PointCloud, Scene
from adop.storage import atomic_path, sha256_file, write_json_atomic

log = logging.getLogger(__name__)

FUSED_FILE = "fused.ply"
REPORT_FILE = "dense_report.json"
_MAP_VERSION = 2
"""Bumped when the depth-map computation changes, so cached maps of an older computation are not reused."""


@dataclass
class DenseReport:
    """What the dense stage did (``dense_report.json``)."""

    method: str
    device: str
    map_size: str
    """Largest depth-map size, ``W×H``."""
    views: int
    views_used: int
    skipped: dict[str, str] = field(default_factory=dict)
    """Views without a depth map, and why."""
    maps_reused: int = 0
    maps_recomputed_damaged: int = 0
    points: int = 0
    points_before_merge: int = 0
    points_per_view: dict[str, int] = field(default_factory=dict)
    coverage: dict[str, float] = field(default_factory=dict)
    """Per photo, the fraction of its (depth-map) pixels that receive a fused point."""
    depth_coverage: dict[str, float] = field(default_factory=dict)
    """Per photo, the fraction of its pixels with a trusted depth before fusion."""
    seconds: dict[str, float] = field(default_factory=dict)
    peak_memory_mb: dict[str, float] = field(default_factory=dict)
    """Peak resident memory of the process (and of the CUDA device) at the end of each step."""
    fallback: bool = False
    """True when no dense cloud came out and the scene keeps the SfM points."""
    warnings: list[str] = field(default_factory=list)
    config: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def median_coverage(self) -> float:
        return float(np.median(list(self.coverage.values()))) if self.coverage else 0.0


def pick_device(config: DenseConfig) -> str:
    """``cuda`` or ``cpu`` for the plane sweep, as ``config.device`` asks and the machine allows."""
    if config.device == "cpu":
        return "cpu"
    if torch.cuda.is_available():
        return "cuda"
    if config.device == "cuda":
        log.warning("dense: CUDA was asked for but torch sees no GPU; the plane sweep runs on the CPU")
    return "cpu"


def peak_memory(device: str) -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0
    if device == "cuda":
        peak = max(peak, torch.cuda.max_memory_allocated() / 2**20)
    return round(peak, 1)


def _map_key(scene: Scene, view: StereoView, sources: list[StereoView], near: float, far: float,
             config: DenseConfig, families: list[PlaneFamily]) -> str:
    """Everything a depth map depends on but the photos' content, hashed."""
    def describe(v: StereoView) -> list:
        distortion = scene.cameras[scene.frames[v.index].camera_index].distortion
        return [v.name, v.width, v.height, np.round(v.intrinsics, 9).tolist(), np.round(distortion, 12).tolist(),
                np.round(v.rotation, 12).tolist(), np.round(v.translation, 12).tolist()]
    planes = [[np.round(f.normal, 12).tolist(), round(f.nearest, 9), round(f.farthest, 9), f.two_sided]
              for f in families] or None
    text = json.dumps([_MAP_VERSION, describe(view), [describe(s) for s in sources], round(near, 9), round(far, 9),
                       planes, config.depth_map_fields()], sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:24]


class DepthMapStore:
    """Depth maps on disk, one ``.npz`` per view with a ``.sha256`` beside it; a damaged file reads as missing."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.damaged = 0

    def _path(self, key: str) -> Path:
        return self.folder / f"{key}.npz"

    def load(self, key: str, size: tuple[int, int] | None = None) -> DepthMap | None:
        """The map stored under ``key`` (of ``size`` = ``(W, H)`` when given), or None when it is absent or damaged."""
        path, digest = self._path(key), self._path(key).with_suffix(".sha256")
        if not path.is_file() or not digest.is_file():
            return None
        try:
            if digest.read_text().strip() != sha256_file(path):
                raise ValueError("checksum mismatch")
            with np.load(path, allow_pickle=False) as data:
                loaded = DepthMap(data["depth"], data["normal"], data["score"], data["color"])
            shape = loaded.depth.shape if size is None else (size[1], size[0])
            if (loaded.depth.shape != shape or loaded.normal.shape != (*shape, 3) or loaded.score.shape != shape
                    or loaded.color is None or loaded.color.shape != (*shape, 3)):
                raise ValueError("its arrays do not have the view's size")
            return loaded
        except (OSError, ValueError, KeyError) as error:
            self.damaged += 1
            log.warning("dense: cached depth map %s is damaged (%s); computing it again", path.name, error)
            return None

    def save(self, key: str, depth_map: DepthMap) -> None:
        path = self._path(key)
        with atomic_path(path) as partial:
            with open(partial, "wb") as handle:
                np.savez_compressed(handle, depth=depth_map.depth.astype(np.float32),
                                    normal=depth_map.normal.astype(np.float16), score=depth_map.score.astype(np.float16),
                                    color=depth_map.color)
        with atomic_path(path.with_suffix(".sha256")) as partial:
            partial.write_text(sha256_file(path) + "\n")


def densify(scene: Scene, visibility: list[np.ndarray], image_dir: Path, out_dir: Path, config: DenseConfig,
            *, cache_dir: Path, up: np.ndarray | None = None) -> DenseReport:
    """Depth maps for every usable view, fused into ``out_dir/fused.ply``; returns (and writes) the report.

    Args:
        scene: the SfM scene (cameras, poses, sparse points).
        visibility: per frame, the indices of the sparse points it observes (SfM tracks).
        image_dir: the photos.
        out_dir: where ``fused.ply`` and ``dense_report.json`` go.
        config: parameters.
        up: the world's up direction; with ``config.ground_planes`` / ``config.facade_planes`` planes parallel to the
            ground / to the facades are swept too.
        cache_dir: where depth maps are kept between runs. A map's key covers the views' names, cameras and poses
            and the parameters, not the photos' content: the folder must belong to one capture (the pipeline uses
            the stage's run folder, whose key covers the photos).
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(config)
    long_side = config.image_size_for(device)
    views = {i: stereo_view(scene, i, long_side) for i in range(len(scene.frames))}
    largest = max(views.values(), key=lambda v: v.width * v.height, default=None)
    report = DenseReport(method="ours", device=device, views=len(views), views_used=0,
                         map_size="0×0" if largest is None else f"{largest.width}×{largest.height}",
                         config=config.to_dict())
    started = time.perf_counter()
    sources = choose_sources(scene, visibility, max(config.neighbours, config.fusion_neighbours),
                             min_shared=config.min_shared_points, min_angle_deg=config.min_triangulation_angle,
                             max_angle_deg=config.max_triangulation_angle)
    store = DepthMapStore(cache_dir)

    @functools.lru_cache(maxsize=12)  # the few undistorted photos the current views need, on the sweep's device
    def photo(index: int) -> torch.Tensor:
        return load_view_image(scene, views[index], Path(image_dir)).to(device)

    keys: dict[int, str] = {}
    for index, view in views.items():
        stereo_sources = [views[s] for s in sources[index][:config.neighbours]]
        if not stereo_sources:
            report.skipped[view.name] = ("no other view shares enough SfM points with enough parallax "
                                         f"(at least {config.min_shared_points} seen {config.min_triangulation_angle}–"
                                         f"{config.max_triangulation_angle}° apart)")
            continue
        span = depth_range(scene, index, visibility[index], config.depth_margin)
        if span is None:
            report.skipped[view.name] = "it observes fewer than 5 SfM points, so its depth range is unknown"
            continue
        families = _plane_families(scene, index, visibility[index], up, config)
        key = keys[index] = _map_key(scene, view, stereo_sources, *span, config, families)
        depth_map = store.load(key, (view.width, view.height))
        if depth_map is not None:
            report.maps_reused += 1
        else:
            depth_map = _compute(view, stereo_sources, span, photo, config, families)
            store.save(key, depth_map)
            log.info("dense: %s: %.0f %% of pixels with depth (%d sources, depths %.3g–%.3g)", view.name,
                     100 * depth_map.coverage, len(stereo_sources), *span)
        report.depth_coverage[view.name] = round(depth_map.coverage, 4)
    photo.cache_clear()
    report.maps_recomputed_damaged = store.damaged
    for index in keys:
        agreeing = [s for s in sources[index][:config.fusion_neighbours] if s in keys]
        if len(agreeing) < config.min_consistent:
            report.warnings.append(f"view {views[index].name} has {len(agreeing)} fusion neighbour(s) with depth "
                                   f"maps, fewer than min_consistent={config.min_consistent}: it adds no points")
    for name, reason in report.skipped.items():
        report.warnings.append(f"view {name} skipped: {reason}")
        log.warning("dense: view %s skipped: %s", name, reason)
    report.seconds["depth_maps"] = round(time.perf_counter() - started, 2)
    report.peak_memory_mb["depth_maps"] = peak_memory(device)

    started = time.perf_counter()
    used_views = {i: views[i] for i in keys}
    damaged_before = store.damaged

    def load(index: int) -> DepthMap | None:  # lazily: fusion holds only a view's neighbourhood in memory
        return store.load(keys[index], (views[index].width, views[index].height))

    cloud, stats = fuse_depth_maps(used_views, load, {i: [s for s in sources[i][:config.fusion_neighbours]
                                                          if s in keys] for i in keys}, config)
    if store.damaged > damaged_before:
        report.warnings.append(f"{store.damaged - damaged_before} depth map(s) were damaged after they were "
                               "written (disk or another process) and were left out of the fusion")
    report.views_used = len(keys)
    report.points = len(cloud)
    report.points_before_merge = stats.points_fused
    report.points_per_view = stats.points_per_view
    report.seconds["fusion"] = round(time.perf_counter() - started, 2)
    report.peak_memory_mb["fusion"] = peak_memory(device)
    started = time.perf_counter()
    report.coverage = coverage(cloud, views)
    report.seconds["coverage"] = round(time.perf_counter() - started, 2)
    finish(report, cloud, out_dir)
    return report


def _plane_families(scene: Scene, index: int, visible: np.ndarray, up: np.ndarray | None,
                    config: DenseConfig) -> list[PlaneFamily]:
    """The plane families ``config`` asks for that frame ``index``'s SfM points can place (none without ``up``)."""
    if up is None:
        return []
    wanted = [(config.ground_planes, ground_planes), (config.facade_planes, facade_planes)]
    families = [make(scene, index, visible, up, config.depth_margin) for on, make in wanted if on]
    return [family for family in families if family is not None]


def _compute(view: StereoView, stereo_sources: list[StereoView], span: tuple[float, float],
             photo: Callable[[int], torch.Tensor], config: DenseConfig, families: list[PlaneFamily]) -> DepthMap:
    reference = photo(view.index)
    with torch.no_grad():
        depth_map = plane_sweep(reference, view, [(photo(s.index), s) for s in stereo_sources], *span, config,
                                families)
    depth_map.color = (reference.permute(1, 2, 0).cpu().numpy() * 255).round().clip(0, 255).astype(np.uint8)
    return depth_map


def coverage(cloud: PointCloud, views: dict[int, StereoView]) -> dict[str, float]:
    """Per view, the fraction of its pixels that at least one point projects into (occlusion not considered)."""
    positions = torch.from_numpy(cloud.positions.astype(np.float32))
    result = {}
    for view in views.values():
        projection = torch.from_numpy(view.projection.astype(np.float32))
        image = torch.addmm(projection[:, 3], positions, projection[:, :3].T)
        z = image[:, 2]
        front = z > 1e-6
        px = torch.floor(image[front, 0] / z[front]).long()
        py = torch.floor(image[front, 1] / z[front]).long()
        inside = (px >= 0) & (px < view.width) & (py >= 0) & (py < view.height)
        hit = torch.zeros(view.width * view.height, dtype=torch.bool)
        hit[py[inside] * view.width + px[inside]] = True
        result[view.name] = round(float(hit.float().mean()), 4)
    return result


def finish(report: DenseReport, cloud: PointCloud, out_dir: Path, *, min_points: int = 100) -> None:
    """Write ``fused.ply`` (when there is a cloud worth keeping) and the report, fallback marked and explained."""
    if len(cloud) < min_points:
        report.fallback = True
        reason = ("no view had source views and a depth range" if report.views_used == 0 else
                  f"fusion kept {len(cloud)} points (fewer than {min_points}: the views do not agree)")
        report.warnings.append(f"no dense cloud: {reason}; the scene keeps the SfM points")
        log.warning("dense: no dense cloud (%s); the scene keeps the SfM points", reason)
    else:
        write_ply(out_dir / FUSED_FILE, cloud, position_dtype="f4")
    write_json_atomic(out_dir / REPORT_FILE, report.to_dict())


def load_dense_result(dense_dir: Path) -> tuple[DenseReport, PointCloud | None]:
    """A dense folder's report and cloud (None when it has none: ``off`` or a fallback)."""
    from adop.scene.ply import read_ply

    data = json.loads((Path(dense_dir) / REPORT_FILE).read_text(encoding="utf-8"))
    report = DenseReport(**data)
    fused = Path(dense_dir) / FUSED_FILE
    return report, (read_ply(fused) if fused.is_file() else None)
