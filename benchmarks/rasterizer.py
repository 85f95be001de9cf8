"""Benchmark of the one-pixel rasterizer: forward and forward+backward time, points/s and peak memory.

Cases: 1e5, 1e6 and 4e6 points (plus 1e7 on a GPU) at 640x480 and 1920x1080, 4 layers, 4 channels, one view,
training settings (dropout 0.25, back-face culling on, no radius discarding so every point reaches every layer, the
worst case), backward with descriptor, background and pose gradients (ADOP's released configs). Every available
backend is measured through the public API. Prints a table and writes JSON with the environment.

Goals: CPU (2 cores) >= 20 M points/s forward+backward at 1e6 points, 1080p; GPU (H100 class) >= 2 G points/s
forward (1e7 points at 1080p in < 5 ms), reported next to the ratio to the memory-bandwidth bound (a simple
traffic model divided by the measured device-to-device copy bandwidth).

Usage:
    python benchmarks/rasterizer.py [--backends cpp torch] [--points 100000 1000000] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch
from torch.utils import benchmark

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from adop.raster import RasterConfig, rasterize  # noqa: E402
from adop.raster.function import resolve_backend  # noqa: E402

SIZES = {"640x480": (640, 480), "1920x1080": (1920, 1080), "3840x2160": (3840, 2160)}


def make_scene(points: int, size: tuple[int, int], device: torch.device, seed: int = 0) -> dict:
    """Points spread uniformly over the view frustum (depth 2..6), normals facing the camera, random descriptors."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    f = 0.8 * w
    px = torch.rand(points, generator=g) * w
    py = torch.rand(points, generator=g) * h
    z = 2 + 4 * torch.rand(points, generator=g)
    pos = torch.stack([(px - w / 2) * z / f, (py - h / 2) * z / f, z], dim=1)
    return dict(
        positions=pos.to(device),
        descriptors=torch.rand(points, 4, generator=g).to(device),
        background=torch.full((4,), -1.0, device=device),
        rotations=torch.eye(3, device=device)[None],
        translations=torch.zeros(1, 3, device=device),
        intrinsics=torch.tensor([[f, f, w / 2, h / 2]], device=device),
        normals=torch.tensor([[0.0, 0.0, -1.0]], device=device).expand(points, 3).contiguous(),
        size=size,
    )


def _peak_reset(device: torch.device) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    try:
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM (peak RSS) on Linux
    except OSError:
        pass
    return _status_kb("VmRSS") * 1024


def _peak_read(device: torch.device, baseline: int) -> int:
    if device.type == "cuda":
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - baseline
    return _status_kb("VmHWM") * 1024 - baseline


