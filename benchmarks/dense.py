"""Dense-stage benchmark: quality of the fused cloud, coverage of the photos, time and memory against SfM's.

``python benchmarks/dense.py synthetic WORK_DIR [--preset small] [--json PATH] [-o FIELD=VALUE ...]``
    Generates the synthetic set (if absent), runs SfM with the dense stage off (if absent), then the dense stage, and
    scores the fused cloud and the SfM cloud against the generator's dense surface (ETH3D-style accuracy,
    completeness and F-score at τ = 0.5 % and 1 % of the scene extent; ``adop.dense.quality``). Prints the dense
    stage's wall time next to the SfM stage's, points per image, coverage per photo and peak memory.

``python benchmarks/dense.py real IMAGES_DIR WORK_DIR [--json PATH] [-o FIELD=VALUE ...]``
    The same without ground truth (e.g. ``tests/data/lund/images``): time, memory, points, coverage.

``python benchmarks/dense.py preprocess --points 1000000 [--points 10000000] [--json PATH]``
    The scene stage's cleanup (open3d outliers and normals) and ADOP's preprocessing (duplicates, Morton order,
    drop-out radius) on a dense-sized cloud (points on a few noisy planes, normals given), each size in a fresh child
    process so that its peak memory is its own: wall seconds per step and peak resident memory.

``python benchmarks/dense.py sweep-time --sizes 1600x1200 3200x2400 [--device cuda] [--json PATH]``
    Seconds per depth map of the plane sweep alone (one reference, ``neighbours`` sources, random photos: the cost does
    not depend on what the photos show) at each size, on the CPU or a CUDA device; the figure to set against
    COLMAP PatchMatch's cost per image at the same size.

``-o`` overrides ``DenseConfig`` fields (``-o depth_planes=96``). Public API only.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import torch


def _meta() -> dict:
    commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=False,
                            cwd=Path(__file__).parent).stdout.strip()
    return {"commit": commit, "torch": torch.__version__, "threads": torch.get_num_threads(),
            "python": platform.python_version(), "cpus": os.cpu_count(), "load_avg": os.getloadavg()}


def _config(overrides: list[str]):
    from adop.dense import DenseConfig

    defaults = DenseConfig()
    fields = {}
    for item in overrides:
        name, value = item.split("=", 1)
        fields[name] = type(getattr(defaults, name))(value)
    return defaults.replace(**fields)


def _sfm(images: Path, work: Path) -> Path:
    from adop.dense import DenseConfig
    from adop.reconstruct import reconstruct

    scene = work / "sfm_scene"
    if not (scene / "scene.json").is_file():
        reconstruct(images, scene, dense_config=DenseConfig(method="off"))
    return scene


def _dense(scene: Path, images: Path, work: Path, config) -> tuple[dict, Path]:
    from adop.reconstruct.dense import run_dense

    out = work / "dense"
    started = time.perf_counter()
    report = run_dense(scene / "sfm", images, out, config, cache_dir=work / "dense_cache" / str(time.time_ns()))
    wall = time.perf_counter() - started
    sfm_report = json.loads((scene / "sfm" / "sfm_report.json").read_text())
    per_view = list(report.points_per_view.values())
    record = {
        "config": config.to_dict(), "device": report.device, "map_size": report.map_size,
        "views": report.views, "views_used": report.views_used, "skipped": report.skipped,
        "points": report.points, "points_before_merge": report.points_before_merge,
        "points_per_image_median": float(np.median(per_view)) if per_view else 0.0,
        "coverage_median": report.median_coverage,
        "coverage_min": min(report.coverage.values(), default=0.0),
        "depth_coverage_median": float(np.median(list(report.depth_coverage.values()) or [0.0])),
        "dense_wall_s": round(wall, 2), "dense_seconds": report.seconds, "peak_memory_mb": report.peak_memory_mb,
        "sfm_wall_s": round(sfm_report["total_seconds"], 2), "sfm_points": sfm_report["num_points"],
        "fallback": report.fallback, "warnings": report.warnings[:20],
    }
    return record, out


def synthetic(work: Path, preset: str, config) -> dict:
    from adop.dense import load_dense_result
    from adop.dense.quality import align_to_truth, scene_extent, surface_scores, visible_samples
    from adop.reconstruct.dense import load_sfm_views
    from adop.scene import load_scene
    from adop.synth import generate_capture_set

    capture = work / preset
    if not (capture / "images").is_dir():
        generate_capture_set(capture, preset=preset, seed=0)
    scene = _sfm(capture / "images", work)
    record, dense_dir = _dense(scene, capture / "images", work, config)
    truth = load_scene(capture / "ground_truth" / "scene")
    estimated, _ = load_sfm_views(scene / "sfm", capture / "images")
    samples = truth.points.positions
    visible = visible_samples(samples, truth)
    extent = scene_extent(samples)
    _, cloud = load_dense_result(dense_dir)
    for name, points in (("dense", None if cloud is None else cloud.positions),
                         ("sfm", estimated.points.positions)):
        if points is None:
            continue
        aligned = align_to_truth(points, estimated, truth)
        record[f"{name}_scores"] = [s.to_dict() for s in surface_scores(aligned, samples, visible, extent)]
    record["preset"] = preset
    return record


def real(images: Path, work: Path, config) -> dict:
    scene = _sfm(images.resolve(), work)
    record, _ = _dense(scene, images.resolve(), work, config)
    record["images"] = str(images)
    return record


def _preprocess_one(count: int) -> dict:
    """Cleanup + preprocessing of ``count`` points (run in a child process by ``preprocess``)."""
    import resource

    from adop.reconstruct.cleanup import clean_points
    from adop.reconstruct.config import CleanupConfig
    from adop.reconstruct.preprocess import preprocess_points
    from adop.scene.types import PointCloud

    rng = np.random.default_rng(0)
    plane = rng.integers(0, 3, count)
    positions = rng.uniform(-5, 5, (count, 3))
    positions[np.arange(count), plane] = rng.normal(0, 0.005, count) + plane.astype(float)  # three noisy planes
    views = np.zeros((count, 3))
    views[np.arange(count), plane] = 1.0
    cloud = PointCloud(positions, colors=rng.integers(0, 255, (count, 3)).astype(np.uint8))
    config = CleanupConfig()
    record: dict = {"points": count}
    started = time.perf_counter()
    cleaned, _ = clean_points(cloud, views, config)
    record["cleanup_s"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    done, stats = preprocess_points(cleaned, np.array([[0.0, 0.0, 20.0]]), duplicate_tolerance=1e-5,
                                    lonely_ratio=0.0, point_factor=1, seed=0)
    record["preprocess_s"] = round(time.perf_counter() - started, 2)
    record["points_out"] = stats.points_out
    record["peak_memory_mb"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    return record


def sweep_time(sizes: list[str], device: str, config, repeats: int = 3) -> dict:
    from adop.dense.sweep import plane_sweep
    from adop.dense.views import StereoView

    rows = []
    for size in sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        focal = 1.2 * max(width, height)
        intrinsics = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1.0]])
        views = [StereoView(i, f"v{i}", intrinsics, np.eye(3), np.array([-0.1 * i, 0.0, 0.0]), width, height)
                 for i in range(config.neighbours + 1)]
        generator = torch.Generator().manual_seed(0)
        photos = [torch.rand(3, height, width, generator=generator).to(device) for _ in views]
        times = []
        for _ in range(repeats):
            if device == "cuda":
                torch.cuda.synchronize()
            started = time.perf_counter()
            with torch.no_grad():
                plane_sweep(photos[0], views[0], list(zip(photos[1:], views[1:])), 2.0, 20.0, config)
            if device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - started)
        rows.append({"size": size, "device": device, "seconds_per_map": round(float(np.median(times[1:] or times)), 3),
                     "first_s": round(times[0], 3), "sources": config.neighbours, "planes": config.depth_planes})
        print(rows[-1], flush=True)
    return {"rows": rows, "config": config.to_dict()}


def preprocess(counts: list[int]) -> dict:
    rows = []
    for count in counts:
        done = subprocess.run([sys.executable, __file__, "_preprocess_one", str(count)], capture_output=True,
                              text=True, check=True)
        rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(rows[-1], flush=True)
    return {"rows": rows}


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "_preprocess_one":
        torch.set_num_threads(2)
        print(json.dumps(_preprocess_one(int(sys.argv[2]))))
        return
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="mode", required=True)
    syn = sub.add_parser("synthetic")
    syn.add_argument("work", type=Path)
    syn.add_argument("--preset", default="small")
    rl = sub.add_parser("real")
    rl.add_argument("images", type=Path)
    rl.add_argument("work", type=Path)
    pre = sub.add_parser("preprocess")
    pre.add_argument("--points", type=int, action="append", required=True)
    st = sub.add_parser("sweep-time")
    st.add_argument("--sizes", nargs="+", default=["1600x1200"])
    st.add_argument("--device", default="cpu")
    for p in (syn, rl, pre, st):
        p.add_argument("--json", type=Path, default=None)
        p.add_argument("-o", "--override", action="append", default=[])
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    config = _config(args.override)
    if args.mode == "preprocess":
        record = preprocess(args.points)
    elif args.mode == "sweep-time":
        record = sweep_time(args.sizes, args.device, config)
    elif args.mode == "synthetic":
        args.work.mkdir(parents=True, exist_ok=True)
        record = synthetic(args.work, args.preset, config)
    else:
        args.work.mkdir(parents=True, exist_ok=True)
        record = real(args.images, args.work, config)
    record["meta"] = _meta()
    text = json.dumps(record, indent=1, default=str)
    print(text)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(text)


if __name__ == "__main__":
    main()
