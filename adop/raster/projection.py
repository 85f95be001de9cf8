"""Projection through the unified COLMAP/OpenCV camera (docs/conventions.md) and its analytic Jacobians, in PyTorch.

This is the reference the compiled kernels mirror operation by operation: every product and sum below is written in
the same order as in ``kernels/cpu/raster_cpu.cpp`` and ``kernels/common.cuh`` (no matmul, no fused multiply-add), so
all backends compute bit-identical pixel positions and depths and the depth buffers can be compared exactly.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

MONOTONIC_MAX_R = 2.0
"""ADOP's ``MonotonicThreshold`` scans the distortion up to this normalised radius."""
MONOTONIC_STEPS = 100

# ADOP's extra per-coefficient scale of the distortion gradient, in OpenCV order (k1 k2 p1 p2 k3 k4 k5 k6):
# k3 x0.25, k4..k6 and p1, p2 x0.1 (ADOP ``RenderBackward``; docs/method.md §4).
DISTORTION_GRADIENT_SCALES = (1.0, 1.0, 0.1, 0.1, 0.25, 0.1, 0.1, 0.1)


def camera_points(positions: Tensor, rotations: Tensor, translations: Tensor) -> Tensor:
    """World -> camera, ``x_cam = R x + t`` per view, written element-wise so the rounding matches the kernels.

    Args:
        positions: ``[N, 3]`` world positions.
        rotations: ``[B, 3, 3]`` world->camera rotations.
        translations: ``[B, 3]`` world->camera translations.

    Returns:
        ``[B, N, 3]`` camera-space points.
    """
    px, py, pz = positions[None, :, 0], positions[None, :, 1], positions[None, :, 2]
    r = rotations[:, :, :, None]  # [B,3,3,1]
    t = translations[:, :, None]  # [B,3,1]
    rows = [r[:, i, 0] * px + r[:, i, 1] * py + r[:, i, 2] * pz + t[:, i] for i in range(3)]
    return torch.stack(rows, dim=-1)


def rotate_vectors(vectors: Tensor, rotations: Tensor) -> Tensor:
    """``R n`` per view for ``[N, 3]`` vectors, element-wise as in the kernels. Returns ``[B, N, 3]``."""
    vx, vy, vz = vectors[None, :, 0], vectors[None, :, 1], vectors[None, :, 2]
    r = rotations[:, :, :, None]
    return torch.stack([r[:, i, 0] * vx + r[:, i, 1] * vy + r[:, i, 2] * vz for i in range(3)], dim=-1)


def _split_distortion(distortion: Tensor) -> tuple[Tensor, ...]:
    """OpenCV order ``(k1, k2, p1, p2, k3, k4, k5, k6)``, each shaped like ``distortion[..., 0]``."""
    return tuple(distortion[..., i] for i in range(8))


def radial_factor(r2: Tensor, distortion: Tensor) -> Tensor:
    """``(1 + k1 r² + k2 r⁴ + k3 r⁶) / (1 + k4 r² + k5 r⁴ + k6 r⁶)``; ``distortion`` broadcasts against ``r2``."""
    k1, k2, _, _, k3, k4, k5, k6 = _split_distortion(distortion)
    r4 = r2 * r2
    r6 = r4 * r2
    a = 1 + k1 * r2 + k2 * r4 + k3 * r6
    b = 1 + k4 * r2 + k5 * r4 + k6 * r6
    return a / b


def distort(x: Tensor, y: Tensor, distortion: Tensor) -> tuple[Tensor, Tensor]:
    """Apply the OpenCV distortion to normalised coordinates (conventions.md); ``distortion[..., 8]`` broadcasts."""
    _, _, p1, p2, _, _, _, _ = _split_distortion(distortion)
    r2 = x * x + y * y
    rad = radial_factor(r2, distortion)
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    return xd, yd


def undistort(xd: Tensor, yd: Tensor, distortion: Tensor, iterations: int = 10) -> tuple[Tensor, Tensor]:
    """Invert :func:`distort` by fixed-point iteration (as OpenCV's ``undistortPoints``); for view rays only."""
    _, _, p1, p2, _, _, _, _ = _split_distortion(distortion)
    x, y = xd, yd
    for _ in range(iterations):
        r2 = x * x + y * y
        rad = radial_factor(r2, distortion)
        dx = 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
        dy = p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
        x = (xd - dx) / rad
        y = (yd - dy) / rad
    return x, y


