"""Compiled C++/OpenMP CPU backend: JIT-built once from ``kernels/cpu/raster_cpu.cpp`` and cached.

The plain PyTorch path needs full-resolution temporaries and gathers for every layer, which leaves it several times
short of the CPU goal (docs/method.md §10); the kernel bands the image so that each thread owns its pixel rows
at every layer (no atomics) and reaches the 20 M points/s goal. It binds only pybind11 (no ATen headers), so the
first build takes seconds, not minutes. Build products live under ``$XDG_CACHE_HOME/adop/torch_ext`` (default
``~/.cache``); ``torch.utils.cpp_extension`` rebuilds when the source changes.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from types import ModuleType

import torch
from torch import Tensor

from adop.raster._types import BackwardResult, ForwardResult, RasterInputs
from adop.raster.config import RasterConfig

logger = logging.getLogger(__name__)

_EXTENSION = "adop_raster_cpu"
_MAX_POINTS = 1 << 28  # the kernel packs the point index into 28 bits
_lock = threading.Lock()
# The kernel keeps its projection inside the band buckets (ForwardResult.extra), so the per-(view, point) [B,N,4]
# record of the reference would only cost memory traffic; backward never reads it.
_NO_PROJ = torch.empty(0, 4, dtype=torch.float32)
_module: ModuleType | None = None
_error: str | None = None


def kernel_source() -> Path:
    """``kernels/cpu/raster_cpu.cpp`` shipped with the package (override the folder with ``ADOP_KERNELS_DIR``)."""
    root = os.environ.get("ADOP_KERNELS_DIR")
    base = Path(root) if root else Path(__file__).resolve().parent / "kernels"
    return base / "cpu" / "raster_cpu.cpp"


def build_directory() -> Path:
    """Where the JIT build goes: ``$XDG_CACHE_HOME/adop/torch_ext/adop_raster_cpu``."""
    cache = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
    return cache / "adop" / "torch_ext" / _EXTENSION


def _load() -> ModuleType | None:
    global _module, _error
    with _lock:
        if _module is not None or _error is not None:
            return _module
        try:
            from torch.utils.cpp_extension import load

            source = kernel_source()
            if not source.is_file():
                raise FileNotFoundError(f"kernel source {source} not found")
            build = build_directory()
            build.mkdir(parents=True, exist_ok=True)
            # -ffp-contract=off: no fused multiply-add, so the projection rounds as the reference does.
            # -fno-trapping-math: lets the compiler vectorise branch-free selects around divisions (FP exceptions
            # are masked anyway); values are unchanged, this is not -ffast-math. No -march=native: the build cache
            # may be shared between machines.
            _module = load(
                name=_EXTENSION,
                sources=[str(source)],
                extra_cflags=["-O3", "-fopenmp", "-ffp-contract=off", "-fno-trapping-math"],
                extra_ldflags=["-fopenmp"],
                build_directory=str(build),
                verbose=False,
            )
        except Exception as exc:  # any compiler/ninja/loader failure means "not available"
            _error = f"{type(exc).__name__}: {exc}".strip()
            logger.warning("compiled CPU rasterizer unavailable, using the PyTorch path instead (%s)", _error[:500])
        return _module


def available() -> bool:
    """Whether the extension is built (building it on first call)."""
    return _load() is not None


def require() -> ModuleType:
    """The loaded extension, or RuntimeError saying why it could not be built."""
    module = _load()
    if module is None:
        raise RuntimeError(f"backend 'cpp' is unavailable: the C++ extension failed to build ({_error})")
    return module


def _band_height(layers: int) -> int:
    """Rows per band: a multiple of 2^(layers-1) so a band owns the same rows at every layer."""
    return max(8, 1 << (layers - 1))


def _addr(t: Tensor | None) -> int:
    return 0 if t is None else t.data_ptr()


def forward(inp: RasterInputs, cfg: RasterConfig) -> ForwardResult:
    """Run the three forward passes in the compiled kernel; buffers are allocated here, filled there."""
    module = require()
    if inp.num_points >= _MAX_POINTS or inp.num_points * inp.num_views >= 2**31:
        raise ValueError(f"backend 'cpp' supports fewer than {_MAX_POINTS} points and 2^31 (view, point) pairs, "
                         f"got {inp.num_points} points in {inp.num_views} views")
    views, points, channels = inp.num_views, inp.num_points, inp.channels
    sizes = [inp.layer_size(layer) for layer in range(cfg.layers)]
    total = views * sum(w * h for w, h in sizes)
    features = [torch.empty(views, channels, h, w, dtype=torch.float32) for w, h in sizes]
    weight = torch.empty(total, dtype=torch.float32)
    depth = torch.empty(total, dtype=torch.float32)
    packed = inp.packed_views()
    drop = None if inp.drop is None else inp.drop.contiguous()
    band = _band_height(cfg.layers)
    # Band buckets, kept for backward: entries (x, y, z, meta, descriptor) in (view, band) order, each (view, point)'s
    # slot in it (-1 = culled) and where each (view, band) task starts. Untouched pages of `entries` cost nothing.
    entries = torch.empty(views * points * (4 + channels), dtype=torch.float32)
    slot = torch.empty(views * points, dtype=torch.int32)
    task_start = torch.empty(views * (-(-inp.size[1] // band)) + 1, dtype=torch.int64)
    module.forward(
        _addr(inp.positions), _addr(inp.normals), _addr(inp.radius), _addr(inp.descriptors), _addr(inp.background),
        _addr(packed), _addr(drop), [f.data_ptr() for f in features], _addr(weight), _addr(depth), _addr(entries),
        _addr(slot), _addr(task_start), points, views, channels, inp.size[0], inp.size[1], cfg.layers, band,
        cfg.znear_f32, cfg.threshold_f32, cfg.accept_factor, torch.get_num_threads(),
    )
    return ForwardResult(features=features, weights=inp.split_layers(weight, cfg.layers),
                         depths=inp.split_layers(depth, cfg.layers), proj=_NO_PROJ, extra=(entries, slot, task_start))


def backward(
    inp: RasterInputs,
    cfg: RasterConfig,
    fwd: ForwardResult,
    grad_features: list[Tensor],
    need_descriptors: bool,
    need_background: bool,
    need_spatial: bool,
) -> BackwardResult:
    """Exact descriptor/background gradients and screen-space ghost sums, as ``_torch.backward``."""
    module = require()
    views, points, channels = inp.num_views, inp.num_points, inp.channels
    grad_desc = torch.zeros(points, channels, dtype=torch.float32) if need_descriptors else None
    grad_bg = torch.zeros(channels, dtype=torch.float32) if need_background else None
    screen = torch.zeros(views, points, 2, dtype=torch.float32) if need_spatial else None
    count = torch.zeros(views, points, dtype=torch.float32) if need_spatial else None
    # weights/depths are views into one flat buffer each (see forward); the kernel wants the buffer start.
    weight_base, depth_base = fwd.weights[0], fwd.depths[0]
    assert weight_base.storage_offset() == 0 and depth_base.storage_offset() == 0
    entries, slot, task_start = fwd.extra
    grads = [g.to(torch.float32).contiguous() for g in grad_features]
    module.backward(
        _addr(entries), _addr(slot), _addr(task_start), _addr(weight_base), _addr(depth_base),
        [f.data_ptr() for f in fwd.features], [g.data_ptr() for g in grads], _addr(grad_desc), _addr(grad_bg),
        _addr(screen), _addr(count), points, views, channels, inp.size[0], inp.size[1], cfg.layers,
        _band_height(cfg.layers), cfg.accept_factor, cfg.ghost_gradients, torch.get_num_threads(),
    )
    return BackwardResult(grad_descriptors=grad_desc, grad_background=grad_bg, screen_grad=screen,
                          screen_count=count)
