"""The compiled C++ backend against the PyTorch reference: depth and counts exact, accumulations within float
tolerance, backward (exact and approximate gradients) within tolerance."""

from __future__ import annotations

import pytest
import torch
from raster_scenes import random_scene

from adop.raster import RasterConfig, _cpp, rasterize

torch.set_num_threads(2)
pytestmark = pytest.mark.skipif(not _cpp.available(), reason="C++ extension could not be built")

CASES = [
    dict(seed=0, views=1, size=(48, 32), cropped=False, dropout=0.0),
    dict(seed=1, views=3, size=(50, 37), cropped=True, dropout=0.25),  # odd sizes: points falling off coarse layers
    dict(seed=2, views=2, size=(64, 48), cropped=False, dropout=0.5),
]


def _run(case: dict, backend: str, **cfg_kw: object):
    scene = random_scene(case["seed"], points=3000, views=case["views"], size=case["size"], cropped=case["cropped"])
    cfg = RasterConfig(dropout=case["dropout"], backend=backend, point_gradients=True, intrinsics_gradients=True,
                       **cfg_kw)  # type: ignore[arg-type]
    leaves = dict(
        positions=scene.positions.clone().requires_grad_(), descriptors=scene.descriptors.clone().requires_grad_(),
        background=scene.background.clone().requires_grad_(), intrinsics=scene.intrinsics.clone().requires_grad_(),
        distortion=scene.distortion.clone().requires_grad_(),
        pose_tangent=torch.zeros(case["views"], 6, dtype=torch.float64, requires_grad=True),
    )
    out = rasterize(leaves["positions"], leaves["descriptors"], leaves["background"], scene.rotations,
                    scene.translations, leaves["intrinsics"], scene.size, normals=scene.normals, radius=scene.radius,
                    distortion=leaves["distortion"], crops=scene.crops, pose_tangent=leaves["pose_tangent"],
                    config=cfg, generator=torch.Generator().manual_seed(case["seed"]))
    assert out.backend == backend
    cot = torch.Generator().manual_seed(99)
    loss = sum((f * torch.randn(f.shape, generator=cot)).sum() for f in out.features)
    loss.backward()
    return out, {k: v.grad for k, v in leaves.items()}


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"seed{c['seed']}")
@pytest.mark.parametrize("ghost", [True, False])
def test_cpp_matches_torch_reference(case: dict, ghost: bool) -> None:
    ref, ref_grads = _run(case, "torch", ghost_gradients=ghost)
    out, grads = _run(case, "cpp", ghost_gradients=ghost)
    for layer in range(4):
        assert torch.equal(out.depths[layer], ref.depths[layer])
        assert torch.equal(out.counts[layer], ref.counts[layer])
        assert torch.equal(out.masks[layer], ref.masks[layer])
        torch.testing.assert_close(out.features[layer], ref.features[layer], rtol=1e-5, atol=1e-6)
    assert sum(int(m.sum()) for m in ref.masks) > 500  # the scene really covers the image
    for name in ("descriptors", "background"):
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-4, atol=1e-5)
    for name in ("positions", "pose_tangent", "intrinsics", "distortion"):
        if case["dropout"] == 0.0 and ghost:
            assert torch.all(ref_grads[name] == 0) and torch.all(grads[name] == 0)  # no ghosts, no spatial gradient
            continue
        assert ref_grads[name].abs().sum() > 0
        scale = ref_grads[name].abs().max()
        torch.testing.assert_close(grads[name], ref_grads[name], rtol=1e-3, atol=1e-4 * float(scale))


def test_cpp_is_independent_of_thread_count() -> None:
    case = CASES[1]
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one, _ = _run(case, "cpp")
        torch.set_num_threads(2)
        two, _ = _run(case, "cpp")
    finally:
        torch.set_num_threads(threads)
    for a, b in zip(one.features, two.features):
        assert torch.equal(a, b)
