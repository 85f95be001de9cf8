"""``quicklook.png``: a top-down picture of the reconstruction (points in their colours, cameras as orange dots with
a viewing-direction tick), for studio users who judge a reconstruction by looking at it.

"Top" is the up vector estimated from the cameras (see ``estimate_up``): people hold cameras level, so the mean of
the cameras' up axes points up in world space even though SfM's axes are arbitrary. Written with numpy and
OpenImageIO only (its bundled DroidSans font draws the caption).
"""

from __future__ import annotations


import numpy as np
import OpenImageIO as oiio

from adop.scene.types import Scene

_BACKGROUND = np.array([28, 28, 32], dtype=np.uint8)
_CAMERA = np.array([255, 140, 0], dtype=np.uint8)


def estimate_up(scene: Scene) -> np.ndarray:
    """World up: mean of the cameras' up axes (``-y`` in OpenCV camera axes), normalised.

    Falls back to the least-spread axis of the camera centres when the cameras disagree (e.g. rolled by 90° half
    the time) and to +z for fewer than 3 frames.
    """
    if not scene.frames:
        return np.array([0.0, 0.0, 1.0])
    ups = np.array([-frame.rotation[1] for frame in scene.frames])
    mean = ups.mean(axis=0)
    if np.linalg.norm(mean) > 0.5:
        return mean / np.linalg.norm(mean)
    centers = scene.centers()
    if len(centers) < 3:
        return np.array([0.0, 0.0, 1.0])
    _, _, axes = np.linalg.svd(centers - centers.mean(axis=0))
    normal = axes[2]
    return normal if normal @ mean >= 0 else -normal


def _plane_basis(up: np.ndarray, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two axes spanning the ground plane, the first along the data's longest horizontal direction."""
    helper = np.eye(3)[int(np.argmin(np.abs(up)))]
    e1 = np.cross(up, helper)
    e1 /= np.linalg.norm(e1)
    e2 = np.cross(up, e1)
    if len(points) >= 3:
        flat = np.stack([points @ e1, points @ e2], axis=1)
        _, _, axes = np.linalg.svd(flat - flat.mean(axis=0), full_matrices=False)
        major = axes[0, 0] * e1 + axes[0, 1] * e2
        e1, e2 = major, np.cross(up, major)
    return e1, e2


def render_quicklook(scene: Scene, up: np.ndarray, size: int = 800, caption: str = "") -> np.ndarray:
    """The top-down picture as ``[H, W, 3]`` uint8 (long side ``size``)."""
    positions = scene.points.positions
    centers = scene.centers()
    e1, e2 = _plane_basis(up, positions if len(positions) >= 3 else centers)
    project = lambda p: np.stack([p @ e1, -(p @ e2)], axis=1)  # noqa: E731  (image v grows downwards)
    uv_points, uv_cams = project(positions), project(centers)
    core = uv_points if len(uv_points) >= 20 else np.concatenate([uv_points, uv_cams])
    low, high = (np.percentile(core, [1, 99], axis=0) if len(core) else (np.zeros(2), np.ones(2)))
    if len(uv_cams):
        low, high = np.minimum(low, uv_cams.min(axis=0)), np.maximum(high, uv_cams.max(axis=0))
    span = np.maximum(high - low, 1e-9)
    low, span = low - 0.05 * span, span * 1.1
    scale = (size - 1) / span.max()
    width, height = (np.maximum(np.ceil(span * scale), 32)).astype(int) + 1
    image = np.empty((height, width, 3), dtype=np.uint8)
    image[:] = _BACKGROUND
    to_pixel = lambda uv: np.round((uv - low) * scale).astype(int)  # noqa: E731
    order = np.argsort(positions @ up) if len(positions) else np.zeros(0, int)  # higher points drawn last
    colors = scene.points.colors if scene.points.colors is not None else np.full((len(positions), 3), 220, np.uint8)
    dot = 1 if len(positions) > 50_000 else 2
    _splat(image, to_pixel(uv_points[order]), colors[order], dot)
    if len(centers):
        look = np.array([frame.rotation[2] for frame in scene.frames])  # optical axis in world coordinates
        tick = 0.03 * size / scale
        for t in np.linspace(0.0, 1.0, max(2, int(0.03 * size) + 1)):
            _splat(image, to_pixel(project(centers + t * tick * look)), _CAMERA[None].repeat(len(centers), 0), 1)
        _splat(image, to_pixel(uv_cams), _CAMERA[None].repeat(len(centers), 0), 5)
    if caption:
        image = _caption(image, caption)
    return image


def _splat(image: np.ndarray, pixels: np.ndarray, colors: np.ndarray, size: int) -> None:
    height, width = image.shape[:2]
    for dy in range(-(size // 2), size - size // 2):
        for dx in range(-(size // 2), size - size // 2):
            x, y = pixels[:, 0] + dx, pixels[:, 1] + dy
            inside = (x >= 0) & (x < width) & (y >= 0) & (y < height)
            image[y[inside], x[inside]] = colors[inside]


def _caption(image: np.ndarray, text: str) -> np.ndarray:
    band = np.empty((28, image.shape[1], 3), dtype=np.uint8)
    band[:] = 0
    buffer = oiio.ImageBuf(oiio.ImageSpec(band.shape[1], band.shape[0], 3, "uint8"))
    buffer.set_pixels(oiio.ROI(), band)
    if oiio.ImageBufAlgo.render_text(buffer, 8, 20, text, 15, "DroidSans", [1.0, 1.0, 1.0]):
        band = buffer.get_pixels(oiio.UINT8).reshape(band.shape)
    else:
        oiio.geterror()  # no font: the picture is still useful without its caption
    return np.concatenate([band, image], axis=0)