def monotonic_radius2(distortion: Tensor) -> Tensor:
    """Squared normalised radius up to which each view's distortion is monotonic (docs/method.md §3).

    Beyond the first radius where ``r·radial(r)`` stops increasing, the polynomial folds back and far-off points
    would land inside the image, so they are culled. Scans ``MONOTONIC_STEPS`` radii up to ``MONOTONIC_MAX_R`` and
    returns ``MONOTONIC_MAX_R²`` when the whole range is monotonic, as ADOP does.

    Args:
        distortion: ``[B, 8]`` OpenCV-order coefficients.

    Returns:
        ``[B]`` squared radius, same dtype as ``distortion``.
    """
    steps = torch.arange(0, MONOTONIC_STEPS + 1, dtype=torch.float64, device=distortion.device)
    r = steps * (MONOTONIC_MAX_R / MONOTONIC_STEPS)  # [S]
    f = r[None] * radial_factor((r * r)[None], distortion.detach().double()[:, None, :])  # [B,S]
    stops = ~(f[:, 1:] > f[:, :-1])  # also catches NaN and poles
    first = torch.where(stops.any(dim=1), stops.int().argmax(dim=1), torch.full_like(stops[:, 0], MONOTONIC_STEPS,
                                                                                     dtype=torch.long))
    r_max = r[first]
    return (r_max * r_max).to(distortion.dtype)


def project_points(
    positions: Tensor,  # [N,3]
    normals: Tensor | None,  # [N,3]
    radius: Tensor | None,  # [N]
    rotations: Tensor,  # [B,3,3]
    translations: Tensor,  # [B,3]
    intrinsics: Tensor,  # [B,4]
    distortion: Tensor,  # [B,8]
    crops: Tensor,  # [B,3]
    max_radius2: Tensor,  # [B]
    size: tuple[int, int],
    layers: int,
    radius_threshold: float,
    znear: float,
) -> Tensor:
    """Project every point into every view: continuous crop pixel position, depth and number of layers it reaches.

    A point reaches layers ``0 .. nl-1``; ``nl = 0`` means it is culled (behind ``znear``, back-facing, outside the
    monotonic range of the distortion, or outside the layer-0 image). With a drop-out radius, ``nl`` stops at the
    first layer where the projected radius ``fx·zoom·radius/z·2^-l`` is below ``radius_threshold`` (docs/method.md §3).

    Returns:
        ``[B, N, 4]`` holding ``(u, v, z, nl)``; u, v in layer-0 crop pixels (pixel index = floor).
    """
    width, height = size
    pc = camera_points(positions, rotations, translations)
    cx_, cy_, z = pc.unbind(-1)
    keep = z > znear
    if normals is not None:
        n = rotate_vectors(normals, rotations)
        keep = keep & ~(cx_ * n[..., 0] + cy_ * n[..., 1] + z * n[..., 2] > 0)
    x = cx_ / z
    y = cy_ / z
    keep = keep & (x * x + y * y < max_radius2[:, None])
    xd, yd = distort(x, y, distortion[:, None, :])
    fx, fy, ppx, ppy = (intrinsics[:, i, None] for i in range(4))
    zoom, ox, oy = (crops[:, i, None] for i in range(3))
    u = zoom * (fx * xd + ppx) - ox
    v = zoom * (fy * yd + ppy) - oy
    keep = keep & (u >= 0) & (u < width) & (v >= 0) & (v < height)
    if radius is None:
        nl = torch.full_like(u, float(layers))
    else:
        rp = fx * zoom * radius[None] / z
        nl = torch.zeros_like(u)
        for layer in range(layers):
            nl = nl + (rp * (2.0**-layer) >= radius_threshold).to(u.dtype)
    nl = torch.where(keep, nl, torch.zeros_like(nl))
    return torch.stack([u, v, z, nl], dim=-1)


