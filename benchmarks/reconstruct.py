"""Benchmark of the reconstruction stage: SfM stage times, cleanup time, accuracy, and our overhead over bare pycolmap.

Usage (from the repository root)::

    PYTHONPATH=. .venv/bin/python benchmarks/reconstruct.py \\
        --set small=/tmp/small/images --truth small=/tmp/small/ground_truth/scene \\
        --set herzjesu=tests/data/herzjesu_p8/images --truth herzjesu=tests/data/herzjesu_p8/cameras \\
        --set lund=tests/data/lund/images --out /tmp/bench-reconstruct

A set's images can be generated first with ``--generate small=/tmp/small`` (``adop.synth``, preset = the name).
For each set it runs (1) bare pycolmap (extract, exhaustive match, incremental mapping, the options ``run_sfm`` uses)
and (2) ``adop.reconstruct.reconstruct``; it prints each stage's wall and CPU time, the registered fraction, points,
reprojection error, the accuracy against ground truth where given, and two overhead figures:

* inside ``run_sfm``: time not spent in pycolmap calls (scan, checks, writing) over time spent in them — immune to
  run-to-run noise, which is up to 2x on a shared machine;
* end to end: ``run_sfm`` wall time over the bare run's wall time, minus 1, and the same with process CPU time of the
  first attempt (retries are extra work, not overhead).

Results go to ``OUT/reconstruct_benchmark.json`` with versions and the machine. Imported by nothing.
"""

from __future__ import annotations

import zlib  # noqa: F401  (load zlib before pycolmap; see adop/scene/colmap.py)
import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

import numpy as np
import open3d
import pycolmap

from adop.reconstruct import CleanupConfig, SfmConfig, reconstruct
from adop.reconstruct.accuracy import pose_accuracy
from adop.scene import load_scene
from adop.scene.strecha import read_strecha_cameras


_RETRY_STAGES = ("_retry", "_global", "_incremental", "_incremental-relaxed")
_TRUST_STAGES = ("check_", "colmap:map_incremental")
"""What the model check and the mapper policy's second opinion add to the SfM stage."""


def _timed(rows: list[dict], stage: str, call, *args, **kwargs):  # type: ignore[no-untyped-def]
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(*args, **kwargs)
    rows.append({"stage": stage, "wall_s": time.perf_counter() - wall, "cpu_s": time.process_time() - cpu})
    return result


