"""A textured ground plane seen from above by a few pinhole cameras: exact depth everywhere, rendered in milliseconds.

The texture is smooth random noise (a blurred random grid, bilinearly sampled), so every window has texture except
where a test paints a flat patch; the true depth of a pixel is the distance along the optical axis to the plane z = 0.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image
from scipy.ndimage import gaussian_filter, map_coordinates
from scipy.spatial.transform import Rotation

from adop.scene import Camera, Frame, PointCloud, Scene

WIDTH, HEIGHT, FOCAL = 96, 72, 90.0
HEIGHT_ABOVE = 3.0


def _look_down(center: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    forward = (target - center) / np.linalg.norm(target - center)
    right = np.cross(forward, [0.0, 1.0, 0.0])
    right /= np.linalg.norm(right)
    down = np.cross(forward, right)
    rotation = np.stack([right, down, forward])  # rows: camera axes in world coordinates
    return rotation, -rotation @ center


def plane_scene(num_views: int = 5, seed: int = 0, baseline: float = 0.35, radial: float = 0.0,
                grazing: bool = False) -> tuple[Scene, np.ndarray]:
    """The scene (cameras in a row above the plane, sparse points on it) and the texture grid; ``radial`` makes the
    camera SIMPLE_RADIAL with that k1; ``grazing`` puts the cameras 1 m above the plane looking ahead along it (a
    road seen from a car) instead of 3 m above it looking down."""
    rng = np.random.default_rng(seed)
    texture = gaussian_filter(rng.random((400, 400)), 1.5)
    texture = (texture - texture.min()) / (texture.max() - texture.min())
    camera = (Camera("SIMPLE_RADIAL", WIDTH, HEIGHT, (FOCAL, WIDTH / 2, HEIGHT / 2, radial)) if radial else
              Camera("PINHOLE", WIDTH, HEIGHT, (FOCAL, FOCAL, WIDTH / 2, HEIGHT / 2)))
    frames = []
    for i in range(num_views):
        offset = (i - (num_views - 1) / 2) * baseline
        if grazing:
            center = np.array([offset, -3.0 + 0.1 * np.sin(i), 1.0])
            rotation, translation = _look_down(center, np.array([offset * 0.5, 0.0, 0.0]))
        else:
            center = np.array([offset, 0.1 * np.sin(i), HEIGHT_ABOVE])
            rotation, translation = _look_down(center, np.array([offset * 0.5, 0.0, 0.0]))
        rotation = Rotation.from_rotvec([0, 0, 0.02 * i]).as_matrix() @ rotation
        frames.append(Frame(f"view_{i:02d}.png", 0, rotation, -rotation @ center))
    xy = rng.uniform(-1.2, 1.2, size=(400, 2))
    points = PointCloud(np.column_stack([xy, np.zeros(len(xy))]), colors=np.full((len(xy), 3), 128, np.uint8))
    return Scene([camera], frames, points), texture


def plane_texture(texture: np.ndarray, xy: np.ndarray) -> np.ndarray:
    """Grey level of the plane at world ``xy`` (``[N, 2]``), the texture spanning [-4, 4]²."""
    coords = (xy + 4.0) / 8.0 * (texture.shape[0] - 1)
    return map_coordinates(texture, [coords[:, 1], coords[:, 0]], order=1, mode="reflect")


def render_view(scene: Scene, texture: np.ndarray, index: int, *, gain: float = 1.0, offset: float = 0.0,
                flat_box: tuple[float, float, float, float] | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(image [H, W, 3] uint8, true depth [H, W])`` of view ``index`` through its camera (lens distortion
    included); ``flat_box`` (x0, y0, x1, y1) paints that part of the plane one flat grey."""
    frame = scene.frames[index]
    camera = scene.cameras[frame.camera_index]
    u, v = np.meshgrid(np.arange(WIDTH) + 0.5, np.arange(HEIGHT) + 0.5)
    xy = camera.unproject(np.stack([u.ravel(), v.ravel()], -1))
    rays_cam = np.column_stack([xy, np.ones(len(xy))])
    rays = rays_cam @ frame.rotation  # camera → world directions
    center = frame.center
    t = -center[2] / np.where(rays[:, 2] < -1e-9, rays[:, 2], -1e-9)
    hits_plane = rays[:, 2] < -1e-9
    t = np.where(hits_plane, t, 0.0)
    hit = center + t[:, None] * rays
    grey = np.where(hits_plane, plane_texture(texture, hit[:, :2]), 0.5)  # the sky above the horizon: flat
    if flat_box is not None:
        x0, y0, x1, y1 = flat_box
        inside = (hit[:, 0] > x0) & (hit[:, 0] < x1) & (hit[:, 1] > y0) & (hit[:, 1] < y1)
        grey[inside] = 0.5
    grey = np.clip(grey * gain + offset, 0, 1)
    image = np.repeat((grey.reshape(HEIGHT, WIDTH, 1) * 255).round().astype(np.uint8), 3, axis=2)
    depth = (t[:, None] * rays_cam)[:, 2].reshape(HEIGHT, WIDTH)
    return image, depth


def write_plane_capture(folder: Path, num_views: int = 5, radial: float = 0.0,
                        **render: object) -> tuple[Scene, list[np.ndarray]]:
    """Render every view into ``folder`` as PNG; returns the scene (``image_dir`` = folder) and the true depths."""
    scene, texture = plane_scene(num_views, radial=radial)
    folder.mkdir(parents=True, exist_ok=True)
    depths = []
    for index, frame in enumerate(scene.frames):
        image, depth = render_view(scene, texture, index, **render)  # type: ignore[arg-type]
        Image.fromarray(image).save(folder / frame.name)
        depths.append(depth)
    scene.image_dir = folder
    return scene, depths
