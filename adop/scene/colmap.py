"""COLMAP sparse models ↔ our ``Scene`` (via pycolmap, binary or text).

COLMAP and our scene model share conventions (world→camera poses, OpenCV axes, pixel centres at +0.5, the same
camera parameter order; docs/conventions.md), so the conversion copies numbers and never transforms them.

Camera models: PINHOLE, SIMPLE_RADIAL, RADIAL, OPENCV and FULL_OPENCV map one to one. SIMPLE_PINHOLE (``f cx cy``) is
imported as the exactly equivalent PINHOLE (``f f cx cy``): the geometry is identical, only the model name changes,
and ADOP's colmap2adop would have rejected it for no reason. Fisheye and other models raise ``InputError`` saying
what to do, because the rasterizer only implements the OpenCV rational/tangential distortion.

What COLMAP cannot hold: exposure (EV is read from the images' EXIF on import when ``image_dir`` is given),
white balance, and the per-point normals and drop-out radius (dropped on export). Frames are imported sorted by
image name (as ADOP's colmap2adop does) and cameras sorted by COLMAP camera id.
"""

from __future__ import annotations

# pycolmap's extension exports its own zlib symbols; if it is loaded before anything else that uses zlib, later
# zlib users (zlib.compress, gzip, OpenImageIO's PNG writer) abort with "free(): invalid pointer". Loading the system
# zlib first avoids it; adop/__init__.py should do the same so that `import adop` protects every caller.
import zlib  # noqa: F401
import logging
from pathlib import Path

import numpy as np
from adop.native import pycolmap
from adop.errors import InputError
from adop.exif import read_exposure
from adop.scene.camera import SUPPORTED_MODELS, Camera
from adop.scene.types import Frame, PointCloud, Scene
from adop.storage import ensure_writable_dir

log = logging.getLogger(__name__)

_EXACT_ALIASES = {"SIMPLE_PINHOLE": "PINHOLE"}


def import_colmap(model_dir: Path, image_dir: Path | None = None) -> Scene:
    """Read a COLMAP sparse model folder (``cameras``/``images``/``points3D``, ``.bin`` or ``.txt``).

    Args:
        model_dir: the folder holding the model files (e.g. ``sparse/0``, not ``sparse``).
        image_dir: the images' folder; stored in the scene as given, and used to read each frame's EXIF exposure.
            None leaves exposures at 0 EV.

    Returns:
        The scene: every camera, every registered image as a frame, every 3-D point with its colour.

    Raises:
        InputError: the folder holds no model, pycolmap cannot read it, or a camera model is unsupported.
    """
    return scene_from_reconstruction(read_reconstruction(model_dir), image_dir, source=str(model_dir))


def read_reconstruction(model_dir: Path) -> pycolmap.Reconstruction:
    """Load a COLMAP model with pycolmap, turning its C++ check failures into an actionable ``InputError``."""
    model_dir = Path(model_dir)
    has_model = any((model_dir / f"cameras.{ext}").is_file() for ext in ("bin", "txt"))
    if not has_model:
        subdirs = sorted(p.name for p in model_dir.glob("*") if (p / "cameras.bin").is_file())
        hint = f" (it has model sub-folders {', '.join(subdirs)}: pass one of them)" if subdirs else ""
        raise InputError(f"{model_dir} holds no COLMAP model (no cameras.bin or cameras.txt){hint}")
    for name in ("cameras", "images", "points3D", "frames", "rigs"):
        for ext in ("bin", "txt"):
            file = model_dir / f"{name}.{ext}"
            if file.is_file() and file.stat().st_size == 0:
                raise InputError(f"{file} is empty (0 bytes); the COLMAP model is incomplete, export it again")
    try:
        return pycolmap.Reconstruction(str(model_dir))
    except (ValueError, RuntimeError) as error:
        raise InputError(f"the COLMAP model in {model_dir} is damaged or incomplete and cannot be read (pycolmap: "
                         f"{error}); export it again") from None


