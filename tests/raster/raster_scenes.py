"""Small synthetic scenes for the rasterizer tests (imported by the test modules; not a test file)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from adop.raster import RasterConfig, RasterOutput, rasterize


@dataclass
class Scene:
    """Points plus B views, ready to pass to :func:`rasterize`."""

    positions: Tensor
    normals: Tensor
    radius: Tensor
    descriptors: Tensor
    background: Tensor
    rotations: Tensor
    translations: Tensor
    intrinsics: Tensor
    distortion: Tensor
    crops: Tensor
    size: tuple[int, int]

    def render(self, config: RasterConfig, seed: int = 0, **overrides: object) -> RasterOutput:
        kwargs: dict[str, object] = dict(
            normals=self.normals, radius=self.radius, distortion=self.distortion, crops=self.crops,
            config=config, generator=torch.Generator().manual_seed(seed),
        )
        kwargs.update(overrides)
        return rasterize(self.positions, self.descriptors, self.background, self.rotations, self.translations,
                         self.intrinsics, self.size, **kwargs)  # type: ignore[arg-type]


def rotation(axis: Tensor, angle: float) -> Tensor:
    """Rodrigues rotation matrix (float64)."""
    a = axis.double() / axis.double().norm()
    k = torch.tensor([[0, -a[2], a[1]], [a[2], 0, -a[0]], [-a[1], a[0], 0]], dtype=torch.float64)
    return torch.eye(3, dtype=torch.float64) + math.sin(angle) * k + (1 - math.cos(angle)) * k @ k


def random_scene(
    seed: int,
    points: int = 400,
    views: int = 2,
    size: tuple[int, int] = (48, 32),
    channels: int = 4,
    dtype: torch.dtype = torch.float32,
    distorted: bool = True,
    cropped: bool = False,
) -> Scene:
    """A noisy slab of points in front of B cameras that look at it from slightly different poses."""
    g = torch.Generator().manual_seed(seed)
    w, h = size
    pos = torch.rand(points, 3, generator=g, dtype=torch.float64) * torch.tensor([2.4, 1.6, 0.6]) - torch.tensor(
        [1.2, 0.8, -2.7])
    normals = torch.randn(points, 3, generator=g, dtype=torch.float64)
    normals[:, 2] = -normals[:, 2].abs() - 0.3  # mostly facing the cameras (-z), a few away after the rotation
    normals = normals / normals.norm(dim=1, keepdim=True)
    radius = 0.02 + 0.08 * torch.rand(points, generator=g, dtype=torch.float64)
    rots, trans = [], []
    for _ in range(views):
        axis = torch.randn(3, generator=g, dtype=torch.float64)
        rot = rotation(axis, 0.15 * float(torch.rand(1, generator=g)))
        rots.append(rot)
        trans.append(torch.randn(3, generator=g, dtype=torch.float64) * 0.1)
    f = 0.9 * w
    intr = torch.tensor([[f, f * 1.05, w / 2 + 0.3, h / 2 - 0.2]], dtype=torch.float64).repeat(views, 1)
    dist = torch.zeros(views, 8, dtype=torch.float64)
    if distorted:
        dist[:, :5] = torch.tensor([-0.08, 0.02, 0.002, -0.001, 0.001])
        dist[:, 5] = 0.01
    crops = torch.tensor([[1.0, 0.0, 0.0]], dtype=torch.float64).repeat(views, 1)
    if cropped:
        crops[:, 0] = 1.25
        crops[:, 1] = 3.0
        crops[:, 2] = 2.0
    return Scene(
        positions=pos.to(dtype), normals=normals.to(dtype), radius=radius.to(dtype),
        descriptors=torch.rand(points, channels, generator=g, dtype=torch.float64).to(dtype),
        background=torch.full((channels,), -1.0, dtype=dtype),
        rotations=torch.stack(rots).to(dtype), translations=torch.stack(trans).to(dtype),
        intrinsics=intr.to(dtype), distortion=dist.to(dtype), crops=crops.to(dtype), size=size,
    )
