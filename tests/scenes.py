"""Random scenes for tests: one camera of every supported model, random poses, a random coloured cloud."""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from adop.scene import Camera, Frame, PointCloud, Scene


def make_random_scene(seed: int = 0, n_points: int = 500, n_frames: int = 6) -> Scene:
    """A scene with one camera of every supported model, random poses and a random coloured cloud."""
    rng = np.random.default_rng(seed)
    cameras = [
        Camera("PINHOLE", 64, 48, (60.0, 61.0, 32.0, 24.0)),
        Camera("SIMPLE_RADIAL", 80, 60, (70.0, 40.0, 30.0, -0.05)),
        Camera("RADIAL", 80, 60, (70.0, 40.0, 30.0, -0.05, 0.01)),
        Camera("OPENCV", 64, 48, (60.0, 62.0, 31.5, 24.5, -0.03, 0.004, 0.001, -0.002)),
        Camera(
            "FULL_OPENCV",
            64,
            48,
            (60.0, 62.0, 31.5, 24.5, -0.03, 0.004, 0.001, -0.002, 0.0005, 0.01, -0.002, 0.0001),
        ),
    ]
    frames = []
    for i in range(n_frames):
        rotation = Rotation.random(random_state=int(rng.integers(1 << 30))).as_matrix()
        frames.append(
            Frame(
                name=f"img_{i:03d}.jpg",
                camera_index=i % len(cameras),
                rotation=rotation,
                translation=rng.normal(size=3),
                exposure_ev=float(rng.uniform(8, 12)),
            )
        )
    normals = rng.normal(size=(n_points, 3))
    normals /= np.linalg.norm(normals, axis=1, keepdims=True)
    points = PointCloud(
        positions=rng.normal(size=(n_points, 3)) * 3.0,
        normals=normals,
        colors=rng.integers(0, 256, size=(n_points, 3)),
    )
    return Scene(cameras=cameras, frames=frames, points=points, up=(0.0, -1.0, 0.0))
