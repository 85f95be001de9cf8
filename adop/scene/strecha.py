"""Ground-truth cameras in the text format of Strecha et al.'s multi-view benchmark (``NAME.camera`` files).

C. Strecha, W. von Hansen, L. Van Gool, P. Fua, U. Thoennessen, "On Benchmarking Camera Calibration and Multi-View
Stereo for High Resolution Imagery", CVPR 2008. Each ``<image name>.camera`` file holds, whitespace-separated: K
(3 rows), the radial distortion (one row, zeros for the undistorted benchmark images), R (3 rows, camera→world: its
columns are the camera's axes in world coordinates, OpenCV axes), the camera centre C (one row) and ``width height``.
A world point X projects as ``x ~ K · Rᵀ · (X − C)``, so world→camera is ``R_wc = Rᵀ``, ``t = −Rᵀ C``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from adop.errors import InputError
from adop.scene.camera import Camera
from adop.scene.types import Frame, Scene

SUFFIX = ".camera"


def read_strecha_cameras(camera_dir: Path, image_dir: Path | None = None) -> Scene:
    """A scene (no points) with one PINHOLE camera per distinct K and one frame per ``*.camera`` file, by name.

    Raises:
        InputError: the folder holds no camera files, or a file does not have the benchmark's layout.
    """
    files = sorted(Path(camera_dir).glob(f"*{SUFFIX}"))
    if not files:
        raise InputError(f"{camera_dir} holds no {SUFFIX} files")
    cameras: list[Camera] = []
    frames: list[Frame] = []
    for file in files:
        try:
            rows = [[float(v) for v in line.split()] for line in file.read_text(encoding="utf-8").split("\n")
                    if line.strip()]
            K, R, C = np.array(rows[0:3]), np.array(rows[4:7]), np.array(rows[7])
            width, height = int(rows[8][0]), int(rows[8][1])
        except (ValueError, IndexError, OSError) as error:
            raise InputError(f"{file} is not a camera file of the benchmark's format ({error})") from None
        camera = Camera("PINHOLE", width, height, (K[0, 0], K[1, 1], K[0, 2], K[1, 2]))
        if camera not in cameras:
            cameras.append(camera)
        frames.append(Frame(name=file.name.removesuffix(SUFFIX), camera_index=cameras.index(camera),
                            rotation=R.T, translation=-R.T @ C))
    return Scene(cameras=cameras, frames=frames, image_dir=image_dir)
