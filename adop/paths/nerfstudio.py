"""Import and export of nerfstudio's ``camera_path.json``, so paths drawn in its viewer or Blender add-on work here.

Schema (as read by nerfstudio's ``get_path_from_json`` and written by its viewer's render panel):

* top level: ``render_width``, ``render_height``, ``seconds``, ``camera_type`` (``perspective`` / ``fisheye`` /
  ``equirectangular``), and for the viewer ``fps``, ``keyframes`` (``matrix``, ``fov``, ``aspect``), ``is_cycle``,
  ``smoothness_value``, ``default_fov``, ``default_transition_sec``;
* ``camera_path[]``: one entry per output frame with ``camera_to_world`` (16 numbers, row-major 4×4,
  camera→world, **OpenGL** axes: +y up, −z forward), ``fov`` (vertical, degrees) and ``aspect``.

nerfstudio renders ``len(camera_path) / seconds`` frames per second with ``fx = fy`` from the vertical FOV and the
principal point at the image centre; the import does the same, so a path renders with the same framing here.

nerfstudio's world is its dataparser's normalised world, not the capture's; pass ``ns_to_world`` (see
`nerfstudio_to_world`) to express the path in our scene's coordinates. Unlike nerfstudio, an unsupported
``camera_type`` is an error rather than a silent perspective render.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import Any

import numpy as np

from adop.errors import InputError
from adop.paths.camera_path import CameraPath, read_json_file, require_array, require_int, require_number

logger = logging.getLogger(__name__)

_GL_FROM_CV = np.diag([1.0, -1.0, -1.0])  # flips camera y and z: OpenCV (y down, z forward) <-> OpenGL


def nerfstudio_to_world(
    dataparser_transforms: Mapping[str, Any], applied_transform: np.ndarray | None = None
) -> np.ndarray:
    """The 4×4 similarity that maps nerfstudio's normalised world to the original capture world.

    nerfstudio stores ``p_ns = scale · (transform @ [p; 1])`` in ``dataparser_transforms.json`` (``transform`` 3×4,
    ``scale``). Data prepared by ``ns-process-data`` from COLMAP has a further ``applied_transform`` (3×4, in
    ``transforms.json``) from COLMAP's world to the transforms.json world; give it to land in COLMAP's world.
    """
    try:
        t = np.asarray(dataparser_transforms["transform"], dtype=np.float64)
        scale = float(dataparser_transforms["scale"])
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("dataparser transforms need 'transform' (3x4 numbers) and 'scale' (a number)") from exc
    if t.shape != (3, 4) or not scale > 0:
        raise InputError(f"dataparser 'transform' must be 3x4 and 'scale' positive, got {list(t.shape)}, {scale}")
    fwd = np.eye(4)
    fwd[:3] = t
    fwd[:3] *= scale
    if applied_transform is not None:
        app = np.eye(4)
        app[:3] = np.asarray(applied_transform, dtype=np.float64).reshape(3, 4)
        fwd = fwd @ app
    return np.linalg.inv(fwd)


def _similarity_parts(m: np.ndarray | None) -> tuple[np.ndarray, float]:
    if m is None:
        return np.eye(4), 1.0
    m = np.asarray(m, dtype=np.float64)
    if m.shape != (4, 4):
        raise InputError(f"ns_to_world must be a 4x4 matrix, got shape {list(m.shape)}")
    scale = float(np.cbrt(np.linalg.det(m[:3, :3])))
    if not scale > 0 or np.abs(m[:3, :3] @ m[:3, :3].T / scale**2 - np.eye(3)).max() > 1e-6:
        raise InputError("ns_to_world must be a similarity (uniform scale, rotation, translation)")
    return m, scale


def _nearest_rotation(m: np.ndarray, source: str, where: str) -> np.ndarray:
    """Project a nearly orthonormal 3×3 (JSON keeps ~7 digits) onto SO(3); reject anything that is not a rotation."""
    u, s, vt = np.linalg.svd(m)
    if np.abs(s - 1).max() > 1e-3 or np.linalg.det(u @ vt) < 0:
        raise InputError(
            f"{source}: {where}.camera_to_world's 3x3 block is not a rotation (singular values "
            f"{np.round(s, 4).tolist()}); a scaled or mirrored camera cannot be rendered"
        )
    return u @ vt


def import_nerfstudio_path(
    doc: Mapping[str, Any] | str | os.PathLike[str],
    *,
    ns_to_world: np.ndarray | None = None,
    source: str | None = None,
) -> CameraPath:
    """Read a nerfstudio ``camera_path.json`` into a `CameraPath` (world→camera, OpenCV axes).

    Args:
        doc: the parsed JSON or the file name.
        ns_to_world: optional ``[4, 4]`` similarity from nerfstudio's world to ours (`nerfstudio_to_world`).
        source: name used in error messages (defaults to the file name).

    Raises:
        InputError: bad JSON, missing ``render_width`` / ``render_height`` / ``camera_path`` / ``seconds`` (or
            ``fps``), an entry without ``camera_to_world`` or ``fov``, or a non-perspective ``camera_type``.
    """
    if not isinstance(doc, Mapping):
        source = source or str(doc)
        doc = read_json_file(doc)
    source = source or "<nerfstudio camera path>"
    width = require_int(doc, "render_width", source)
    height = require_int(doc, "render_height", source)
    ctype = doc.get("camera_type", "perspective")
    if ctype != "perspective":
        raise InputError(
            f"{source}: camera_type {ctype!r} is not supported (adop renders pinhole cameras); "
            "set it to 'perspective' in nerfstudio's render panel"
        )
    entries = doc.get("camera_path")
    if not isinstance(entries, list) or not entries:
        raise InputError(f"{source}: field 'camera_path' must be a non-empty list of frames")
    fps = _nerfstudio_fps(doc, len(entries), source)
    m, scale = _similarity_parts(ns_to_world)
    rots, trans, fovs = [], [], []
    for i, entry in enumerate(entries):
        where = f"camera_path[{i}]"
        if not isinstance(entry, Mapping):
            raise InputError(f"{source}: {where} must be an object with camera_to_world and fov")
        try:  # flattened (nerfstudio) or nested 4x4
            c2w = np.asarray(entry.get("camera_to_world", []), dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            c2w = np.zeros(0)
        if c2w.size != 16 or not np.isfinite(c2w).all():
            c2w = require_array(entry, "camera_to_world", (16,), source, where)
        c2w = c2w.reshape(4, 4)
        c2w = m @ c2w
        rot_c2w = _nearest_rotation(c2w[:3, :3] / scale, source, where) @ _GL_FROM_CV
        rot = rot_c2w.T
        rots.append(rot)
        trans.append(-rot @ c2w[:3, 3])
        fov = require_number(entry, "fov", source, where)
        if not 0 < fov < 180:
            raise InputError(f"{source}: field '{where}.fov' must be a vertical FOV in (0, 180) degrees, got {fov}")
        fovs.append(fov)
    aspect = entries[0].get("aspect")
    if isinstance(aspect, (int, float)) and abs(aspect - width / height) > 0.01 * width / height:
        logger.warning(
            "%s: aspect %.4f differs from render_width/render_height %.4f; using the render size",
            source,
            aspect,
            width / height,
        )
    fy = 0.5 * height / np.tan(np.radians(np.array(fovs)) / 2)
    intr = np.stack([fy, fy, np.full_like(fy, width / 2), np.full_like(fy, height / 2)], axis=1)
    return CameraPath(np.stack(rots), np.stack(trans), intr, width, height, fps)


def _nerfstudio_fps(doc: Mapping[str, Any], n: int, source: str) -> float:
    """nerfstudio renders ``n / seconds`` frames per second; ``fps`` is the viewer's setting and only a fallback."""
    if "seconds" in doc:
        seconds = require_number(doc, "seconds", source)
        if seconds <= 0:
            raise InputError(f"{source}: field 'seconds' must be positive, got {seconds}")
        fps = n / seconds
        stated = doc.get("fps")
        if isinstance(stated, (int, float)) and abs(stated - fps) > 0.01 * fps:
            logger.warning(
                "%s: fps %s disagrees with %d frames over %s s; using %.4f like nerfstudio",
                source,
                stated,
                n,
                seconds,
                fps,
            )
        return fps
    if "fps" in doc:
        fps = require_number(doc, "fps", source)
        if fps > 0:
            return fps
    raise InputError(f"{source}: needs 'seconds' (or 'fps') to know the frame rate; add \"seconds\": <duration>")


