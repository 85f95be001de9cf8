"""The views multi-view stereo works on: undistorted pinhole cameras at the depth maps' size, their source views and
depth ranges, all from the SfM model.

Source views are chosen as COLMAP's patch-match does (``MVSModel.GetMaxOverlappingImages``): by the number of SfM
points both views observe, counting only points seen under a useful triangulation angle (too small: no parallax, too
large: the patches no longer look alike). The depth range comes from the depths of the points the view observes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from adop.errors import InputError
from adop.images import read_photo
from adop.scene.types import Scene


@dataclass(frozen=True)
class StereoView:
    """One photo as the stereo sees it: a distortion-free pinhole camera at the depth map's size.

    Attributes:
        index: the frame's index in the scene.
        name: the frame's image name.
        intrinsics: ``[3, 3]`` pinhole matrix at the depth map's size (pixel centres at +0.5).
        rotation: world→camera ``[3, 3]``.
        translation: world→camera ``[3]``.
        width: depth map width.
        height: depth map height.
    """

    index: int
    name: str
    intrinsics: np.ndarray
    rotation: np.ndarray
    translation: np.ndarray
    width: int
    height: int

    @property
    def center(self) -> np.ndarray:
        return -self.rotation.T @ self.translation

    @property
    def projection(self) -> np.ndarray:
        """``[3, 4]`` world → pixel projection ``K [R | t]``."""
        return self.intrinsics @ np.column_stack([self.rotation, self.translation])

    def resized(self, width: int, height: int) -> StereoView:
        """This view for its image resized to ``width × height`` (pixel-centre convention)."""
        scale = np.diag([width / self.width, height / self.height, 1.0])
        return StereoView(self.index, self.name, scale @ self.intrinsics, self.rotation, self.translation, width,
                          height)


@dataclass(frozen=True)
class PlaneFamily:
    """A family of parallel planes for one reference view, swept besides the fronto-parallel ones: ``normal · X = -h``
    in its camera coordinates, ``h`` from ``nearest`` to ``farthest`` (``|normal · X| = h`` when ``two_sided``: planes
    on both sides of the camera). Fronto-parallel planes fit a surface seen at a grazing angle badly (a road ahead,
    the facades along a street); a sweep along the surface's own normal fits it exactly (Gallup et al. 2007)."""

    normal: np.ndarray
    nearest: float
    farthest: float
    two_sided: bool = False


def map_scale(width: int, height: int, long_side: int) -> float:
    """Scale from a photo to its depth map (never up: 0 or a larger ``long_side`` keeps the photo's size)."""
    return 1.0 if long_side <= 0 else min(1.0, long_side / max(width, height))


def stereo_view(scene: Scene, index: int, long_side: int) -> StereoView:
    """The frame ``index`` as a pinhole view whose long side is at most ``long_side`` (0: full size)."""
    frame = scene.frames[index]
    camera = scene.cameras[frame.camera_index]
    scale = map_scale(camera.width, camera.height, long_side)
    fx, fy, cx, cy = camera.intrinsics * scale
    intrinsics = np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]])
    return StereoView(index, frame.name, intrinsics, frame.rotation, frame.translation,
                      max(1, round(camera.width * scale)), max(1, round(camera.height * scale)))


def load_view_image(scene: Scene, view: StereoView, image_dir: Path) -> Tensor:
    """The view's photo, undistorted to its pinhole camera and resized to its size: ``[3, H, W]`` float in [0, 1].

    The photo is area-downscaled first (no aliasing), then remapped through the lens distortion with bilinear
    sampling; pixels whose distorted position falls outside the photo are 0.
    """
    frame = scene.frames[view.index]
    camera = scene.cameras[frame.camera_index]
    photo = read_photo(Path(image_dir) / frame.name)
    height, width = photo.shape[1:]
    if abs(width / height - camera.width / camera.height) > 0.01 * camera.width / camera.height:
        raise InputError(f"photo {frame.name} is {width}×{height} but its camera in the SfM model is "
                         f"{camera.width}×{camera.height}; the photo was changed after SfM, run SfM again")
    scale = view.width / camera.width
    if (width, height) != (view.width, view.height):
        photo = F.interpolate(photo[None].float(), size=(view.height, view.width), mode="area")[0]
    image = photo.float() / 255.0
    if not camera.has_distortion:
        return image
    u, v = np.meshgrid(np.arange(view.width) + 0.5, np.arange(view.height) + 0.5)
    k = view.intrinsics
    xy = np.stack([(u - k[0, 2]) / k[0, 0], (v - k[1, 2]) / k[1, 1]], axis=-1)
    xy_d = camera.distort(xy)
    fx, fy, cx, cy = camera.intrinsics * scale
    grid = np.stack([(fx * xy_d[..., 0] + cx) / view.width * 2 - 1, (fy * xy_d[..., 1] + cy) / view.height * 2 - 1],
                    axis=-1)
    sampled = F.grid_sample(image[None], torch.from_numpy(grid).float()[None], mode="bilinear",
                            padding_mode="zeros", align_corners=False)
    return sampled[0]