def _status_kb(key: str) -> int:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(key + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def copy_bandwidth(device: torch.device) -> float:
    """Achievable device memory bandwidth in bytes/s: read+write of a 1 GiB device-to-device copy."""
    src = torch.empty(1 << 28, dtype=torch.float32, device=device)
    dst = torch.empty_like(src)
    t = benchmark.Timer("dst.copy_(src)", globals=dict(dst=dst, src=src)).blocked_autorange(min_run_time=0.5)
    return 2 * src.numel() * 4 / t.median


def traffic_bytes(points: int, size: tuple[int, int], layers: int = 4, channels: int = 4) -> int:
    """Minimal forward DRAM traffic: read position+normal, write projection; per point-layer a depth read/write and a
    descriptor read + accumulation write; per pixel init and resolve of depth, weight and C channels."""
    pixels = sum((size[0] >> k) * (size[1] >> k) for k in range(layers))
    per_point = 24 + 16 + layers * (8 + 4 * channels + 4 * channels)
    per_pixel = (4 + 4 + 4 * channels) * 3
    return points * per_point + pixels * per_pixel


def run_case(backend: str, points: int, size_name: str, device: torch.device, min_time: float) -> dict:
    scene = make_scene(points, SIZES[size_name], device)
    cfg = RasterConfig(backend=backend)  # type: ignore[arg-type]
    desc = scene["descriptors"].requires_grad_()
    bg = scene["background"].requires_grad_()
    tangent = torch.zeros(1, 6, dtype=torch.float64, device=device, requires_grad=True)
    gen = torch.Generator(device=device).manual_seed(0)

    def fwd() -> tuple[torch.Tensor, ...]:
        with torch.no_grad():
            return rasterize(scene["positions"], desc, bg, scene["rotations"], scene["translations"],
                             scene["intrinsics"], scene["size"], normals=scene["normals"], config=cfg,
                             generator=gen).features

    def fwd_bwd() -> None:
        out = rasterize(scene["positions"], desc, bg, scene["rotations"], scene["translations"], scene["intrinsics"],
                        scene["size"], normals=scene["normals"], pose_tangent=tangent, config=cfg, generator=gen)
        torch.autograd.backward(out.features, [torch.ones_like(f) for f in out.features])
        desc.grad = bg.grad = tangent.grad = None

    fwd_bwd()  # warm-up (JIT build, CuPy compile, allocator)
    sync = "torch.cuda.synchronize()" if device.type == "cuda" else ""
    result: dict = dict(backend=backend, points=points, size=size_name, device=str(device))
    for name, fn in (("forward", fwd), ("forward_backward", fwd_bwd)):
        base = _peak_reset(device)
        t = benchmark.Timer(f"fn(); {sync}", globals=dict(fn=fn, torch=torch)).blocked_autorange(
            min_run_time=min_time)
        result[f"{name}_ms"] = t.median * 1e3
        result[f"{name}_iqr_ms"] = t.iqr * 1e3
        result[f"{name}_mpts_per_s"] = points / t.median / 1e6
        result[f"{name}_peak_mib"] = max(_peak_read(device, base), 0) / 2**20
    return result


def environment() -> dict:
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True, check=True,
                                cwd=Path(__file__).parent).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        commit = None
    env = dict(commit=commit, python=platform.python_version(), torch=torch.__version__,
               threads=torch.get_num_threads(), cpu=platform.processor() or platform.machine(),
               time=time.strftime("%Y-%m-%dT%H:%M:%S"))
    try:
        env["cpu"] = next(line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                          if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    if torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name()
        try:
            import cupy

            env["cupy"] = cupy.__version__
        except ImportError:
            env["cupy"] = None
    return env


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", nargs="*", default=None, help="default: every backend that runs here")
    parser.add_argument("--points", nargs="*", type=int, default=None)
    parser.add_argument("--sizes", nargs="*", default=list(SIZES), choices=list(SIZES))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-time", type=float, default=1.0, help="seconds per measurement (blocked_autorange)")
    parser.add_argument("--json", type=Path, default=Path("benchmarks/results/rasterizer.json"))
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    plan: list[tuple[str, torch.device]] = []
    candidates = args.backends or ["cuda", "cpp", "torch"]
    for name in candidates:
        devices = [torch.device("cuda")] if name == "cuda" else [torch.device("cpu")]
        if name == "torch" and torch.cuda.is_available():
            devices.append(torch.device("cuda"))
        for device in devices:
            if device.type == "cuda" and not torch.cuda.is_available():
                continue
            try:
                resolve_backend(name, device, torch.float32)  # type: ignore[arg-type]
            except (RuntimeError, ValueError, TypeError) as exc:
                print(f"skipping backend {name} on {device}: {exc}", file=sys.stderr)
                continue
            plan.append((name, device))

    rows = []
    for name, device in plan:
        counts = args.points or ([100_000, 1_000_000, 4_000_000] + ([10_000_000] if device.type == "cuda" else []))
        for size_name in args.sizes:
            for points in counts:
                row = run_case(name, points, size_name, device, args.min_time)
                if device.type == "cuda":
                    bound = traffic_bytes(points, SIZES[size_name]) / copy_bandwidth(device)
                    row["bandwidth_bound_ms"] = bound * 1e3
                    row["forward_vs_bound"] = row["forward_ms"] / (bound * 1e3)
                rows.append(row)
                print(_format(row), flush=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(dict(environment=environment(), results=rows), indent=2))
    print(f"wrote {args.json}")
    return 0


def _format(row: dict) -> str:
    text = (f"{row['backend']:>5} {row['device']:>4} {row['size']:>9} {row['points']:>9,d} pts | "
            f"fwd {row['forward_ms']:8.2f} ms {row['forward_mpts_per_s']:8.1f} Mpts/s "
            f"peak {row['forward_peak_mib']:7.1f} MiB | "
            f"fwd+bwd {row['forward_backward_ms']:8.2f} ms {row['forward_backward_mpts_per_s']:8.1f} Mpts/s "
            f"peak {row['forward_backward_peak_mib']:7.1f} MiB")
    if "forward_vs_bound" in row:
        text += f" | bw bound {row['bandwidth_bound_ms']:.3f} ms (x{row['forward_vs_bound']:.1f})"
    return text


if __name__ == "__main__":
    raise SystemExit(main())
