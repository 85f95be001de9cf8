"""Point clouds as binary PLY (via plyfile), with the attributes the rasterizer needs.

Columns: ``x y z`` (double in our scene folders, float for ADOP), optional ``nx ny nz`` (float), ``red green blue``
(uchar) and ``radius`` (float, ADOP's drop-out radius). Unknown columns in files we read are ignored; missing optional
columns come back as None.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement

from adop.errors import InputError
from adop.scene.types import PointCloud
from adop.storage import atomic_path


def write_ply(path: Path, cloud: PointCloud, *, position_dtype: str = "f8") -> None:
    """Write ``cloud`` as binary little-endian PLY, atomically (a reader never sees half a file)."""
    fields: list[tuple[str, str]] = [("x", position_dtype), ("y", position_dtype), ("z", position_dtype)]
    if cloud.normals is not None:
        fields += [("nx", "f4"), ("ny", "f4"), ("nz", "f4")]
    if cloud.colors is not None:
        fields += [("red", "u1"), ("green", "u1"), ("blue", "u1")]
    if cloud.radius is not None:
        fields += [("radius", "f4")]
    vertices = np.empty(len(cloud), dtype=fields)
    for axis, name in enumerate("xyz"):
        vertices[name] = cloud.positions[:, axis]
    if cloud.normals is not None:
        for axis, name in enumerate(("nx", "ny", "nz")):
            vertices[name] = cloud.normals[:, axis]
    if cloud.colors is not None:
        for axis, name in enumerate(("red", "green", "blue")):
            vertices[name] = cloud.colors[:, axis]
    if cloud.radius is not None:
        vertices["radius"] = cloud.radius
    with atomic_path(Path(path)) as tmp:
        PlyData([PlyElement.describe(vertices, "vertex")], byte_order="<").write(str(tmp))


def read_ply(path: Path) -> PointCloud:
    """Read a PLY point cloud (ASCII or binary); only the vertex element is used."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"point cloud file {path} does not exist")
    try:
        data = PlyData.read(str(path))
        vertex = data["vertex"].data
    except Exception as error:  # plyfile raises several types for malformed files
        raise InputError(f"{path} is not a readable PLY point cloud ({error})") from None
    names = set(vertex.dtype.names or ())
    if not {"x", "y", "z"} <= names:
        raise InputError(f"{path} has no x/y/z vertex properties")

    def stack(columns: tuple[str, ...]) -> np.ndarray | None:
        if not set(columns) <= names:
            return None
        return np.stack([np.asarray(vertex[c]) for c in columns], axis=1)

    colors = stack(("red", "green", "blue"))
    if colors is not None and colors.dtype != np.uint8:
        colors = np.clip(colors * (255.0 if colors.max() <= 1.0 else 1.0), 0, 255).round().astype(np.uint8)
    return PointCloud(
        positions=stack(("x", "y", "z")),
        normals=stack(("nx", "ny", "nz")),
        colors=colors,
        radius=np.asarray(vertex["radius"]) if "radius" in names else None,
    )
