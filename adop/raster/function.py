"""The thin autograd Function around the backends, backend selection and the shared spatial chain rule."""

from __future__ import annotations

import logging
from types import ModuleType

import torch
from torch import Tensor

from adop.raster import _torch
from adop.raster._types import BackwardResult, ForwardResult, RasterInputs
from adop.raster.config import Backend, RasterConfig
from adop.raster.projection import DISTORTION_GRADIENT_SCALES, projection_vjp

logger = logging.getLogger(__name__)


def resolve_backend(requested: Backend, device: torch.device, dtype: torch.dtype) -> str:
    """Pick the implementation for tensors on ``device`` with ``dtype``.

    ``auto`` never fails: CUDA tensors use CuPy when it imports (else the torch path), CPU float32 tensors use the
    compiled C++ kernel when it builds (else the torch path, with a logged warning from the loader). An explicit
    choice that cannot run raises, so a benchmark or a test never measures a different backend than it named.

    Raises:
        ValueError: the backend does not run on this device.
        TypeError: the compiled backends need float32.
        RuntimeError: CuPy is missing or the C++ extension failed to build.
    """
    from adop.raster import _cpp, _cuda

    if requested == "torch":
        return "torch"
    if requested == "cuda":
        if device.type != "cuda":
            raise ValueError(f"backend 'cuda' needs CUDA tensors, got tensors on {device}")
        if dtype != torch.float32:
            raise TypeError(f"backend 'cuda' needs float32 tensors, got {dtype}")
        _cuda.require()
        return "cuda"
    if requested == "cpp":
        if device.type != "cpu":
            raise ValueError(f"backend 'cpp' needs CPU tensors, got tensors on {device}")
        if dtype != torch.float32:
            raise TypeError(f"backend 'cpp' needs float32 tensors, got {dtype}")
        _cpp.require()
        return "cpp"
    if dtype != torch.float32:
        chosen = "torch"
    elif device.type == "cuda":
        chosen = "cuda" if _cuda.available() else "torch"
    elif device.type == "cpu":
        chosen = "cpp" if _cpp.available() else "torch"
    else:
        chosen = "torch"
    _announce(device, dtype, chosen)
    return chosen


_announced: set[tuple[str, str, str]] = set()


def _announce(device: torch.device, dtype: torch.dtype, chosen: str) -> None:
    """Log once per (device type, dtype, backend) which backend ``auto`` chose, so a slow run says why."""
    key = (device.type, str(dtype), chosen)
    if key not in _announced:
        _announced.add(key)
        logger.info("rasterizer backend 'auto' chose %r for %s %s tensors", chosen, device.type,
                 str(dtype).removeprefix("torch."))


def _module(name: str) -> ModuleType:
    if name == "torch":
        return _torch
    if name == "cpp":
        from adop.raster import _cpp

        return _cpp
    from adop.raster import _cuda

    return _cuda


def spatial_gradients(
    inp: RasterInputs,
    cfg: RasterConfig,
    bwd: BackwardResult,
    need_points: bool,
    need_pose: bool,
    need_intrinsics: bool,
) -> tuple[Tensor | None, Tensor | None, Tensor | None, Tensor | None]:
    """Push the screen-space sums through the projection Jacobians and average as ADOP does (docs/method.md §4).

    Only pairs that contributed are touched (a compacted index set), so the cost scales with the ghost points.
    Points: sum over views and layers divided by the point's contribution count. Poses (left perturbation,
    translation first, ``J = [I | −[p_c]×]``): sum over the view's contributions divided by their count.
    Intrinsics: ADOP's ``sum / (count / 1024)`` with ``K_gradient_factor`` and the distortion factors.

    Returns:
        ``(positions [N,3], pose_tangent [B,6], intrinsics [B,4], distortion [B,8])``, None where not requested.
    """
    assert bwd.screen_grad is not None and bwd.screen_count is not None
    count = bwd.screen_count
    dtype = inp.positions.dtype
    per_view = count.sum(dim=1).clamp_min(1).to(dtype)  # [B]
    grad_pos = torch.zeros_like(inp.positions) if need_points else None
    grad_pose = torch.zeros(inp.num_views, 6, dtype=dtype, device=inp.positions.device) if need_pose else None
    grad_k = torch.zeros_like(inp.intrinsics) if need_intrinsics else None
    grad_dist = torch.zeros_like(inp.distortion) if need_intrinsics else None
    for b in range(inp.num_views):  # B is small; each view's rows share R, t, K, dist and crop
        (n,) = (count[b] > 0).nonzero(as_tuple=True)
        if n.numel() == 0:
            continue
        g = bwd.screen_grad[b].index_select(0, n).to(dtype)
        rot = inp.rotations[b]
        pc = inp.positions.index_select(0, n) @ rot.T + inp.translations[b]
        rows = n.numel()
        d_pc, d_k, d_dist = projection_vjp(pc, inp.intrinsics[b].expand(rows, 4), inp.distortion[b].expand(rows, 8),
                                           inp.crops[b].expand(rows, 3), g)
        if grad_pos is not None:
            grad_pos.index_add_(0, n, d_pc @ rot)
        if grad_pose is not None:
            grad_pose[b, :3] = d_pc.sum(dim=0) / per_view[b]
            grad_pose[b, 3:] = torch.linalg.cross(pc, d_pc).sum(dim=0) / per_view[b]
        if grad_k is not None and grad_dist is not None:
            scale = 1024.0 / per_view[b]
            grad_k[b] = d_k.sum(dim=0) * (cfg.intrinsics_gradient_factor * scale)
            coef = torch.tensor(DISTORTION_GRADIENT_SCALES, dtype=dtype, device=g.device)
            grad_dist[b] = d_dist.sum(dim=0) * coef * (cfg.distortion_gradient_factor * scale)
    if grad_pos is not None:
        grad_pos = grad_pos / count.sum(dim=0).clamp_min(1).to(dtype)[:, None]
    return grad_pos, grad_pose, grad_k, grad_dist


