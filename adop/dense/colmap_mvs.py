"""COLMAP's PatchMatch stereo and fusion, where pycolmap was built with CUDA and a GPU is present.

``pycolmap.patch_match_stereo`` needs a CUDA build of pycolmap (the ``pycolmap-cuda12`` wheel); without a GPU, or on a
damaged workspace, that build aborts the whole process instead of raising. It therefore runs in a child process
(``python -m adop.dense.colmap_mvs``), and the parent turns any failure into an error it can act on (``auto`` falls
back to our plane sweep). Steps: ``undistort_images`` (max image size as configured), ``patch_match_stereo`` with
geometric consistency, ``stereo_fusion`` to ``fused.ply`` (COLMAP's defaults otherwise).
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from adop.errors import AdopError

FUSED_FILE = "fused.ply"
RUNNING: set[subprocess.Popen] = set()
"""COLMAP child processes of this process that have not finished."""


def colmap_unavailable() -> str | None:
    """Why COLMAP's dense stereo cannot run here, or None when it can (checked in a child process too: importing a
    CUDA build of pycolmap on a machine without the CUDA runtime may itself abort)."""
    probe = ("import zlib, pycolmap, sys; import torch; "
             "sys.exit(0 if getattr(pycolmap, 'has_cuda', False) and torch.cuda.is_available() else 3)")
    try:
        done = subprocess.run([sys.executable, "-c", probe], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as error:
        return f"the probe for COLMAP's CUDA build failed ({error})"
    if done.returncode == 3:
        return "pycolmap was built without CUDA or no GPU is visible (COLMAP's PatchMatch stereo is CUDA-only)"
    if done.returncode != 0:
        return f"importing pycolmap failed in a child process (exit {done.returncode})"
    return None


def run_colmap_mvs(model_dir: Path, image_dir: Path, work_dir: Path, max_image_size: int, timeout_s: float) -> Path:
    """COLMAP dense reconstruction of the SfM model in ``model_dir``; returns the fused cloud's path.

    Raises:
        AdopError: the child process failed or aborted (its exit status and last lines are in the message).
    """
    work_dir.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "adop.dense.colmap_mvs", str(model_dir), str(image_dir), str(work_dir),
               "--max-image-size", str(max_image_size)]
    child = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    RUNNING.add(child)
    try:
        stdout, stderr = child.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        child.kill()
        child.communicate()
        raise AdopError(f"COLMAP's dense stereo did not finish within {timeout_s:.0f} s") from None
    finally:
        RUNNING.discard(child)
    fused = work_dir / FUSED_FILE
    if child.returncode != 0 or not fused.is_file():
        tail = " | ".join((stderr or stdout).strip().splitlines()[-3:])
        raise AdopError(f"COLMAP's dense stereo failed (exit {child.returncode}): {tail}")
    return fused


def stop_running() -> None:
    """Terminate the COLMAP child processes still running (an interrupted run must not leave them on the GPU)."""
    for child in list(RUNNING):
        child.terminate()
        try:
            child.wait(timeout=5)
        except subprocess.TimeoutExpired:
            child.kill()


def _main() -> None:  # pragma: no cover - runs only where pycolmap has CUDA
    import zlib  # noqa: F401

    from adop.native import pycolmap

    parser = argparse.ArgumentParser()
    parser.add_argument("model_dir")
    parser.add_argument("image_dir")
    parser.add_argument("work_dir")
    parser.add_argument("--max-image-size", type=int, default=-1)
    args = parser.parse_args()
    work = Path(args.work_dir)
    dense = work / "colmap"
    shutil.rmtree(dense, ignore_errors=True)
    options = pycolmap.UndistortCameraOptions()
    options.max_image_size = args.max_image_size if args.max_image_size > 0 else -1
    pycolmap.undistort_images(str(dense), args.model_dir, args.image_dir, undistort_options=options)
    pycolmap.patch_match_stereo(str(dense))
    pycolmap.stereo_fusion(str(work / FUSED_FILE), str(dense), output_type="ply")
    print(json.dumps({"fused": str(work / FUSED_FILE)}))


if __name__ == "__main__":  # pragma: no cover
    _main()
