"""Reading camera path files of every kind: ours (``frames`` or ``keyframes``) and nerfstudio's ``camera_path.json``.

The format modules depend on ``camera_path`` and never the other way round; this module sits above them all and picks
the reader from the document itself, so a user can hand any of the three to ``adop render --path`` or ``adop run``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from adop.errors import InputError
from adop.paths.camera_path import CameraPath, check_format, read_json_file
from adop.paths.keyframes import keyframe_path
from adop.paths.nerfstudio import import_nerfstudio_path


def load_camera_path(data: Mapping[str, Any] | str | os.PathLike[str], *, source: str | None = None) -> CameraPath:
    """Read a camera path from a parsed document or a ``.json`` file, whichever of the three kinds it is.

    Raises:
        InputError: unreadable file, bad JSON, unknown format, or a missing/invalid field (the message names the file
            and the field).
    """
    if not isinstance(data, Mapping):
        source = source or str(data)
        data = read_json_file(data)
    source = source or "<camera path>"
    if "camera_path" in data and "format" not in data:
        return import_nerfstudio_path(data, source=source)
    check_format(data, source)
    kind = data.get("kind")
    if kind == "keyframes":
        return keyframe_path(data, source=source)
    if kind != "frames":
        raise InputError(f"{source}: field 'kind' must be 'frames' or 'keyframes', got {kind!r}")
    return CameraPath.from_json(data, source=source)