def visibility_by_projection(scene: Scene) -> list[np.ndarray]:
    """Per frame, the points in front of it and inside its image (for scenes that carry no SfM tracks)."""
    visible = []
    for frame in scene.frames:
        camera = scene.cameras[frame.camera_index]
        uv, front = camera.project(frame.to_camera(scene.points.positions))
        inside = front & (uv[:, 0] >= 0) & (uv[:, 0] < camera.width) & (uv[:, 1] >= 0) & (uv[:, 1] < camera.height)
        visible.append(np.flatnonzero(inside))
    return visible


def choose_sources(scene: Scene, visibility: list[np.ndarray], count: int, *, min_shared: int,
                   min_angle_deg: float, max_angle_deg: float) -> list[list[int]]:
    """Per frame, up to ``count`` source frames, best first, by shared points seen under a useful angle."""
    positions = scene.points.positions
    centers = scene.centers()
    cos_min, cos_max = np.cos(np.radians(min_angle_deg)), np.cos(np.radians(max_angle_deg))
    sets = [np.unique(v) for v in visibility]
    scores = np.zeros((len(scene.frames), len(scene.frames)))
    for r in range(len(sets)):
        for s in range(r + 1, len(sets)):
            shared = np.intersect1d(sets[r], sets[s], assume_unique=True)
            if len(shared) < min_shared:
                continue
            to_r = centers[r] - positions[shared]
            to_s = centers[s] - positions[shared]
            cos = np.einsum("ij,ij->i", to_r, to_s) / np.maximum(
                np.linalg.norm(to_r, axis=1) * np.linalg.norm(to_s, axis=1), 1e-12)
            useful = int(np.count_nonzero((cos <= cos_min) & (cos >= cos_max)))
            scores[r, s] = scores[s, r] = useful
    sources = []
    for r in range(len(sets)):
        order = np.argsort(-scores[r], kind="stable")
        sources.append([int(s) for s in order[:count] if scores[r, s] >= min_shared])
    return sources


def depth_range(scene: Scene, index: int, visible: np.ndarray, margin: float) -> tuple[float, float] | None:
    """The 2nd–98th percentile of the depths of the points frame ``index`` sees, widened by ``margin``; None when
    it sees fewer than 5 points in front of it."""
    depths = scene.frames[index].to_camera(scene.points.positions[visible])[:, 2]
    depths = depths[depths > 0]
    if len(depths) < 5:
        return None
    near, far = np.percentile(depths, [2, 98])
    return float(near / (1 + margin)), float(far * (1 + margin))


def ground_planes(scene: Scene, index: int, visible: np.ndarray, up: np.ndarray, margin: float) -> PlaneFamily | None:
    """The planes parallel to the ground for frame ``index``: heights below the camera from the median to the
    99.5th percentile of those of its SfM points below it (the ground is the lowest surface), widened by
    ``margin``; None with fewer than 5 such points."""
    frame = scene.frames[index]
    normal = frame.rotation @ (np.asarray(up, dtype=np.float64) / np.linalg.norm(up))
    heights = -(frame.to_camera(scene.points.positions[visible]) @ normal)
    heights = heights[heights > 0]
    if len(heights) < 5:
        return None
    low, high = np.percentile(heights, [50, 99.5])  # the ground is the lowest surface: the largest heights
    return PlaneFamily(normal, float(low / (1 + margin)), float(high * (1 + margin)))


def facade_planes(scene: Scene, index: int, visible: np.ndarray, up: np.ndarray, margin: float) -> PlaneFamily | None:
    """Vertical planes along the view direction for frame ``index``, on both sides (the facades of a street seen
    from within it): normal the camera's horizontal right axis, distances from the camera from the 25th to the 99.5th
    percentile of its SfM points' sideways distances, widened by ``margin``; None with fewer than 5 points or for a
    camera held on its side (its right axis about vertical)."""
    frame = scene.frames[index]
    up_camera = frame.rotation @ (np.asarray(up, dtype=np.float64) / np.linalg.norm(up))
    right = np.array([1.0, 0.0, 0.0]) - up_camera[0] * up_camera
    if np.linalg.norm(right) < 0.5:
        return None
    normal = right / np.linalg.norm(right)
    distances = np.abs(frame.to_camera(scene.points.positions[visible]) @ normal)
    distances = distances[distances > 0]
    if len(distances) < 5:
        return None
    low, high = np.percentile(distances, [25, 99.5])
    return PlaneFamily(normal, float(low / (1 + margin)), float(high * (1 + margin)), two_sided=True)