def projection_vjp(
    points_cam: Tensor, intrinsics: Tensor, distortion: Tensor, crops: Tensor, grad_uv: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """Pull a gradient w.r.t. layer-0 crop pixels back to camera points, intrinsics and distortion (analytic).

    Rows are independent (one per point-view pair), so this is vectorised over ``M``.

    Args:
        points_cam: ``[M, 3]`` camera-space points.
        intrinsics: ``[M, 4]`` ``(fx, fy, cx, cy)``.
        distortion: ``[M, 8]`` OpenCV order.
        crops: ``[M, 3]`` ``(zoom, ox, oy)``.
        grad_uv: ``[M, 2]`` dL/d(u', v').

    Returns:
        ``(dL/dp_cam [M,3], dL/dK [M,4], dL/ddist [M,8])``.
    """
    X, Y, Z = points_cam.unbind(-1)
    fx, fy = intrinsics[:, 0], intrinsics[:, 1]
    k1, k2, p1, p2, k3, k4, k5, k6 = distortion.unbind(-1)
    zoom = crops[:, 0]
    gu, gv = grad_uv[:, 0] * zoom, grad_uv[:, 1] * zoom  # dL/du, dL/dv (before the crop)
    x, y = X / Z, Y / Z
    r2 = x * x + y * y
    r4 = r2 * r2
    r6 = r4 * r2
    a = 1 + k1 * r2 + k2 * r4 + k3 * r6
    b = 1 + k4 * r2 + k5 * r4 + k6 * r6
    rad = a / b
    da = k1 + 2 * k2 * r2 + 3 * k3 * r4
    db = k4 + 2 * k5 * r2 + 3 * k6 * r4
    drad = (da * b - a * db) / (b * b)  # d rad / d r2
    xd = x * rad + 2 * p1 * x * y + p2 * (r2 + 2 * x * x)
    yd = y * rad + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y
    gxd, gyd = gu * fx, gv * fy
    dxd_dx = rad + 2 * x * x * drad + 2 * p1 * y + 6 * p2 * x
    dxd_dy = 2 * x * y * drad + 2 * p1 * x + 2 * p2 * y
    dyd_dy = rad + 2 * y * y * drad + 6 * p1 * y + 2 * p2 * x
    gx = gxd * dxd_dx + gyd * dxd_dy  # dyd/dx == dxd/dy
    gy = gxd * dxd_dy + gyd * dyd_dy
    d_pc = torch.stack([gx / Z, gy / Z, -(gx * x + gy * y) / Z], dim=-1)
    d_k = torch.stack([gu * xd, gv * yd, gu, gv], dim=-1)
    inv_b = 1 / b
    radial_terms = gxd * x + gyd * y
    d_dist = torch.stack(
        [
            radial_terms * r2 * inv_b,
            radial_terms * r4 * inv_b,
            gxd * 2 * x * y + gyd * (r2 + 2 * y * y),
            gxd * (r2 + 2 * x * x) + gyd * 2 * x * y,
            radial_terms * r6 * inv_b,
            -radial_terms * rad * r2 * inv_b,
            -radial_terms * rad * r4 * inv_b,
            -radial_terms * rad * r6 * inv_b,
        ],
        dim=-1,
    )
    return d_pc, d_k, d_dist


def view_directions(
    rotations: Tensor,  # [B,3,3]
    intrinsics: Tensor,  # [B,4]
    distortion: Tensor,  # [B,8]
    crops: Tensor,  # [B,3]
    size: tuple[int, int],
    layer: int,
) -> Tensor:
    """World-space unit view rays through the pixel centres of pyramid layer ``layer``; ``[B, H_l, W_l, 3]``.

    Inverts the crop, K and the distortion (iteratively), then rotates camera rays to world (``Rᵀ d``).
    """
    width, height = size[0] >> layer, size[1] >> layer
    dtype, device = intrinsics.dtype, intrinsics.device
    scale = 2.0**layer
    xs = (torch.arange(width, dtype=dtype, device=device) + 0.5) * scale
    ys = (torch.arange(height, dtype=dtype, device=device) + 0.5) * scale
    v_crop, u_crop = torch.meshgrid(ys, xs, indexing="ij")  # [H,W]
    zoom, ox, oy = (crops[:, i, None, None] for i in range(3))
    fx, fy, ppx, ppy = (intrinsics[:, i, None, None] for i in range(4))
    xd = ((u_crop[None] + ox) / zoom - ppx) / fx
    yd = ((v_crop[None] + oy) / zoom - ppy) / fy
    x, y = undistort(xd, yd, distortion[:, None, None, :])
    d_cam = torch.stack([x, y, torch.ones_like(x)], dim=-1)
    d_cam = d_cam / d_cam.norm(dim=-1, keepdim=True)
    return torch.einsum("bji,bhwj->bhwi", rotations, d_cam)


def sample_environment(environment_map: Tensor, directions: Tensor) -> Tensor:
    """Sample an equirectangular map along world rays as ADOP does (``RenderModule.cpp``; docs/method.md §3).

    ``u = frac(atan2(-d_z, d_x) / 2π)``, ``v = 1 - acos(d_y) / π``, bilinear with ``align_corners=True`` and border
    padding. ADOP's world "up" is -y (colmap2adop), so the map's top row looks along -y.

    Args:
        environment_map: ``[C, He, We]``.
        directions: ``[B, H, W, 3]`` unit world rays.

    Returns:
        ``[B, C, H, W]`` samples.
    """
    dx, dy, dz = directions.unbind(-1)
    u = torch.remainder(torch.atan2(-dz, dx) / (2 * math.pi), 1.0)
    v = 1 - torch.acos(dy.clamp(-1.0, 1.0)) / math.pi
    grid = torch.stack([2 * u - 1, 2 * v - 1], dim=-1).to(environment_map.dtype)
    env = environment_map[None].expand(directions.shape[0], -1, -1, -1)
    return torch.nn.functional.grid_sample(env, grid, mode="bilinear", padding_mode="border", align_corners=True)