def scene_from_reconstruction(
    reconstruction: pycolmap.Reconstruction, image_dir: Path | None = None, *, source: str = "the model"
) -> Scene:
    """Convert an in-memory pycolmap model (what ``import_colmap`` and the SfM stage both use)."""
    camera_ids = sorted(reconstruction.cameras)
    index_of = {camera_id: index for index, camera_id in enumerate(camera_ids)}
    cameras = [_camera_from_colmap(reconstruction.cameras[cid], source) for cid in camera_ids]
    registered = [reconstruction.image(i) for i in reconstruction.reg_image_ids()]
    registered.sort(key=lambda image: image.name)
    exposures = _read_exposures([image.name for image in registered], image_dir)
    frames = []
    for image in registered:
        pose = image.cam_from_world()
        frames.append(
            Frame(
                name=image.name,
                camera_index=index_of[image.camera_id],
                rotation=pose.rotation.matrix(),
                translation=np.asarray(pose.translation, dtype=np.float64),
                exposure_ev=exposures.get(image.name, 0.0),
            )
        )
    point_ids = sorted(reconstruction.point3D_ids())
    positions = np.array([reconstruction.points3D[pid].xyz for pid in point_ids], dtype=np.float64).reshape(-1, 3)
    colors = np.array([reconstruction.points3D[pid].color for pid in point_ids], dtype=np.uint8).reshape(-1, 3)
    return Scene(cameras=cameras, frames=frames, points=PointCloud(positions, colors=colors), image_dir=image_dir)


def export_colmap(scene: Scene, out_dir: Path, text: bool = False) -> Path:
    """Write ``scene`` as a COLMAP sparse model (binary by default, ``text=True`` for the ``.txt`` files).

    Camera ``i`` becomes COLMAP camera ``i + 1`` and frame ``j`` image ``j + 1``; points get ids ``1..N`` and empty
    tracks (our scene does not keep observations). Normals, radius, exposure and white balance are not written.

    Returns:
        ``out_dir``.
    """
    out_dir = ensure_writable_dir(Path(out_dir), "COLMAP model")
    reconstruction = pycolmap.Reconstruction()
    for index, camera in enumerate(scene.cameras):
        reconstruction.add_camera_with_trivial_rig(
            pycolmap.Camera(
                model=camera.model,
                width=camera.width,
                height=camera.height,
                params=list(camera.params),
                camera_id=index + 1,
            )
        )
    for index, frame in enumerate(scene.frames):
        image = pycolmap.Image(name=frame.name, camera_id=frame.camera_index + 1, image_id=index + 1)
        pose = pycolmap.Rigid3d(pycolmap.Rotation3d(frame.rotation), frame.translation)
        reconstruction.add_image_with_trivial_frame(image, pose)
    colors = scene.points.colors
    if colors is None:
        colors = np.full((len(scene.points), 3), 255, dtype=np.uint8)
    for xyz, rgb in zip(scene.points.positions, colors):
        reconstruction.add_point3D(xyz, pycolmap.Track(), rgb)
    if text:
        reconstruction.write_text(str(out_dir))
    else:
        reconstruction.write_binary(str(out_dir))
    return out_dir


def _camera_from_colmap(camera: pycolmap.Camera, source: str) -> Camera:
    name = camera.model.name
    params = tuple(float(p) for p in camera.params)
    if name == "SIMPLE_PINHOLE":
        f, cx, cy = params
        params = (f, f, cx, cy)
    name = _EXACT_ALIASES.get(name, name)
    if name not in SUPPORTED_MODELS:
        raise InputError(
            f"camera {camera.camera_id} in {source} uses the COLMAP model {name}, which adop cannot render; "
            f"supported: SIMPLE_PINHOLE, {', '.join(SUPPORTED_MODELS)}. Re-run COLMAP's mapper with "
            "OPENCV or SIMPLE_RADIAL (`adop reconstruct --camera-model OPENCV`), or undistort the images "
            "(colmap image_undistorter writes PINHOLE cameras) and import that model"
        )
    return Camera(name, int(camera.width), int(camera.height), params)


def _read_exposures(names: list[str], image_dir: Path | None) -> dict[str, float]:
    """EV100 per image name; one summary warning (not one per image) when EXIF is missing."""
    if image_dir is None:
        return {}
    exposures: dict[str, float] = {}
    missing: list[str] = []
    for name in names:
        try:
            ev = read_exposure(Path(image_dir) / name).ev100
        except OSError:
            ev = None
        if ev is None:
            missing.append(name)
        exposures[name] = 0.0 if ev is None else ev
    if missing:
        log.warning(
            "%d of %d images have no complete exposure EXIF (time, f-number, ISO), e.g. %s; their EV is 0",
            len(missing),
            len(names),
            missing[0],
        )
    return exposures