def bare_pycolmap(images: Path, work: Path, config: SfmConfig) -> dict:
    """The same three pycolmap calls ``run_sfm`` makes for a one-size set, with nothing around them."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    reader = pycolmap.ImageReaderOptions()
    reader.camera_model = config.camera_model
    extraction = pycolmap.FeatureExtractionOptions()
    extraction.num_threads, extraction.max_image_size = config.num_threads, config.max_image_size
    extraction.use_gpu = False
    extraction.sift.max_num_features = config.max_num_features
    matching = pycolmap.FeatureMatchingOptions()
    matching.num_threads, matching.use_gpu = config.num_threads, False
    verification = pycolmap.TwoViewGeometryOptions()
    verification.min_num_inliers = config.min_num_inliers
    if config.mapper in ("auto", "global"):  # auto starts with the global mapper
        mapping, mapper = pycolmap.GlobalPipelineOptions(), pycolmap.global_mapping
    else:
        mapping, mapper = pycolmap.IncrementalPipelineOptions(), pycolmap.incremental_mapping
    mapping.num_threads, mapping.random_seed = config.num_threads, config.seed
    pycolmap.set_random_seed(config.seed)
    rows: list[dict] = []
    database = str(work / "database.db")
    _timed(rows, "extract", pycolmap.extract_features, database, str(images), camera_mode=pycolmap.CameraMode.SINGLE,
           reader_options=reader, extraction_options=extraction, device=pycolmap.Device.cpu)
    _timed(rows, "match", pycolmap.match_exhaustive, database, matching_options=matching,
           verification_options=verification, device=pycolmap.Device.cpu)
    models = _timed(rows, "map", mapper, database, str(images), str(work / "sparse"), mapping)
    best = max(models.values(), key=lambda r: r.num_reg_images()) if models else None
    return {
        "timings": rows,
        "wall_s": sum(r["wall_s"] for r in rows),
        "cpu_s": sum(r["cpu_s"] for r in rows),
        "registered": best.num_reg_images() if best else 0,
        "points": best.num_points3D() if best else 0,
    }


def ours(images: Path, out: Path, config: SfmConfig) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    wall = time.perf_counter()
    report = reconstruct(images, out, config, CleanupConfig())
    total = time.perf_counter() - wall
    sfm = report.sfm
    inside = sfm["pycolmap_seconds"]
    return {
        "scene_dir": str(out),
        "sfm_timings": sfm["timings"],
        "scene_timings": [{"stage": t.stage, "wall_s": t.wall_s, "cpu_s": t.cpu_s} for t in report.timings],
        "run_sfm_wall_s": sfm["total_seconds"],
        "run_sfm_cpu_s": sum(t["cpu_s"] for t in sfm["timings"]),
        "first_attempt_cpu_s": sum(t["cpu_s"] for t in sfm["timings"] if not t["stage"].endswith(_RETRY_STAGES)),
        "mapper": sfm["mapper"],
        "mapper_reason": sfm["mapper_reason"],
        "check": sfm["check"],
        "trust_wall_s": sum(t["wall_s"] for t in sfm["timings"] if t["stage"].startswith(_TRUST_STAGES)),
        "pycolmap_wall_s": inside,
        "overhead_inside": (sfm["total_seconds"] - inside) / inside,
        "reconstruct_wall_s": total,
        "images": sfm["images_found"],
        "registered": len(sfm["registered"]),
        "registered_fraction": sfm["registered_fraction"],
        "points_sfm": sfm["num_points"],
        "points_final": report.points_final,
        "mean_reprojection_error": sfm["mean_reprojection_error"],
        "mean_track_length": sfm["mean_track_length"],
        "retries": sfm["retries"],
        "matcher": sfm["matcher"],
    }


def _pairs(values: list[str]) -> dict[str, Path]:
    return {name: Path(path) for name, path in (v.split("=", 1) for v in values)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", action="append", default=[], help="NAME=IMAGE_DIR (repeatable)")
    parser.add_argument("--truth", action="append", default=[],
                        help="NAME=GROUND_TRUTH: an adop scene folder, or a folder of Strecha *.camera files")
    parser.add_argument("--generate", action="append", default=[], help="PRESET=OUT: render a synthetic set first")
    parser.add_argument("--out", type=Path, default=Path("/tmp/bench-reconstruct"))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--mapper", choices=["auto", "global", "incremental"], default="auto")
    parser.add_argument("--skip-bare", action="store_true", help="do not run bare pycolmap (halves the time)")
    args = parser.parse_args()
    pycolmap.logging.minloglevel = 2
    sets, truths = _pairs(args.set), _pairs(args.truth)
    for preset, root in _pairs(args.generate).items():
        from adop.synth import generate_capture_set

        if not (root / "images").is_dir():
            generate_capture_set(root, preset=preset, seed=0)  # type: ignore[arg-type]
        sets.setdefault(preset, root / "images")
        truths.setdefault(preset, root / "ground_truth" / "scene")
    config = SfmConfig(num_threads=args.threads, mapper=args.mapper)
    results: dict[str, dict] = {}
    for name, images in sets.items():
        entry: dict = {"images_dir": str(images)}
        if not args.skip_bare:
            entry["bare"] = bare_pycolmap(images, args.out / name / "bare", config)
        entry["ours"] = ours(images, args.out / name / "scene", config)
        if "bare" in entry:
            entry["overhead_end_to_end"] = entry["ours"]["run_sfm_wall_s"] / entry["bare"]["wall_s"] - 1.0
            entry["overhead_cpu"] = entry["ours"]["first_attempt_cpu_s"] / entry["bare"]["cpu_s"] - 1.0
        if name in truths:
            truth = truths[name]
            known = read_strecha_cameras(truth) if any(truth.glob("*.camera")) else load_scene(truth)
            accuracy = pose_accuracy(load_scene(args.out / name / "scene"), known)
            entry["accuracy"] = accuracy.to_dict()
        results[name] = entry
        _print(name, entry)
    meta = {
        "pycolmap": pycolmap.__version__, "open3d": open3d.__version__, "numpy": np.__version__,
        "python": platform.python_version(), "machine": platform.machine(), "cpus": os.cpu_count(),
        "load_average": os.getloadavg(), "threads": args.threads,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "reconstruct_benchmark.json").write_text(json.dumps({"meta": meta, "sets": results}, indent=1))
    print(f"\nwritten {args.out / 'reconstruct_benchmark.json'}")


def _print(name: str, entry: dict) -> None:
    o = entry["ours"]
    print(f"\n== {name}: {o['registered']}/{o['images']} registered ({o['registered_fraction']:.0%}), "
          f"{o['points_sfm']} SfM points -> {o['points_final']} after cleanup, "
          f"{o['mean_reprojection_error']:.3f} px, track {o['mean_track_length']:.2f}, matcher {o['matcher']}, "
          f"mapper {o['mapper']}, retries {o['retries']}")
    print(f"   {'stage':<22}{'wall s':>9}{'cpu s':>9}")
    for row in o["sfm_timings"] + o["scene_timings"]:
        print(f"   {row['stage']:<22}{row['wall_s']:>9.2f}{row['cpu_s']:>9.2f}")
    c = o["check"]
    print(f"   check: {'consistent' if c['consistent'] else 'INCONSISTENT'}, {c['pairs_agreeing']}/{c['pairs_checked']} "
          f"pairs agree (median {c['median_disagreement_deg']:.2f} deg); {o['mapper_reason']}")
    print(f"   check + second mapper: {o['trust_wall_s']:.1f} s = {100 * o['trust_wall_s'] / o['run_sfm_wall_s']:.1f} % "
          f"of run_sfm ({100 * o['trust_wall_s'] / (o['run_sfm_wall_s'] - o['trust_wall_s']):.1f} % extra)")
    print(f"   reconstruct total {o['reconstruct_wall_s']:.1f} s; run_sfm {o['run_sfm_wall_s']:.1f} s, of which "
          f"pycolmap {o['pycolmap_wall_s']:.1f} s -> overhead inside run_sfm {100 * o['overhead_inside']:.2f} %")
    if "bare" in entry:
        b = entry["bare"]
        stages = ", ".join(f"{r['stage']} {r['wall_s']:.1f} s" for r in b["timings"])
        print(f"   bare pycolmap {b['wall_s']:.1f} s wall, {b['cpu_s']:.1f} s CPU ({stages}; {b['registered']} registered, "
              f"{b['points']} points)")
        print(f"   ours vs bare: wall {100 * entry['overhead_end_to_end']:+.1f} % (whole run_sfm incl. any retry; wall "
              f"noise on a shared box), CPU {100 * entry['overhead_cpu']:+.1f} % (first attempt: "
              f"{o['first_attempt_cpu_s']:.1f} s vs {b['cpu_s']:.1f} s)")
    if "accuracy" in entry:
        a = entry["accuracy"]
        print(f"   accuracy: {a['frames_compared']}/{a['frames_true']} frames, rotation median "
              f"{a['median_rotation_deg']:.3f} deg (max {a['max_rotation_deg']:.3f}), centre median "
              f"{a['median_center_error']:.4f} = {100 * a['median_center_error_relative']:.3f} % of the scene extent "
              f"{a['scene_extent']:.1f} ({100 * a['median_center_error'] / a['camera_extent']:.3f} % of the camera "
              f"extent), focal ratio {a['focal_ratio']:.4f}")
        print(f"   pairwise rotation error: median {a['median_pairwise_rotation_deg']:.3f} deg, p90 "
              f"{a['p90_pairwise_rotation_deg']:.3f} deg; focal error {100 * abs(a['focal_ratio'] - 1):.2f} %; "
              f"mapper kept: {o['mapper']}")


if __name__ == "__main__":
    main()
