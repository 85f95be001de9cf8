"""What spreading render chunks costs and gains: one path rendered serially, on threads and on a local Dask cluster.

    python benchmarks/render_scale_out.py WORK_DIR [--seconds 2] [--fps 24] [--chunk-size 8] [--workers 2]
                                          [--steps 60] [--json PATH]

Generates the tiny synthetic capture set, runs the pipeline to a trained model (``--steps`` steps of cpu-fast) in
``WORK_DIR/trained``, then renders the same fly-through (``--seconds`` at ``--fps``, the photos' resolution, chunks
of ``--chunk-size`` frames) in three copies of that workspace: ``serial``, ``threads`` (``--workers`` chunks at
once) and ``dask`` (a local cluster of ``--workers`` processes, started and stopped by the run). For each it prints
the render stage's wall time (first chunk submitted to last chunk back, from the flow's log), the flow's whole time,
and whether the frames are byte-identical to the serial ones.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import time
from datetime import datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def _frames(summary: dict) -> dict[str, str]:
    found = {}
    for chunk in summary["stages"]["render"]["chunks"]:
        for file in sorted(Path(chunk["path"]).iterdir()):
            if file.suffix in (".exr", ".png"):
                found[file.name] = hashlib.sha256(file.read_bytes()).hexdigest()
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work_dir", type=Path)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--fps", type=float, default=24.0)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--json", type=Path, default=RESULTS / "render_scale_out.json")
    args = parser.parse_args()

    from adop.flows.capture_to_deliverable import capture_to_deliverable
    from adop.pipeline import PipelineOptions, ScaleOutConfig
    from adop.synth import generate_capture_set

    work = args.work_dir.resolve()
    capture = work / "capture"
    if not capture.exists():
        generate_capture_set(capture, preset="tiny", seed=5)
    base = PipelineOptions(max_steps=args.steps)
    trained = work / "trained"
    state = capture_to_deliverable(str(capture), str(trained), base.replace(stop_after="train"), return_state=True)
    assert state.is_completed(), state.message
    options = base.replace(stop_after="render",
                           fly_through=base.fly_through.replace(seconds=args.seconds, fps=args.fps),
                           render=base.render.replace(chunk_size=args.chunk_size))
    runs: dict[str, dict] = {}
    reference: dict[str, str] | None = None
    for runner in ("serial", "threads", "dask"):
        workspace = work / f"ws-{runner}"
        shutil.rmtree(workspace, ignore_errors=True)
        shutil.copytree(trained, workspace)
        started = time.perf_counter()
        state = capture_to_deliverable(str(capture), str(workspace),
                                       options.replace(scale_out=ScaleOutConfig(runner=runner, workers=args.workers)),
                                       return_state=True)
        wall = time.perf_counter() - started
        assert state.is_completed(), state.message
        summary = state.result()
        frames = _frames(summary)
        reference = frames if reference is None else reference
        chunk_seconds = sum(json.loads((Path(c["path"]) / "manifest.json").read_text())["build_seconds"]
                            for c in summary["stages"]["render"]["chunks"])
        runs[runner] = {"flow_wall_s": round(wall, 2), "frames": len(frames) // 2,
                        "chunks": len(summary["stages"]["render"]["chunks"]),
                        "chunk_build_s_sum": round(chunk_seconds, 2), "identical_to_serial": frames == reference}
        print(f"{runner:>8}: flow {wall:6.1f} s for {len(frames) // 2} frames in {runs[runner]['chunks']} chunks "
              f"(chunk builds {chunk_seconds:.1f} s in all); frames identical to serial: {frames == reference}")
    record = {"command": "python benchmarks/render_scale_out.py " + " ".join(
                  f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k not in ("work_dir", "json")),
              "date": datetime.now().isoformat(timespec="seconds"),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version()}, "runs": runs}
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(record, indent=2) + "\n")
    print(f"written {args.json}")


if __name__ == "__main__":
    main()
