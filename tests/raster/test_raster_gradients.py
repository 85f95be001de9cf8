"""Gradients of the rasterizer: exact ones by finite differences, ADOP's approximate ones by their direction."""

from __future__ import annotations

import math

import pytest
import torch
from raster_scenes import Scene, random_scene, rotation

from adop.raster import RasterConfig, apply_pose_tangent, rasterize, se3_exp
from adop.raster.projection import camera_points, distort, projection_vjp

torch.set_num_threads(2)


def _tiny(seed: int) -> Scene:
    return random_scene(seed, points=40, views=2, size=(12, 8), channels=3, dtype=torch.float64)


def test_gradcheck_descriptors_and_background() -> None:
    scene = _tiny(0)
    cfg = RasterConfig(layers=3, dropout=0.25, backend="torch")

    def f(desc: torch.Tensor, bg: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = rasterize(scene.positions, desc, bg, scene.rotations, scene.translations, scene.intrinsics,
                        scene.size, normals=scene.normals, radius=scene.radius * 5, distortion=scene.distortion,
                        config=cfg, generator=torch.Generator().manual_seed(1))
        return out.features

    desc = scene.descriptors.clone().requires_grad_()
    bg = scene.background.clone().requires_grad_()
    assert torch.autograd.gradcheck(f, (desc, bg), eps=1e-6, atol=1e-8)


def test_gradcheck_environment_map() -> None:
    scene = _tiny(1)
    env = torch.rand(3, 4, 8, dtype=torch.float64, requires_grad=True)

    def f(env_map: torch.Tensor) -> tuple[torch.Tensor, ...]:
        out = scene.render(RasterConfig(layers=2, dropout=0.25, backend="torch"), seed=2, environment_map=env_map)
        return out.features

    assert torch.autograd.gradcheck(f, (env,), eps=1e-6, atol=1e-8, fast_mode=True)


def test_projection_vjp_matches_autograd() -> None:
    g = torch.Generator().manual_seed(0)
    m = 64
    pc = torch.randn(m, 3, generator=g, dtype=torch.float64) * 0.4 + torch.tensor([0.0, 0.0, 2.0],
                                                                                   dtype=torch.float64)
    k = torch.tensor([300.0, 310.0, 160.0, 120.0], dtype=torch.float64).repeat(m, 1)
    dist = (torch.randn(m, 8, generator=g, dtype=torch.float64) * 0.05)
    crops = torch.tensor([1.3, 5.0, 7.0], dtype=torch.float64).repeat(m, 1)
    gu = torch.randn(m, 2, generator=g, dtype=torch.float64)
    pc_, k_, d_ = (t.clone().requires_grad_() for t in (pc, k, dist))
    xd, yd = distort(pc_[:, 0] / pc_[:, 2], pc_[:, 1] / pc_[:, 2], d_)
    u = crops[:, 0] * (k_[:, 0] * xd + k_[:, 2]) - crops[:, 1]
    v = crops[:, 0] * (k_[:, 1] * yd + k_[:, 3]) - crops[:, 2]
    ref = torch.autograd.grad((u * gu[:, 0] + v * gu[:, 1]).sum(), (pc_, k_, d_))
    ours = projection_vjp(pc, k, dist, crops, gu)
    for a, b in zip(ours, ref):
        torch.testing.assert_close(a, b)


def test_se3_exp_matches_matrix_exponential() -> None:
    g = torch.Generator().manual_seed(0)
    tangent = torch.randn(5, 6, generator=g, dtype=torch.float64) * 0.7
    tangent[0] = 0.0
    tangent[1, 3:] = 1e-6
    rot, trans = se3_exp(tangent)
    twist = torch.zeros(5, 4, 4, dtype=torch.float64)
    w = tangent[:, 3:]
    twist[:, 0, 1], twist[:, 0, 2], twist[:, 1, 2] = -w[:, 2], w[:, 1], -w[:, 0]
    twist[:, 1, 0], twist[:, 2, 0], twist[:, 2, 1] = w[:, 2], -w[:, 1], w[:, 0]
    twist[:, :3, 3] = tangent[:, :3]
    ref = torch.linalg.matrix_exp(twist)
    torch.testing.assert_close(rot, ref[:, :3, :3])
    torch.testing.assert_close(trans, ref[:, :3, 3])


def _plane(seed: int, points: int = 3000, size: tuple[int, int] = (64, 48)) -> Scene:
    """Dense textured plane at z ~ 3 facing the camera, about one point per layer-0 pixel."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    f = 40.0
    pos = torch.rand(points, 3, generator=g) * torch.tensor([2.4 * 3 * w / (2 * f) / 1.2, 3 * h / f, 0.02])
    pos = pos - torch.tensor([3 * w / (2 * f), 1.5 * h / f, -3.0])
    return Scene(
        positions=pos, normals=torch.tensor([[0.0, 0.0, -1.0]]).expand(points, 3).contiguous(), radius=None,
        descriptors=torch.rand(points, 4, generator=g), background=torch.full((4,), -1.0),
        rotations=torch.eye(3)[None], translations=torch.zeros(1, 3),
        intrinsics=torch.tensor([[f, f, w / 2, h / 2]]), distortion=torch.zeros(1, 8),
        crops=torch.tensor([[1.0, 0.0, 0.0]]), size=size,
    )  # type: ignore[arg-type]


def _loss(features: tuple[torch.Tensor, ...], target: tuple[torch.Tensor, ...]) -> torch.Tensor:
    return sum(((a - b) ** 2).mean() for a, b in zip(features, target))  # type: ignore[return-value]


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_pose_gradient_points_towards_target_pose(backend: str) -> None:
    agree, lowered, cases = 0, 0, 16
    for case in range(cases):
        scene = _plane(case)
        g = torch.Generator().manual_seed(100 + case)
        true = torch.randn(1, 6, generator=g, dtype=torch.float64)
        true[:, :3] *= 0.03  # ~0.4 px of translation
        true[:, 3:] *= 0.012  # ~0.5 px of rotation
        eval_cfg = RasterConfig(dropout=0.0, backend=backend)
        rot_t, trans_t = apply_pose_tangent(scene.rotations, scene.translations, true)
        target = rasterize(scene.positions, scene.descriptors, scene.background, rot_t, trans_t, scene.intrinsics,
                           scene.size, config=eval_cfg).features
        tangent = torch.zeros(1, 6, dtype=torch.float64, requires_grad=True)
        out = scene.render(RasterConfig(dropout=0.25, backend=backend), seed=case, pose_tangent=tangent)
        _loss(out.features, target).backward()
        grad = tangent.grad
        assert grad is not None and torch.isfinite(grad).all() and grad.abs().sum() > 0
        agree += int((-grad * true).sum() > 0)
        # Rotation moves pixels ~3x more per unit than translation here, so the gradient is rotation-heavy: take a
        # step a quarter of the true offset's length, which moves the image by roughly a pixel.
        step = -grad / grad.norm() * true.norm() * 0.25
        before = _loss(scene.render(eval_cfg).features, target)
        after = _loss(scene.render(eval_cfg, pose_tangent=step).features, target)
        lowered += int(after < before)
    assert agree >= 0.8 * cases, f"descent direction agreed with the true pose offset in {agree}/{cases} cases"
    assert lowered >= 0.8 * cases, f"a step against the gradient lowered the loss in {lowered}/{cases} cases"


@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_point_gradient_points_towards_target_position(backend: str) -> None:
    """Sparse points, each target shifted by ~1.2 px in a random direction; every point is a ghost."""
    g = torch.Generator().manual_seed(0)
    n, size, f, z = 60, (96, 72), 50.0, 2.0
    grid = torch.stack(torch.meshgrid(torch.arange(10), torch.arange(6), indexing="xy"), -1).reshape(-1, 2)
    pix = grid.float() * torch.tensor([8.0, 10.0]) + torch.tensor([10.0, 10.0]) + torch.rand(n, 2, generator=g)
    pos = torch.cat([(pix - torch.tensor([48.0, 36.0])) * z / f, torch.full((n, 1), z)], dim=1)
    angle = torch.rand(n, generator=g) * 2 * math.pi
    shift = torch.stack([angle.cos(), angle.sin(), torch.zeros(n)], dim=1) * 1.2 * z / f
    desc = torch.rand(n, 4, generator=g) + 0.5
    common = dict(rotations=torch.eye(3)[None], translations=torch.zeros(1, 3),
                  intrinsics=torch.tensor([[f, f, 48.0, 36.0]]), size=size)
    target = rasterize(pos + shift, desc, torch.zeros(4), config=RasterConfig(dropout=0.0, layers=2),
                       **common).features  # type: ignore[arg-type]
    p = pos.clone().requires_grad_()
    cfg = RasterConfig(dropout=1.0, layers=2, point_gradients=True, backend=backend)
    out = rasterize(p, desc, torch.zeros(4), config=cfg, **common)  # type: ignore[arg-type]
    _loss(out.features, target).backward()
    assert p.grad is not None
    moved = p.grad[:, :2].norm(dim=1) > 0
    agree = ((-p.grad * shift).sum(dim=1) > 0) & moved
    # Only the 4-neighbourhood is probed: a point whose target pixel is a diagonal neighbour at every layer gets
    # no gradient (a limitation of ADOP's scheme), hence "most", not all.
    assert moved.float().mean() > 0.75
    assert agree.sum() >= 0.95 * moved.sum(), f"{int(agree.sum())}/{int(moved.sum())} point towards the target"
    assert torch.all(p.grad[:, 2].abs() < p.grad[:, :2].norm(dim=1) + 1e-12)  # mostly in the image plane


def test_intrinsics_gradient_points_towards_target_focal_length() -> None:
    agree = 0
    for case in range(6):
        scene = _plane(case)
        sign = 1.0 if case % 2 == 0 else -1.0
        k_target = scene.intrinsics * torch.tensor([[1 + 0.03 * sign, 1 + 0.03 * sign, 1.0, 1.0]])
        target = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations,
                           scene.translations, k_target, scene.size, config=RasterConfig(dropout=0.0)).features
        k = scene.intrinsics.clone().requires_grad_()
        out = rasterize(
            scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations, k,
            scene.size, config=RasterConfig(dropout=0.25, intrinsics_gradients=True),
            generator=torch.Generator().manual_seed(case))
        _loss(out.features, target).backward()
        assert k.grad is not None
        agree += int(-k.grad[0, 0] * sign > 0) + int(-k.grad[0, 1] * sign > 0)
    assert agree >= 10


def test_spatial_gradients_off_by_default_for_points_and_intrinsics() -> None:
    scene = random_scene(2, points=200, views=1)
    p = scene.positions.clone().requires_grad_()
    k = scene.intrinsics.clone().requires_grad_()
    d = scene.descriptors.clone().requires_grad_()
    out = rasterize(p, d, scene.background, scene.rotations, scene.translations, k, scene.size,
                    config=RasterConfig())
    sum(f.sum() for f in out.features).backward()
    assert p.grad is None and k.grad is None and d.grad is not None


def test_rotation_helper_is_orthonormal() -> None:
    r = rotation(torch.tensor([1.0, 2.0, 3.0]), 0.3)
    torch.testing.assert_close(r @ r.T, torch.eye(3, dtype=torch.float64))
    pts = torch.randn(5, 3, dtype=torch.float64)
    torch.testing.assert_close(camera_points(pts, r[None], torch.zeros(1, 3).double())[0], pts @ r.T)
