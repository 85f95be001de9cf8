"""Camera paths for fly-through renders: generated, keyframed, or imported from nerfstudio.

Every path is a `CameraPath` (one pinhole camera per frame, world→camera, OpenCV axes; docs/conventions.md) that
can be written back as editable JSON with `CameraPath.save` / `to_json` and read with `load_camera_path` (ours, keyframed or nerfstudio's).
"""

from adop.paths.camera_path import CameraPath, look_at, pinhole
from adop.paths.checks import PathReport, check_path
from adop.paths.files import load_camera_path
from adop.paths.fly_through import FlyThroughConfig, fly_through_path
from adop.paths.generators import mean_up, orbit_path, order_by_proximity, path_through_cameras
from adop.paths.keyframes import keyframe_path, keyframes_from_path
from adop.paths.nerfstudio import export_nerfstudio_path, import_nerfstudio_path, nerfstudio_to_world

__all__ = [
    "CameraPath",
    "FlyThroughConfig",
    "PathReport",
    "check_path",
    "export_nerfstudio_path",
    "fly_through_path",
    "import_nerfstudio_path",
    "keyframe_path",
    "keyframes_from_path",
    "load_camera_path",
    "look_at",
    "mean_up",
    "nerfstudio_to_world",
    "orbit_path",
    "order_by_proximity",
    "path_through_cameras",
    "pinhole",
]
