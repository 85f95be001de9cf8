"""The scene model: cameras, posed frames and a point cloud, independent of any file format.

Importers (COLMAP, ADOP folders) and the scene folder format all produce and consume ``Scene``; nothing downstream
knows where a scene came from. Poses are world→camera (docs/conventions.md).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from adop.errors import InputError
from adop.scene.camera import Camera


def _as_rotation(matrix: np.ndarray) -> np.ndarray:
    matrix = np.asarray(matrix, dtype=np.float64).reshape(3, 3)
    if not np.allclose(matrix @ matrix.T, np.eye(3), atol=1e-6) or np.linalg.det(matrix) < 0:
        raise InputError("a frame's rotation is not a proper rotation matrix (orthonormal with determinant +1)")
    return matrix


@dataclass(frozen=True)
class Frame:
    """One photo: which file, which camera, where it was taken from and at which exposure.

    Attributes:
        name: image path relative to the scene's image folder (forward slashes).
        camera_index: index into ``Scene.cameras``.
        rotation: world→camera rotation ``[3, 3]``.
        translation: world→camera translation ``[3]``.
        exposure_ev: EV100 read from EXIF (0.0 when the EXIF was missing; see adop.exif).
        white_balance: optional per-image RGB gains (ADOP's ``white_balance.txt``), green = 1.
    """

    name: str
    camera_index: int
    rotation: np.ndarray
    translation: np.ndarray
    exposure_ev: float = 0.0
    white_balance: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "rotation", _as_rotation(self.rotation))
        translation = np.asarray(self.translation, dtype=np.float64).reshape(3)
        object.__setattr__(self, "translation", translation)
        object.__setattr__(self, "exposure_ev", float(self.exposure_ev))

    @property
    def center(self) -> np.ndarray:
        """Camera centre in world coordinates."""
        return -self.rotation.T @ self.translation

    @property
    def world_to_camera(self) -> np.ndarray:
        """``[4, 4]`` world→camera matrix."""
        matrix = np.eye(4)
        matrix[:3, :3] = self.rotation
        matrix[:3, 3] = self.translation
        return matrix

    @property
    def camera_to_world(self) -> np.ndarray:
        """``[4, 4]`` camera→world matrix."""
        return np.linalg.inv(self.world_to_camera)

    def to_camera(self, points_world: np.ndarray) -> np.ndarray:
        """World points ``[N, 3]`` in this frame's camera coordinates."""
        return points_world @ self.rotation.T + self.translation


@dataclass
class PointCloud:
    """Points with optional per-point attributes; every present attribute has one row per point.

    Attributes:
        positions: ``[N, 3]`` float64 world positions.
        normals: ``[N, 3]`` float32 unit normals (the rasterizer culls back faces with them), or None.
        colors: ``[N, 3]`` uint8 RGB, or None.
        radius: ``[N]`` float32 ADOP drop-out radius (4th-NN distance × fixed random factor), or None until
            preprocessing has run.
    """

    positions: np.ndarray
    normals: np.ndarray | None = None
    colors: np.ndarray | None = None
    radius: np.ndarray | None = None

    def __post_init__(self) -> None:
        self.positions = np.asarray(self.positions, dtype=np.float64).reshape(-1, 3)
        n = len(self.positions)
        if self.normals is not None:
            self.normals = np.asarray(self.normals, dtype=np.float32).reshape(-1, 3)
        if self.colors is not None:
            self.colors = np.asarray(self.colors, dtype=np.uint8).reshape(-1, 3)
        if self.radius is not None:
            self.radius = np.asarray(self.radius, dtype=np.float32).reshape(-1)
        for name in ("normals", "colors", "radius"):
            value = getattr(self, name)
            if value is not None and len(value) != n:
                raise InputError(f"point cloud has {n} positions but {len(value)} {name}")

    def __len__(self) -> int:
        return len(self.positions)

    def subset(self, index: np.ndarray) -> PointCloud:
        """The points selected by an index array or boolean mask, all attributes kept in step."""
        pick = (lambda a: None if a is None else a[index])  # noqa: E731
        return PointCloud(pick(self.positions), pick(self.normals), pick(self.colors), pick(self.radius))

    @classmethod
    def empty(cls) -> PointCloud:
        return cls(np.zeros((0, 3)))


@dataclass
class Scene:
    """Cameras, frames and points, plus where the frames' images live.

    Attributes:
        cameras: the physical cameras.
        frames: the posed photos, each naming a camera by index.
        points: the point cloud.
        image_dir: folder holding the images named by ``Frame.name`` (absolute, or relative to the scene folder).
        up: optional world up vector hint for viewers and camera paths.
    """

    cameras: list[Camera]
    frames: list[Frame]
    points: PointCloud = field(default_factory=PointCloud.empty)
    image_dir: Path | None = None
    up: tuple[float, float, float] | None = None

    def __post_init__(self) -> None:
        for frame in self.frames:
            if not 0 <= frame.camera_index < len(self.cameras):
                raise InputError(
                    f"frame {frame.name!r} names camera {frame.camera_index}, but the scene has "
                    f"{len(self.cameras)} camera(s)"
                )

    @property
    def exposure_mean(self) -> float:
        """Mean EXIF EV of the frames (ADOP's ``scene_exposure_value``)."""
        return float(np.mean([f.exposure_ev for f in self.frames])) if self.frames else 0.0

    def centers(self) -> np.ndarray:
        """Camera centres ``[F, 3]``."""
        return np.array([f.center for f in self.frames]).reshape(-1, 3)

    def image_folder(self, scene_dir: Path | None = None) -> Path | None:
        """``image_dir`` resolved against ``scene_dir`` when it is relative (None when the scene has none)."""
        if self.image_dir is None or self.image_dir.is_absolute() or scene_dir is None:
            return self.image_dir
        return Path(scene_dir) / self.image_dir

    def image_path(self, frame: Frame, scene_dir: Path | None = None) -> Path:
        """Absolute path of a frame's image (``image_dir`` resolved against ``scene_dir`` when relative)."""
        base = self.image_folder(scene_dir)
        if base is None:
            raise InputError("this scene has no image folder set")
        return base / frame.name

    def with_frames(self, frames: list[Frame]) -> Scene:
        return replace(self, frames=list(frames))
