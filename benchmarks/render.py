"""Render throughput of a trained model: frames per second at given sizes, split into network and file writing.

    python benchmarks/render.py RUN_DIR [--sizes 640x480 1920x1080] [--frames 8] [--json out.json]

RUN_DIR is a training run (or a ``train`` artifact) holding ``model/``. Frames follow an orbit around the scene, as
the pipeline's default fly-through does; EXR (half, PIZ) and PNG are written to a temporary folder.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from adop.deliver.exr import write_exr
from adop.images import write_png
from adop.paths import orbit_path
from adop.scene import load_scene
from adop.model import load_trained_model


def _orbit(model, width: int, height: int, frames: int):
    scene = load_scene(model.scene_dir)
    rotations = np.array([f.rotation for f in scene.frames])
    translations = np.array([f.translation for f in scene.frames])
    camera = model.cameras[0]
    focal = float(camera.intrinsics[0]) * width / camera.width
    center = np.median(scene.points.positions, axis=0)
    return orbit_path(rotations, translations, center, width=width, height=height, fps=frames, seconds=1.0,
                      focal_px=focal)


def bench_size(model, width: int, height: int, frames: int) -> dict:
    path = _orbit(model, width, height, frames)
    tonemapper = model.scene_model.tonemapper
    network, files = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(frames):
            start = time.perf_counter()
            hdr = model.render(path.rotations[i], path.translations[i], path.intrinsics[i], (width, height), hdr=True)
            linear = tonemapper.apply(hdr[None], full_size=(width, height), vignette=False, output="linear")[0]
            display = tonemapper.apply(hdr[None], full_size=(width, height), vignette=False)[0].clamp(0, 1)
            middle = time.perf_counter()
            write_exr(Path(tmp) / f"f.{1001 + i}.exr", linear.permute(1, 2, 0).numpy(),
                      world_to_camera=path.world_to_camera()[i], intrinsics=path.intrinsics[i], frame=1001 + i)
            write_png(Path(tmp) / f"f.{1001 + i}.png", display.permute(1, 2, 0).numpy())
            end = time.perf_counter()
            if i > 0:  # the first frame pays one-time costs (kernel build, allocations)
                network.append(middle - start)
                files.append(end - middle)
    per_frame = float(np.median(np.add(network, files)))
    return {
        "size": f"{width}x{height}",
        "frames_timed": len(network),
        "render_s_median": float(np.median(network)),
        "write_s_median": float(np.median(files)),
        "frame_s_median": per_frame,
        "fps": 1.0 / per_frame,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path)
    parser.add_argument("--sizes", nargs="+", default=["640x480", "1920x1080"])
    parser.add_argument("--frames", type=int, default=6)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = load_trained_model(args.run_dir)
    rows = []
    for size in args.sizes:
        width, height = (int(v) for v in size.lower().split("x"))
        rows.append(bench_size(model, width, height, args.frames))
    print(f"{'size':>10} {'render s':>9} {'write s':>8} {'frame s':>8} {'fps':>6}")
    for row in rows:
        print(f"{row['size']:>10} {row['render_s_median']:9.3f} {row['write_s_median']:8.3f} "
              f"{row['frame_s_median']:8.3f} {row['fps']:6.2f}")
    if args.json:
        meta = {"torch": torch.__version__, "threads": args.threads, "machine": platform.machine(),
                "points": int(model.scene_model.positions.shape[0]) if hasattr(model.scene_model, "positions") else None}
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
