"""Our scene folder: ``scene.json`` (metadata) plus ``points.ply`` (points).

Layout::

    SCENE_DIR/
      scene.json    # {"format": "adop-scene", "version": 1, "image_dir": ..., "up": [x, y, z] | null,
                    #  "cameras": [{"model", "width", "height", "params": [... COLMAP order ...]}],
                    #  "frames": [{"name", "camera", "rotation": [[3x3]], "translation": [3],
                    #              "exposure_ev", "white_balance": [r, g, b] | null}],
                    #  "points": {"file": "points.ply", "count": N}}
      points.ply    # binary PLY: x y z (double), nx ny nz, red green blue, radius (see adop.scene.ply)

``rotation``/``translation`` are world→camera (docs/conventions.md). ``image_dir`` is stored as given: relative
paths resolve against the scene folder. Floats are written with ``repr`` precision, so a round trip is exact.
"""

from __future__ import annotations

import json
from pathlib import Path

from adop.errors import InputError
from adop.scene.camera import Camera
from adop.scene.types import Frame, Scene
from adop.scene.ply import read_ply, write_ply
from adop.storage import write_text_atomic

FORMAT_NAME = "adop-scene"
FORMAT_VERSION = 1
SCENE_FILE = "scene.json"
POINTS_FILE = "points.ply"


def save_scene(scene: Scene, scene_dir: Path) -> Path:
    """Write ``scene`` into ``scene_dir`` (created if missing); points first, so a ``scene.json`` implies points."""
    scene_dir = Path(scene_dir)
    scene_dir.mkdir(parents=True, exist_ok=True)
    write_ply(scene_dir / POINTS_FILE, scene.points)
    document = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "image_dir": None if scene.image_dir is None else str(scene.image_dir),
        "up": None if scene.up is None else [float(v) for v in scene.up],
        "cameras": [camera.to_dict() for camera in scene.cameras],
        "frames": [_frame_to_dict(frame) for frame in scene.frames],
        "points": {"file": POINTS_FILE, "count": len(scene.points)},
    }
    write_text_atomic(scene_dir / SCENE_FILE, json.dumps(document, indent=1))
    return scene_dir


def load_scene(scene_dir: Path) -> Scene:
    """Read a scene folder written by ``save_scene``."""
    scene_dir = Path(scene_dir)
    meta_path = scene_dir / SCENE_FILE
    if not meta_path.is_file():
        raise InputError(
            f"{scene_dir} is not an adop scene folder (no {SCENE_FILE}); create one with `adop reconstruct` "
            "or `adop scene import`"
        )
    try:
        document = json.loads(meta_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        raise InputError(f"{meta_path} is not valid JSON ({error}); the file is damaged, re-create the scene") from None
    if not isinstance(document, dict):
        raise InputError(f"{meta_path} is not an adop scene file (the top level is not an object)")
    if document.get("format") != FORMAT_NAME:
        raise InputError(f"{meta_path} is not an adop scene file (format is {document.get('format')!r})")
    if int(document.get("version", 0)) > FORMAT_VERSION:
        raise InputError(
            f"{meta_path} was written by a newer adop (format version {document['version']}); upgrade adop"
        )
    try:
        cameras = [Camera.from_dict(c) for c in document["cameras"]]
        frames = [_frame_from_dict(f) for f in document["frames"]]
        points_name = document["points"]["file"]
        expected = int(document["points"]["count"])
    except KeyError as missing:
        raise InputError(f"{meta_path} is missing the field {missing}") from None
    except (TypeError, ValueError, AttributeError) as error:
        raise InputError(f"{meta_path} holds a value of the wrong kind ({error}); the file is damaged or was edited "
                         "by hand, re-create the scene") from None
    points = read_ply(scene_dir / points_name)
    if len(points) != expected:
        raise InputError(
            f"{scene_dir / points_name} holds {len(points)} points but {SCENE_FILE} says {expected}; "
            "the scene folder is incomplete, re-create it"
        )
    image_dir = document.get("image_dir")
    up = document.get("up")
    return Scene(
        cameras=cameras,
        frames=frames,
        points=points,
        image_dir=None if image_dir is None else Path(image_dir),
        up=None if up is None else (float(up[0]), float(up[1]), float(up[2])),
    )


def _frame_to_dict(frame: Frame) -> dict:
    return {
        "name": frame.name,
        "camera": frame.camera_index,
        "rotation": frame.rotation.tolist(),
        "translation": frame.translation.tolist(),
        "exposure_ev": frame.exposure_ev,
        "white_balance": None if frame.white_balance is None else list(frame.white_balance),
    }


def _frame_from_dict(data: dict) -> Frame:
    try:
        white_balance = data.get("white_balance")
        return Frame(
            name=str(data["name"]),
            camera_index=int(data["camera"]),
            rotation=data["rotation"],
            translation=data["translation"],
            exposure_ev=float(data.get("exposure_ev", 0.0)),
            white_balance=None if white_balance is None else tuple(float(v) for v in white_balance),
        )
    except KeyError as missing:
        raise InputError(f"a frame entry is missing the field {missing}") from None
