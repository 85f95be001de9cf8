"""Point clouds as binary PLY, with the attributes the rasterizer needs.

Columns: ``x y z`` (double in our scene folders, float for ADOP), optional ``nx ny nz`` (float), ``red green blue``
(uchar) and ``radius`` (float, ADOP's drop-out radius). Unknown columns in files we read are ignored; missing optional
columns come back as None.

Binary PLY with scalar vertex properties (what adop, COLMAP and ADOP write) is read and written with numpy alone, so a
machine that only trains and renders needs no PLY package; other files (ASCII, list properties before the vertices)
go through plyfile.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

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
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {len(cloud)}"]
    header += [f"property {_PLY_NAMES[np.dtype(kind).str[1:]]} {name}" for name, kind in fields]
    with atomic_path(Path(path)) as tmp:
        with open(tmp, "wb") as handle:
            handle.write(("\n".join([*header, "end_header"]) + "\n").encode("ascii"))
            handle.write(vertices.astype(vertices.dtype.newbyteorder("<")).tobytes())


def read_ply(path: Path) -> PointCloud:
    """Read a PLY point cloud (ASCII or binary); only the vertex element is used."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"point cloud file {path} does not exist")
    try:
        vertex = _read_binary_vertices(path)
        if vertex is None:
            from plyfile import PlyData

            vertex = PlyData.read(str(path))["vertex"].data
    except InputError:
        raise
    except Exception as error:  # malformed files raise several types
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


_PLY_TYPES = {"char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1", "short": "i2", "int16": "i2",
              "ushort": "u2", "uint16": "u2", "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
              "float": "f4", "float32": "f4", "double": "f8", "float64": "f8"}
_PLY_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint", "f4": "float",
              "f8": "double"}


def _read_binary_vertices(path: Path) -> np.ndarray | None:
    """The vertex records of a binary PLY whose first element is ``vertex`` with scalar properties; None otherwise."""
    with open(path, "rb") as handle:
        if handle.readline().strip() != b"ply":
            raise InputError(f"{path} is not a PLY file (no 'ply' magic line)")
        order, count, fields, first = None, 0, [], True
        while True:
            line = handle.readline()
            if not line:
                raise InputError(f"{path} is not a readable PLY point cloud (the header never ends)")
            words = line.decode("ascii", "replace").split()
            if not words or words[0] in ("comment", "obj_info"):
                continue
            if words[0] == "end_header":
                break
            if words[0] == "format":
                order = {"binary_little_endian": "<", "binary_big_endian": ">"}.get(words[1])
            elif words[0] == "element":
                if not first or words[1] != "vertex":
                    return None  # another element first (or after): leave it to plyfile
                count, first = int(words[2]), False
            elif words[0] == "property":
                if words[1] == "list" or words[1] not in _PLY_TYPES:
                    return None
                fields.append((words[2], order + _PLY_TYPES[words[1]] if order else _PLY_TYPES[words[1]]))
        if order is None:
            return None  # ASCII
        dtype = np.dtype(fields)
        data = handle.read(count * dtype.itemsize)
    if len(data) < count * dtype.itemsize:
        raise InputError(f"{path} is truncated: the header promises {count} points, the file holds fewer")
    return np.frombuffer(data, dtype=dtype, count=count)
