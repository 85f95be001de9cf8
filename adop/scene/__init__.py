"""Scene model (cameras, posed frames, points) and its file formats. Conventions: docs/conventions.md."""

from adop.scene.camera import SUPPORTED_MODELS, Camera
from adop.scene.folder import load_scene, save_scene
from adop.scene.types import Frame, PointCloud, Scene

__all__ = ["SUPPORTED_MODELS", "Camera", "Frame", "PointCloud", "Scene", "load_scene", "save_scene"]
