"""CPU ray tracing of the synthetic world's linear radiance through a distorted camera.

Each pixel averages ``s×s`` rays on a regular sub-pixel grid; with pixel centres at +0.5 (docs/conventions.md) the
sub-sample ``(a, b)`` of pixel ``(i, j)`` sits at ``u = i + (a + 0.5)/s``, ``v = j + (b + 0.5)/s``. Rays are made with
``Camera.unproject`` — the same camera model that is written to disk — so the images show exactly the distortion the
ground truth claims; the self-consistency test checks that independently with ``Camera.project``.
"""

from __future__ import annotations

import numpy as np

from adop.scene import Camera
from adop.synth.world import SynthWorld

_CHUNK_RAYS = 1 << 18


def pixel_samples(camera: Camera, supersampling: int) -> np.ndarray:
    """Sub-pixel sample positions ``[H·W·s², 2]`` ordered by (row, column, sub-row, sub-column)."""
    s = supersampling
    offsets = (np.arange(s) + 0.5) / s
    u = (np.arange(camera.width)[:, None] + offsets[None, :]).reshape(-1)  # [W·s]
    v = (np.arange(camera.height)[:, None] + offsets[None, :]).reshape(-1)  # [H·s]
    uu, vv = np.meshgrid(u, v)  # [H·s, W·s]
    grid = np.stack([uu, vv], axis=-1).reshape(camera.height, s, camera.width, s, 2)
    return grid.transpose(0, 2, 1, 3, 4).reshape(-1, 2)


def trace_radiance(
    world: SynthWorld, camera: Camera, rotation: np.ndarray, translation: np.ndarray, supersampling: int = 2
) -> np.ndarray:
    """Linear radiance ``[H, W, 3]`` float32 seen by ``camera`` at world→camera pose ``(rotation, translation)``.

    Args:
        world: the scene to render.
        camera: intrinsics and distortion (any supported model).
        rotation: ``[3, 3]`` world→camera rotation.
        translation: ``[3]`` world→camera translation.
        supersampling: rays per pixel along each axis; the pixel value is their mean (box filter).

    Returns:
        Radiance before any camera effect (exposure, white balance, vignetting, response), in the world's units.
    """
    rotation = np.asarray(rotation, dtype=np.float64)
    center = -rotation.T @ np.asarray(translation, dtype=np.float64)
    samples = pixel_samples(camera, supersampling)
    out = np.empty((len(samples), 3), dtype=np.float32)
    for start in range(0, len(samples), _CHUNK_RAYS):
        chunk = samples[start : start + _CHUNK_RAYS]
        xy = camera.unproject(chunk)
        directions = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ rotation  # R^T · d_cam, row-wise
        directions /= np.linalg.norm(directions, axis=1, keepdims=True)
        out[start : start + len(chunk)] = shade_rays(world, center, directions)
    s2 = supersampling * supersampling
    return out.reshape(camera.height, camera.width, s2, 3).mean(axis=2, dtype=np.float64).astype(np.float32)


def shade_rays(world: SynthWorld, origin: np.ndarray, directions: np.ndarray) -> np.ndarray:
    """Radiance ``[N, 3]`` arriving along rays from one ``origin`` with unit ``directions [N, 3]``."""
    origins = np.broadcast_to(origin, directions.shape)
    t_hit, triangle = world.cast(origins, directions)
    hit = triangle >= 0
    radiance = np.empty((len(directions), 3), dtype=np.float32)
    radiance[~hit] = world.sky(directions[~hit])
    if hit.any():
        points = origin + t_hit[hit, None] * directions[hit]
        normals = world.surface_normals(points, triangle[hit])
        # single-sided quads and solids are seen from outside; flip any normal that faces away from the viewer
        backfacing = np.einsum("ij,ij->i", normals, directions[hit]) > 0
        normals[backfacing] *= -1.0
        radiance[hit] = world.radiance(points, normals, triangle[hit])
    return radiance