class RasterizeFunction(torch.autograd.Function):
    """Forward runs the three passes; backward gives exact descriptor/background gradients and ADOP's
    approximate position/pose/intrinsics gradients.

    .. warning::
        The gradients returned for ``positions``, ``pose_tangent``, ``intrinsics`` and ``distortion`` are ADOP's
        averaged screen-space estimates (meant for plain SGD with ADOP's learning rates), not dL/dθ. They are
        evaluated at ``pose_tangent = 0``: reset the tangent after each optimiser step.
    """

    @staticmethod
    def forward(  # type: ignore[override]
        ctx: torch.autograd.function.FunctionCtx,
        backend: str,
        cfg: RasterConfig,
        size: tuple[int, int],
        drop: Tensor | None,
        positions: Tensor,
        normals: Tensor | None,
        radius: Tensor | None,
        descriptors: Tensor,
        background: Tensor,
        rotations: Tensor,
        translations: Tensor,
        intrinsics: Tensor,
        distortion: Tensor,
        crops: Tensor,
        max_radius2: Tensor,
        pose_tangent: Tensor | None,
    ) -> tuple[Tensor, ...]:
        inp = RasterInputs(positions, normals, radius, descriptors, background, rotations, translations, intrinsics,
                           distortion, crops, max_radius2, drop, size)
        fwd: ForwardResult = _module(backend).forward(inp, cfg)
        ctx.backend, ctx.cfg, ctx.size = backend, cfg, size  # type: ignore[attr-defined]
        ctx.has_tangent = pose_tangent is not None  # type: ignore[attr-defined]
        ctx.tangent_dtype = None if pose_tangent is None else pose_tangent.dtype  # type: ignore[attr-defined]
        ctx.save_for_backward(positions, normals, radius, descriptors, background, rotations, translations,
                              intrinsics, distortion, crops, max_radius2, drop, fwd.proj, *fwd.features, *fwd.weights,
                              *fwd.depths, *fwd.extra)
        ctx.mark_non_differentiable(*fwd.weights, *fwd.depths)
        return (*fwd.features, *fwd.weights, *fwd.depths)

    @staticmethod
    def backward(ctx: torch.autograd.function.FunctionCtx, *grads: Tensor) -> tuple[Tensor | None, ...]:  # type: ignore[override]
        cfg: RasterConfig = ctx.cfg  # type: ignore[attr-defined]
        layers = cfg.layers
        saved = ctx.saved_tensors  # type: ignore[attr-defined]
        (positions, normals, radius, descriptors, background, rotations, translations, intrinsics, distortion, crops,
         max_radius2, drop, proj) = saved[:13]
        features = list(saved[13:13 + layers])
        weights = list(saved[13 + layers:13 + 2 * layers])
        depths = list(saved[13 + 2 * layers:13 + 3 * layers])
        extra = tuple(saved[13 + 3 * layers:])
        inp = RasterInputs(positions, normals, radius, descriptors, background, rotations, translations, intrinsics,
                           distortion, crops, max_radius2, drop, ctx.size)  # type: ignore[attr-defined]
        fwd = ForwardResult(features=features, weights=weights, depths=depths, proj=proj, extra=extra)
        needs = ctx.needs_input_grad  # type: ignore[attr-defined]
        need_points = cfg.point_gradients and needs[4]
        need_pose = cfg.pose_gradients and ctx.has_tangent and needs[15]  # type: ignore[attr-defined]
        need_k = cfg.intrinsics_gradients and (needs[11] or needs[12])
        need_spatial = need_points or need_pose or need_k
        grad_features = [g.contiguous() for g in grads[:layers]]
        bwd = _module(ctx.backend).backward(  # type: ignore[attr-defined]
            inp, cfg, fwd, grad_features, needs[7], needs[8], need_spatial
        )
        grad_pos = grad_pose = grad_k = grad_dist = None
        if need_spatial:
            grad_pos, grad_pose, grad_k, grad_dist = spatial_gradients(inp, cfg, bwd, need_points, need_pose, need_k)
        grad_desc = None if bwd.grad_descriptors is None else bwd.grad_descriptors.to(descriptors.dtype)
        grad_bg = None if bwd.grad_background is None else bwd.grad_background.to(background.dtype)
        if grad_pose is not None:
            grad_pose = grad_pose.to(ctx.tangent_dtype)  # type: ignore[attr-defined]
        return (None, None, None, None, grad_pos, None, None, grad_desc, grad_bg, None, None,
                grad_k if needs[11] else None, grad_dist if needs[12] else None, None, None, grad_pose)
