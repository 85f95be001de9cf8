"""Public entry point of the one-pixel point rasterizer: :func:`rasterize` and its output."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from adop.errors import ShapeError
from adop.raster.config import RasterConfig
from adop.raster.function import RasterizeFunction, resolve_backend
from adop.raster.projection import monotonic_radius2, sample_environment, view_directions


@dataclass(frozen=True)
class RasterOutput:
    """The neural-image pyramid: one entry per layer, layer l of size ``(W >> l, H >> l)``."""

    features: tuple[Tensor, ...]
    """``[B, C, H_l, W_l]``: mean descriptor of the blended points; background (+ environment map) where empty."""
    masks: tuple[Tensor, ...]
    """``[B, 1, H_l, W_l]``: 1 where at least one point was blended, else 0 (ADOP's background mask)."""
    depths: tuple[Tensor, ...]
    """``[B, 1, H_l, W_l]``: nearest camera-space z written at the pixel (dropped points included), 0 where none."""
    counts: tuple[Tensor, ...]
    """``[B, 1, H_l, W_l]``: number of points blended into the pixel."""
    backend: str
    """The backend that ran (``cuda``, ``cpp`` or ``torch``)."""


def _hat(w: Tensor) -> Tensor:
    zero = torch.zeros_like(w[..., 0])
    return torch.stack(
        [
            torch.stack([zero, -w[..., 2], w[..., 1]], dim=-1),
            torch.stack([w[..., 2], zero, -w[..., 0]], dim=-1),
            torch.stack([-w[..., 1], w[..., 0], zero], dim=-1),
        ],
        dim=-2,
    )


def se3_exp(tangent: Tensor) -> tuple[Tensor, Tensor]:
    """SE(3) exponential of ``[B, 6]`` tangents ``(v, ω)``, translation first as in ADOP/Sophus.

    Returns:
        ``(R [B,3,3], t [B,3])`` of ``exp(δ)``.
    """
    v, w = tangent[..., :3], tangent[..., 3:]
    theta2 = (w * w).sum(dim=-1)
    small = theta2 < 1e-8
    theta = torch.sqrt(torch.where(small, torch.ones_like(theta2), theta2))
    a = torch.where(small, 1 - theta2 / 6, torch.sin(theta) / theta)
    b = torch.where(small, 0.5 - theta2 / 24, (1 - torch.cos(theta)) / (theta * theta))
    c = torch.where(small, 1.0 / 6 - theta2 / 120, (theta - torch.sin(theta)) / (theta * theta * theta))
    hat = _hat(w)
    hat2 = hat @ hat
    eye = torch.eye(3, dtype=tangent.dtype, device=tangent.device).expand_as(hat)
    rot = eye + a[..., None, None] * hat + b[..., None, None] * hat2
    left_jacobian = eye + b[..., None, None] * hat + c[..., None, None] * hat2
    return rot, (left_jacobian @ v[..., None])[..., 0]


def apply_pose_tangent(rotations: Tensor, translations: Tensor, tangent: Tensor) -> tuple[Tensor, Tensor]:
    """ADOP's pose update ``V ← exp(δ)·V`` for world->camera poses (``ApplyTangentToPose``).

    Args:
        rotations: ``[B, 3, 3]``.
        translations: ``[B, 3]``.
        tangent: ``[B, 6]`` ``(v, ω)``.

    Returns:
        The updated ``(rotations, translations)``, in the dtype of ``rotations``.
    """
    rot_d, t_d = se3_exp(tangent.to(torch.float64))
    rot = rot_d @ rotations.to(torch.float64)
    trans = (rot_d @ translations.to(torch.float64)[..., None])[..., 0] + t_d
    return rot.to(rotations.dtype), trans.to(translations.dtype)


def _check(name: str, tensor: Tensor, shape: tuple[int | None, ...]) -> None:
    if tensor.dim() != len(shape) or any(s is not None and s != d for s, d in zip(shape, tensor.shape)):
        expected = "[" + ", ".join("*" if s is None else str(s) for s in shape) + "]"
        raise ShapeError(f"{name} must have shape {expected}, got {list(tensor.shape)}")


def rasterize(
    positions: Tensor,  # [N, 3]
    descriptors: Tensor,  # [N, C]
    background: Tensor,  # [C]
    rotations: Tensor,  # [B, 3, 3]
    translations: Tensor,  # [B, 3]
    intrinsics: Tensor,  # [B, 4]
    size: tuple[int, int],
    *,
    normals: Tensor | None = None,  # [N, 3]
    radius: Tensor | None = None,  # [N]
    distortion: Tensor | None = None,  # [B, 8]
    crops: Tensor | None = None,  # [B, 3]
    pose_tangent: Tensor | None = None,  # [B, 6]
    environment_map: Tensor | None = None,  # [C, He, We]
    config: RasterConfig | None = None,
    generator: torch.Generator | None = None,
) -> RasterOutput:
    """Render a neural-image pyramid from points with ADOP's one-pixel rasterizer (docs/method.md §3–4).

    Every point is projected once per view and written to the single pixel it falls in (``floor``, pixel centres at
    +0.5) of each pyramid layer it survives to. A depth pre-pass keeps the nearest z (dropped points included), a
    fuzzy pass blends every kept point with ``z <= (1 + depth_accept)·nearest``, and a resolve pass takes the plain
    mean, using ``background`` where nothing was blended. Conventions (poses world->camera, OpenCV distortion order,
    crop ``u' = zoom·u − ox``) are those of docs/conventions.md.

    .. note::
        Gradients to ``descriptors``, ``background`` and ``environment_map`` are exact. Gradients to ``positions``,
        ``pose_tangent``, ``intrinsics`` and ``distortion`` are ADOP's approximate "ghost" screen-space gradients,
        averaged as ADOP does, and only flow when switched on in ``config`` (see :class:`RasterConfig`).

    Args:
        positions: ``[N, 3]`` world positions.
        descriptors: ``[N, C]`` learned point descriptors.
        background: ``[C]`` learned background descriptor.
        rotations: ``[B, 3, 3]`` world->camera rotations (no gradient; use ``pose_tangent``).
        translations: ``[B, 3]`` world->camera translations (no gradient; use ``pose_tangent``).
        intrinsics: ``[B, 4]`` ``(fx, fy, cx, cy)`` in full-image pixels.
        size: ``(W, H)`` of layer 0 (the crop size when cropping).
        normals: ``[N, 3]`` world normals for back-face culling; None disables culling.
        radius: ``[N]`` per-point drop-out radius (kNN distance times sqrt(1/u)); None disables discarding.
        distortion: ``[B, 8]`` OpenCV order ``(k1, k2, p1, p2, k3, k4, k5, k6)``; default zeros.
        crops: ``[B, 3]`` ``(zoom, ox, oy)``; default ``(1, 0, 0)`` (the full image).
        pose_tangent: ``[B, 6]`` zeros with ``requires_grad`` to receive pose gradients; the forward pass uses
            ``exp(δ)·V``. Apply the step with :func:`apply_pose_tangent` and reset δ to zero afterwards.
        environment_map: ``[C, He, We]`` equirectangular map added to empty pixels along their view rays.
        config: :class:`RasterConfig`; default ``RasterConfig()`` (training dropout 0.25).
        generator: RNG for the dropout mask; the mask is drawn on the generator's device (a CPU generator gives
            the same mask for CPU and CUDA tensors). None uses the global RNG of the tensors' device.

    Returns:
        :class:`RasterOutput` with per-layer features, masks, depths and counts.

    Raises:
        ShapeError: a tensor has the wrong shape.
        ValueError: bad size, mixed devices, or gradients asked of ``rotations``/``translations``.
        TypeError: the requested compiled backend needs float32.
        RuntimeError: an explicitly requested backend is unavailable.

    Example:
        >>> import torch
        >>> from adop.raster import RasterConfig, rasterize
        >>> pts = torch.tensor([[0.0, 0.0, 2.0]])
        >>> out = rasterize(pts, torch.ones(1, 4), torch.zeros(4), torch.eye(3)[None], torch.zeros(1, 3),
        ...                 torch.tensor([[16.0, 16.0, 8.0, 8.0]]), (16, 16), config=RasterConfig(dropout=0.0))
        >>> [tuple(f.shape) for f in out.features]
        [(1, 4, 16, 16), (1, 4, 8, 8), (1, 4, 4, 4), (1, 4, 2, 2)]
        >>> out.features[0][0, :, 8, 8].tolist(), out.masks[0].sum().item()
        ([1.0, 1.0, 1.0, 1.0], 1.0)
    """
    cfg = config if config is not None else RasterConfig()
    n = positions.shape[0]
    _check("positions", positions, (None, 3))
    _check("descriptors", descriptors, (n, None))
    channels = descriptors.shape[1]
    _check("background", background, (channels,))
    _check("rotations", rotations, (None, 3, 3))
    views = rotations.shape[0]
    _check("translations", translations, (views, 3))
    _check("intrinsics", intrinsics, (views, 4))
    if normals is not None:
        _check("normals", normals, (n, 3))
    if radius is not None:
        _check("radius", radius, (n,))
    dtype, device = positions.dtype, positions.device
    if distortion is None:
        distortion = torch.zeros(views, 8, dtype=dtype, device=device)
    _check("distortion", distortion, (views, 8))
    if crops is None:
        crops = torch.tensor([[1.0, 0.0, 0.0]], dtype=dtype, device=device).expand(views, 3)
    _check("crops", crops, (views, 3))
    if pose_tangent is not None:
        _check("pose_tangent", pose_tangent, (views, 6))
    if environment_map is not None:
        _check("environment_map", environment_map, (channels, None, None))
    width, height = int(size[0]), int(size[1])
    if width < 1 or height < 1:
        raise ValueError(f"size must be positive (W, H), got {size}")
    if rotations.requires_grad or translations.requires_grad:
        raise ValueError("rotations/translations get no gradient; pass pose_tangent (zeros, requires_grad=True)")
    tensors = [descriptors, background, rotations, translations, intrinsics, distortion, crops, normals, radius,
               pose_tangent, environment_map]
    if any(t is not None and t.device != device for t in tensors):
        raise ValueError(f"all tensors must be on the device of positions ({device})")

    for name, t in (("descriptors", descriptors), ("background", background), ("environment_map", environment_map)):
        if t is not None and t.dtype != dtype:
            raise TypeError(f"{name} must have the dtype of positions ({dtype}), got {t.dtype}")
    backend = resolve_backend(cfg.backend, device, dtype)
    rot = rotations.detach().to(dtype)
    trans = translations.detach().to(dtype)
    if pose_tangent is not None:
        rot, trans = apply_pose_tangent(rot, trans, pose_tangent.detach())
    drop = None
    if cfg.dropout > 0:
        # Drawn on the generator's device, so a CPU generator gives the same mask for CPU and CUDA tensors.
        rng_device = generator.device if generator is not None else device
        drop = (torch.rand((views, n), generator=generator, device=rng_device) < cfg.dropout).to(device)

    def prep(t: Tensor | None) -> Tensor | None:
        return None if t is None else t.to(dtype).contiguous()

    outs = RasterizeFunction.apply(
        backend, cfg, (width, height), drop, positions.contiguous(), prep(normals), prep(radius),
        descriptors.contiguous(), background.contiguous(), rot.contiguous(), trans.contiguous(), prep(intrinsics),
        prep(distortion), prep(crops), monotonic_radius2(distortion.detach().to(dtype)), pose_tangent,
    )
    layers = cfg.layers
    features = list(outs[:layers])
    weights, depths = outs[layers:2 * layers], outs[2 * layers:]
    masks = tuple((w > 0).to(dtype)[:, None] for w in weights)
    if environment_map is not None:
        for layer in range(layers):
            rays = view_directions(rot, intrinsics.detach().to(dtype), distortion.detach().to(dtype),
                                   crops.detach().to(dtype), (width, height), layer)
            env = sample_environment(environment_map, rays).to(dtype)
            features[layer] = features[layer] + (1 - masks[layer]) * env
    return RasterOutput(
        features=tuple(features),
        masks=masks,
        depths=tuple(d[:, None] for d in depths),
        counts=tuple(w[:, None] for w in weights),
        backend=backend,
    )