def export_nerfstudio_path(
    path: CameraPath, *, ns_to_world: np.ndarray | None = None, keyframe_every_s: float = 1.0
) -> dict[str, Any]:
    """A nerfstudio ``camera_path.json`` document for ``path`` (renderable by ``ns-render camera-path``).

    Viewer keyframes are sampled every ``keyframe_every_s`` seconds (and at the last frame) so that the viewer's
    *Load Path* can show and edit the path. Non-square pixels and off-centre principal points cannot be expressed
    (nerfstudio has one vertical FOV per frame); they are dropped with a warning.

    Args:
        path: the path to export.
        ns_to_world: the same similarity given to `import_nerfstudio_path`; its inverse is applied here.
        keyframe_every_s: spacing of the viewer keyframes in seconds.
    """
    k = path.intrinsics
    if np.abs(k[:, 0] - k[:, 1]).max() > 1e-6 * k[:, 1].max() or (
        np.abs(k[:, 2:] - [path.width / 2, path.height / 2]).max() > 1e-3
    ):
        logger.warning("nerfstudio paths have square pixels and centred principal points; fx and cx, cy are dropped")
    m, scale = _similarity_parts(ns_to_world)
    inv = np.linalg.inv(m)
    c2w = np.zeros((len(path), 4, 4))
    c2w[:, :3, :3] = np.einsum("fji->fij", path.rotations) @ _GL_FROM_CV
    c2w[:, :3, 3] = path.centers()
    c2w[:, 3, 3] = 1.0
    c2w = inv @ c2w
    c2w[:, :3, :3] *= scale  # inv scales by 1/scale; a camera's axes stay unit length
    fov = path.vertical_fov_deg()
    aspect = path.width / path.height
    frames = [
        {"camera_to_world": c.reshape(-1).tolist(), "fov": float(f), "aspect": aspect}
        for c, f in zip(c2w, fov, strict=False)
    ]
    step = max(1, int(round(keyframe_every_s * path.fps)))
    kidx = sorted(set(range(0, len(path), step)) | {len(path) - 1})
    keyframes = [{"matrix": c2w[i].reshape(-1).tolist(), "fov": float(fov[i]), "aspect": aspect} for i in kidx]
    return {
        "camera_type": "perspective",
        "render_height": path.height,
        "render_width": path.width,
        "fps": path.fps,
        "seconds": len(path) / path.fps,
        "is_cycle": False,
        "smoothness_value": 0.5,
        "default_fov": float(fov[0]),
        "default_transition_sec": (len(path) - 1) / path.fps / max(1, len(kidx) - 1),
        "keyframes": keyframes,
        "camera_path": frames,
    }
