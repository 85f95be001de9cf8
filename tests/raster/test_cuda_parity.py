"""The CuPy backend against the PyTorch reference on random scenes (skipped without a GPU or CuPy).

Depth buffers and counts must match exactly (same projection arithmetic, --fmad=false); blended values within float
tolerance (atomics change the summation order); gradients within tolerance. The dropout mask comes from one CPU
generator, so both devices drop the same points.
"""

from __future__ import annotations

import pytest
import torch
from raster_scenes import random_scene

from adop.raster import RasterConfig, _cuda, rasterize

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(not _cuda.available(), reason="CuPy is not installed"),
]

CASES = [
    dict(seed=0, views=1, size=(48, 32), cropped=False, dropout=0.0),
    dict(seed=1, views=3, size=(50, 37), cropped=True, dropout=0.25),  # odd sizes
    dict(seed=2, views=2, size=(640, 480), cropped=False, dropout=0.5),
]


def _run(case: dict, backend: str, device: str, ghost: bool):  # type: ignore[no-untyped-def]
    scene = random_scene(case["seed"], points=20000, views=case["views"], size=case["size"],
                         cropped=case["cropped"])
    cfg = RasterConfig(dropout=case["dropout"], backend=backend, ghost_gradients=ghost, point_gradients=True,
                       intrinsics_gradients=True)  # type: ignore[arg-type]
    leaves = dict(
        positions=scene.positions.to(device).requires_grad_(),
        descriptors=scene.descriptors.to(device).requires_grad_(),
        background=scene.background.to(device).requires_grad_(),
        intrinsics=scene.intrinsics.to(device).requires_grad_(),
        distortion=scene.distortion.to(device).requires_grad_(),
        pose_tangent=torch.zeros(case["views"], 6, dtype=torch.float64, device=device, requires_grad=True),
    )
    out = rasterize(leaves["positions"], leaves["descriptors"], leaves["background"], scene.rotations.to(device),
                    scene.translations.to(device), leaves["intrinsics"], scene.size,
                    normals=scene.normals.to(device), radius=scene.radius.to(device),
                    distortion=leaves["distortion"], crops=scene.crops.to(device),
                    pose_tangent=leaves["pose_tangent"], config=cfg,
                    generator=torch.Generator().manual_seed(case["seed"]))
    assert out.backend == backend
    cot = torch.Generator().manual_seed(99)
    loss = sum((f * torch.randn(f.shape, generator=cot).to(device)).sum() for f in out.features)
    loss.backward()
    return out, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c['seed']}")
@pytest.mark.parametrize("ghost", [True, False])
def test_cuda_matches_torch_reference(case: dict, ghost: bool) -> None:
    ref, ref_grads = _run(case, "torch", "cpu", ghost)
    out, grads = _run(case, "cuda", "cuda", ghost)
    for layer in range(len(ref.features)):
        assert torch.equal(out.depths[layer].cpu(), ref.depths[layer])
        assert torch.equal(out.counts[layer].cpu(), ref.counts[layer])
        torch.testing.assert_close(out.features[layer].cpu(), ref.features[layer], rtol=1e-5, atol=1e-5)
    for name, ref_grad in ref_grads.items():
        assert ref_grad is not None and grads[name] is not None
        scale = max(float(ref_grad.abs().max()), 1e-6)
        torch.testing.assert_close(grads[name].cpu(), ref_grad, rtol=1e-3, atol=1e-4 * scale)


def test_cuda_runs_on_the_current_stream() -> None:
    """The kernels must be ordered after earlier work on the caller's stream, not on the default stream.

    On a side stream, the point positions are first NaN, then (after a busy-wait kernel of tens of milliseconds)
    overwritten with the real ones. A rasterizer launched on the side stream sees the real positions; one launched
    on another stream would read the NaNs (every point culled) and the depth buffers would not match the reference.
    """
    scene = random_scene(3, points=5000, views=2, size=(64, 48))
    real = scene.positions.cuda()
    torch.cuda.synchronize()
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        positions = torch.full_like(real, float("nan"))
        torch.cuda._sleep(200_000_000)  # busy GPU cycles on this stream only
        positions.copy_(real)
        out = rasterize(positions, scene.descriptors.cuda(), scene.background.cuda(),
                        scene.rotations.cuda(), scene.translations.cuda(), scene.intrinsics.cuda(), scene.size,
                        config=RasterConfig(dropout=0.0, backend="cuda"))
    stream.synchronize()
    ref = rasterize(scene.positions, scene.descriptors, scene.background, scene.rotations, scene.translations,
                    scene.intrinsics, scene.size, config=RasterConfig(dropout=0.0, backend="torch"))
    for a, b in zip(out.depths, ref.depths):
        assert torch.equal(a.cpu(), b)


def test_cuda_backend_is_chosen_automatically() -> None:
    scene = random_scene(4, points=100, views=1)
    out = rasterize(scene.positions.cuda(), scene.descriptors.cuda(), scene.background.cuda(),
                    scene.rotations.cuda(), scene.translations.cuda(), scene.intrinsics.cuda(), scene.size)
    assert out.backend == "cuda"
