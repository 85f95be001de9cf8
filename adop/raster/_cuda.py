"""CuPy backend: the CUDA kernels in ``kernels/*.cu``, compiled with NVRTC through ``cupy.RawModule``.

CuPy is imported lazily, so ``import adop`` works without it. Modules are compiled once per device and memoised;
kernels read and write torch tensors in place through their data pointers (no copies) and run on
``torch.cuda.current_stream()``. The module is built with ``--fmad=false`` so the projection matches the other
backends bit for bit (depth buffers compare exactly); accumulations use float atomics, so their summation order,
and hence the last bits of blended values, may differ from run to run.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

import torch
from torch import Tensor

from adop.raster._types import BackwardResult, ForwardResult, RasterInputs
from adop.raster.config import MAX_LAYERS, RasterConfig

logger = logging.getLogger(__name__)

_BLOCK = 256
_lock = threading.Lock()
_modules: dict[tuple[int, str], Any] = {}


def kernels_dir() -> Path:
    """The kernels shipped with the package, ``adop/raster/kernels/`` (``ADOP_KERNELS_DIR`` overrides)."""
    import os

    root = os.environ.get("ADOP_KERNELS_DIR")
    return Path(root) if root else Path(__file__).resolve().parent / "kernels"


def _cupy() -> ModuleType | None:
    try:
        import cupy
    except ImportError:
        return None
    return cupy


def available() -> bool:
    """CuPy imports and torch sees a GPU."""
    return torch.cuda.is_available() and _cupy() is not None


def require() -> ModuleType:
    """CuPy, or RuntimeError saying what is missing."""
    if not torch.cuda.is_available():
        raise RuntimeError("backend 'cuda' is unavailable: torch sees no CUDA device")
    cupy = _cupy()
    if cupy is None:
        raise RuntimeError("backend 'cuda' is unavailable: CuPy is not installed (pip install 'adop[gpu]')")
    return cupy


def _module(device: torch.device, name: str) -> Any:
    """``kernels/<name>.cu`` compiled for ``device`` (memoised)."""
    cupy = require()
    index = device.index if device.index is not None else torch.cuda.current_device()
    key = (index, name)
    with _lock:
        if key not in _modules:
            source = (kernels_dir() / f"{name}.cu").read_text()
            with cupy.cuda.Device(index):
                _modules[key] = cupy.RawModule(
                    code=source, options=("--std=c++14", "--fmad=false", f"-I{kernels_dir()}")
                )
        return _modules[key]


def _launch(device: torch.device, module: str, kernel: str, threads: int, args: list[Any]) -> None:
    if threads <= 0:
        return
    cupy = require()
    fn = _module(device, module).get_function(kernel)
    with cupy.cuda.Device(device.index), cupy.cuda.ExternalStream(torch.cuda.current_stream(device).cuda_stream):
        fn(((threads + _BLOCK - 1) // _BLOCK,), (_BLOCK,), tuple(args))


def _ptr(t: Tensor | None) -> Any:
    import numpy as np

    return np.uint64(0 if t is None else t.data_ptr())


def _layer_ptrs(tensors: list[Tensor]) -> list[Any]:
    return [_ptr(t) for t in tensors] + [_ptr(None)] * (MAX_LAYERS - len(tensors))


def forward(inp: RasterInputs, cfg: RasterConfig) -> ForwardResult:
    """Project + depth pre-pass, fuzzy accumulate, resolve (three launches on the current stream)."""
    import numpy as np

    device = inp.positions.device
    views, points, channels = inp.num_views, inp.num_points, inp.channels
    width, height = inp.size
    sizes = [inp.layer_size(layer) for layer in range(cfg.layers)]
    total = views * sum(w * h for w, h in sizes)
    proj = torch.empty(views, points, 4, dtype=torch.float32, device=device)
    depth = torch.full((total,), float("inf"), dtype=torch.float32, device=device)
    weight = torch.zeros(total, dtype=torch.float32, device=device)
    accum = torch.zeros(total, channels, dtype=torch.float32, device=device)
    features = [torch.empty(views, channels, h, w, dtype=torch.float32, device=device) for w, h in sizes]
    packed = inp.packed_views()
    drop = None if inp.drop is None else inp.drop.contiguous()
    pairs = views * points
    i32, i64, f32 = np.int32, np.int64, np.float32
    _launch(device, "rasterize_points_fwd", "rasterize_points_fwd_project", pairs, [
        _ptr(inp.positions), _ptr(inp.normals), _ptr(inp.radius), _ptr(packed), _ptr(proj), _ptr(depth),
        i64(points), i64(views), i32(width), i32(height), i32(cfg.layers), f32(cfg.znear_f32),
        f32(cfg.threshold_f32),
    ])
    _launch(device, "rasterize_points_fwd", "rasterize_points_fwd_accumulate", pairs, [
        _ptr(proj), _ptr(inp.descriptors), _ptr(drop), _ptr(depth), _ptr(weight), _ptr(accum), i64(points),
        i64(views), i32(channels), i32(width), i32(height), i32(cfg.layers), f32(cfg.accept_factor),
    ])
    _launch(device, "rasterize_points_fwd", "rasterize_points_fwd_resolve", total, [
        _ptr(weight), _ptr(accum), _ptr(depth), _ptr(inp.background), *_layer_ptrs(features), i64(views), i32(channels),
        i32(width), i32(height), i32(cfg.layers),
    ])
    return ForwardResult(features=features, weights=inp.split_layers(weight, cfg.layers),
                         depths=inp.split_layers(depth, cfg.layers), proj=proj)


def backward(
    inp: RasterInputs,
    cfg: RasterConfig,
    fwd: ForwardResult,
    grad_features: list[Tensor],
    need_descriptors: bool,
    need_background: bool,
    need_spatial: bool,
) -> BackwardResult:
    """Per-point kernel (descriptor gradient, ghost sums) and the background reduction."""
    import numpy as np

    device = inp.positions.device
    views, points, channels = inp.num_views, inp.num_points, inp.channels
    width, height = inp.size
    grads = [g.to(torch.float32).contiguous() for g in grad_features]
    grad_desc = torch.zeros(points, channels, dtype=torch.float32, device=device) if need_descriptors else None
    grad_bg = torch.zeros(channels, dtype=torch.float32, device=device) if need_background else None
    screen = torch.zeros(views, points, 2, dtype=torch.float32, device=device) if need_spatial else None
    count = torch.zeros(views, points, dtype=torch.float32, device=device) if need_spatial else None
    weight_base, depth_base = fwd.weights[0], fwd.depths[0]
    assert weight_base.storage_offset() == 0 and depth_base.storage_offset() == 0
    drop = None if inp.drop is None else inp.drop.contiguous()
    i32, i64, f32 = np.int32, np.int64, np.float32
    if need_descriptors or need_spatial:
        _launch(device, "rasterize_points_bwd", "rasterize_points_bwd_points", views * points, [
            _ptr(fwd.proj), _ptr(inp.descriptors), _ptr(drop), _ptr(weight_base), _ptr(depth_base),
            *_layer_ptrs(fwd.features), *_layer_ptrs(grads), _ptr(grad_desc), _ptr(screen), _ptr(count),
            i64(points), i64(views), i32(channels), i32(width), i32(height), i32(cfg.layers),
            f32(cfg.accept_factor), i32(1 if cfg.ghost_gradients else 0),
        ])
    if need_background:
        total = views * sum(w * h for w, h in (inp.layer_size(layer) for layer in range(cfg.layers)))
        _launch(device, "rasterize_points_bwd", "rasterize_points_bwd_background", total, [
            _ptr(weight_base), *_layer_ptrs(grads), _ptr(grad_bg), i64(views), i32(channels), i32(width),
            i32(height), i32(cfg.layers),
        ])
    return BackwardResult(grad_descriptors=grad_desc, grad_background=grad_bg, screen_grad=screen,
                          screen_count=count)
