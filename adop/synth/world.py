"""The procedural 3-D scene: geometry, materials, lights and markers, and its linear radiance at any surface point.

The scene is a 16×16 m walled yard (z up, metres, ground at z = 0) holding boxes, spheres, a cylinder, an emissive
light box and small magenta marker spheres. Every surface except the markers carries a solid luminance texture
(``adop.synth.texture``); lighting is a shadowing sun plus a sky ambient term, and the light box emits several stops
above the sunlit surfaces, so the linear radiance spans about ten stops between shadowed dark texture and the light.
Shading is view-independent (Lambert plus emission), so one radiance per surface point is the exact ground truth of
both the images and the dense point cloud.

Markers are emissive (constant radiance, no texture, no shading) and the only magenta surfaces in the scene: every other
material keeps green ≥ (red + blue)/2, so the "magenta-ness" ``(R + B)/2 − G`` of linear radiance is positive exactly on
markers. Tests use them to check that the written cameras project known 3-D points where the renderer drew them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import open3d as o3d

from adop.synth.texture import luminance_texture

_KIND_FLAT, _KIND_SPHERE, _KIND_CYLINDER = 0, 1, 2
MARKER_RADIANCE = (0.20, 0.006, 0.20)
"""Linear radiance of every marker sphere (magenta, unlit); kept low enough never to clip in any capture image."""
SKY_RADIANCE = (0.92, 1.0, 1.08)
"""Radiance of rays that hit nothing, scaled by ``1.3 + 0.7·max(d_z, 0)``."""
SUN_DIRECTION = (0.45, -0.35, 0.82)
"""Direction towards the sun (normalised on use)."""
AMBIENT = 0.22
"""Sky ambient irradiance (sun irradiance is 1): ``L = albedo·(sun·cosθ·visible + AMBIENT·(0.6 + 0.4 n_z))``."""
TEXTURE_BASE_FREQUENCY = 4.0
"""Lattice cells per metre of the coarsest texture octave (five octaves up to 25.6 cells per metre)."""


@dataclass(frozen=True)
class SynthObject:
    """One solid of the scene and its material.

    Attributes:
        name: label used in the ground-truth description.
        kind: "flat" (boxes, quads: face normals), "sphere" or "cylinder" (analytic normals, vertical axis).
        center: reference point (sphere/cylinder centre; for others, informative only).
        radius: sphere/cylinder radius in metres (0 for flat solids).
        footprint: radius in metres of a vertical cylinder around ``center`` that contains the solid (marker placement).
        top: highest z of the solid.
        tint: RGB multiplier of the luminance texture (green ≥ mean of red and blue, see module docstring).
        texture_scale: relative texture frequency.
        emission: RGB emitted radiance scale, or None for a lit (Lambertian) surface.
        textured: whether the emission/albedo is modulated by the texture (False only for markers).
    """

    name: str
    kind: str
    center: tuple[float, float, float]
    radius: float
    footprint: float
    top: float
    tint: tuple[float, float, float]
    texture_scale: float = 1.0
    emission: tuple[float, float, float] | None = None
    textured: bool = True


def _quad(corners: np.ndarray, inward: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two triangles over four corners (in order around the quad), wound so that their normal is ``inward``."""
    triangles = np.array([[0, 1, 2], [0, 2, 3]])
    normal = np.cross(corners[1] - corners[0], corners[2] - corners[0])
    if np.dot(normal, inward) < 0:
        triangles = triangles[:, ::-1]
    return corners.astype(np.float64), triangles


def _legacy(mesh: o3d.geometry.TriangleMesh) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(mesh.vertices, dtype=np.float64), np.asarray(mesh.triangles, dtype=np.int64)


def _box(size: tuple[float, float, float], center_xy: tuple[float, float], z0: float, yaw_deg: float):
    mesh = o3d.geometry.TriangleMesh.create_box(*size)
    vertices, triangles = _legacy(mesh)
    vertices = vertices - np.array([size[0] / 2, size[1] / 2, 0.0])
    yaw = np.radians(yaw_deg)
    rot = np.array([[np.cos(yaw), -np.sin(yaw), 0], [np.sin(yaw), np.cos(yaw), 0], [0, 0, 1]])
    return vertices @ rot.T + np.array([center_xy[0], center_xy[1], z0]), triangles


class SynthWorld:
    """Geometry (one open3d ``RaycastingScene``), per-triangle materials, lights and marker positions.

    Build it with ``build_world(seed, marker_radius)``; it is deterministic for a seed.
    """

    def __init__(
        self, objects: list[SynthObject], meshes: list[tuple[np.ndarray, np.ndarray]], markers: np.ndarray, seed: int
    ) -> None:
        self.objects = objects
        self.markers = np.asarray(markers, dtype=np.float64).reshape(-1, 3)
        self.seed = seed
        offsets, vertex_chunks, triangle_chunks, owner = 0, [], [], []
        for index, (vertices, triangles) in enumerate(meshes):
            vertex_chunks.append(vertices)
            triangle_chunks.append(triangles + offsets)
            owner.append(np.full(len(triangles), index, dtype=np.int64))
            offsets += len(vertices)
        self.vertices = np.concatenate(vertex_chunks)
        self.triangles = np.concatenate(triangle_chunks)
        self.triangle_object = np.concatenate(owner)
        v = self.vertices[self.triangles]
        cross = np.cross(v[:, 1] - v[:, 0], v[:, 2] - v[:, 0])
        self.triangle_area = 0.5 * np.linalg.norm(cross, axis=1)
        self.triangle_normal = cross / np.maximum(2.0 * self.triangle_area[:, None], 1e-12)
        self.raycaster = o3d.t.geometry.RaycastingScene()
        self.raycaster.add_triangles(
            o3d.core.Tensor(self.vertices.astype(np.float32)), o3d.core.Tensor(self.triangles.astype(np.uint32))
        )
        self._kind = np.array([{"flat": 0, "sphere": 1, "cylinder": 2}[o.kind] for o in objects])
        self._center = np.array([o.center for o in objects], dtype=np.float64)
        self._tint = np.array([o.tint for o in objects], dtype=np.float32)
        self._emission = np.array([o.emission or (0.0, 0.0, 0.0) for o in objects], dtype=np.float32)
        self._emissive = np.array([o.emission is not None for o in objects])
        self._textured = np.array([o.textured for o in objects])
        self._tex_scale = np.array([o.texture_scale for o in objects], dtype=np.float64)
        self._tex_offset = np.stack(
            [np.arange(len(objects)) * 97.31, np.arange(len(objects)) * -53.7, np.zeros(len(objects))], axis=1
        )
        sun = np.asarray(SUN_DIRECTION, dtype=np.float64)
        self.sun_direction = sun / np.linalg.norm(sun)

    # ---- ray queries ------------------------------------------------------------------------------------------------

    def cast(self, origins: np.ndarray, directions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Nearest hit along each ray: distance ``[N]`` (inf on a miss) and triangle index ``[N]`` (−1 on a miss)."""
        rays = np.concatenate([origins, directions], axis=1).astype(np.float32)
        result = self.raycaster.cast_rays(o3d.core.Tensor(rays))
        t_hit = result["t_hit"].numpy().astype(np.float64)
        primitive = result["primitive_ids"].numpy().astype(np.int64)
        miss = ~np.isfinite(t_hit)
        primitive[miss] = -1
        return t_hit, primitive

    def surface_normals(self, points: np.ndarray, triangle: np.ndarray) -> np.ndarray:
        """Outward unit normals at surface ``points [N, 3]`` lying on ``triangle [N]`` (analytic on curved solids)."""
        obj = self.triangle_object[triangle]
        normals = self.triangle_normal[triangle].copy()
        kind = self._kind[obj]
        sphere = kind == _KIND_SPHERE
        normals[sphere] = points[sphere] - self._center[obj[sphere]]
        side = (kind == _KIND_CYLINDER) & (np.abs(normals[:, 2]) < 0.5)
        radial = points[side] - self._center[obj[side]]
        radial[:, 2] = 0.0
        normals[side] = radial
        return normals / np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-12)

    def sky(self, directions: np.ndarray) -> np.ndarray:
        """Radiance ``[N, 3]`` of rays that leave the scene."""
        up = np.clip(directions[:, 2], 0.0, None)[:, None]
        return (np.asarray(SKY_RADIANCE) * (1.3 + 0.7 * up)).astype(np.float32)

    # ---- shading ----------------------------------------------------------------------------------------------------

    def radiance(self, points: np.ndarray, normals: np.ndarray, triangle: np.ndarray) -> np.ndarray:
        """Linear radiance ``[N, 3]`` leaving surface ``points`` (view-independent, so the same for every camera).

        Args:
            points: ``[N, 3]`` world positions on the surface.
            normals: ``[N, 3]`` unit normals facing the side the point is seen from.
            triangle: ``[N]`` triangle index of each point (selects the material).
        """
        obj = self.triangle_object[triangle]
        out = np.zeros((len(points), 3), dtype=np.float32)
        textured = self._textured[obj]
        pattern = np.ones(len(points), dtype=np.float32)
        if textured.any():
            q = points[textured] * self._tex_scale[obj[textured], None] + self._tex_offset[obj[textured]]
            pattern[textured] = luminance_texture(q, self.seed, TEXTURE_BASE_FREQUENCY)
        emissive = self._emissive[obj]
        if emissive.any():
            e_obj = obj[emissive]
            modulation = np.where(self._textured[e_obj], 0.3 + 0.8 * pattern[emissive], 1.0).astype(np.float32)
            out[emissive] = self._emission[e_obj] * modulation[:, None]
        lit = ~emissive
        if lit.any():
            out[lit] = self._lambert(points[lit], normals[lit], obj[lit], pattern[lit])
        return out

    def _lambert(self, points: np.ndarray, normals: np.ndarray, obj: np.ndarray, pattern: np.ndarray) -> np.ndarray:
        cos_sun = normals @ self.sun_direction
        facing = cos_sun > 0
        visible = np.zeros(len(points), dtype=bool)
        if facing.any():
            origins = points[facing] + 2e-3 * normals[facing]
            dirs = np.broadcast_to(self.sun_direction, origins.shape)
            rays = np.concatenate([origins, dirs], axis=1).astype(np.float32)
            occluded = self.raycaster.test_occlusions(o3d.core.Tensor(rays)).numpy().astype(bool)
            visible[facing] = ~occluded
        irradiance = np.where(visible, cos_sun, 0.0) + AMBIENT * (0.6 + 0.4 * normals[:, 2])
        albedo = self._tint[obj] * pattern[:, None]
        return (albedo * irradiance[:, None]).astype(np.float32)

    # ---- surface sampling ------------------------------------------------------------------------------------------

    def sample_surface(self, count: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``count`` area-uniform surface samples: positions ``[N,3]``, outward normals ``[N,3]``, triangles ``[N]``."""
        # faces lying on the ground and facing down (box and cylinder bottoms) can never be seen: leave them out
        v_z = self.vertices[self.triangles][:, :, 2]
        hidden = (np.abs(v_z).max(axis=1) < 1e-6) & (self.triangle_normal[:, 2] < -0.5)
        weight = np.where(hidden, 0.0, self.triangle_area)
        probability = weight / weight.sum()
        triangle = rng.choice(len(self.triangles), size=count, p=probability)
        a, b = rng.random(count), rng.random(count)
        flip = a + b > 1
        a[flip], b[flip] = 1 - a[flip], 1 - b[flip]
        v = self.vertices[self.triangles[triangle]]
        points = v[:, 0] + a[:, None] * (v[:, 1] - v[:, 0]) + b[:, None] * (v[:, 2] - v[:, 0])
        return points, self.surface_normals(points, triangle), triangle

    def describe(self) -> dict:
        """JSON-ready description of objects and lights (ground-truth diagnostics)."""
        return {
            "up": [0.0, 0.0, 1.0],
            "sun_direction": self.sun_direction.tolist(),
            "sun_irradiance": 1.0,
            "ambient": AMBIENT,
            "sky_radiance": list(SKY_RADIANCE),
            "objects": [
                {"name": o.name, "kind": o.kind, "center": list(o.center), "tint": list(o.tint), "emission": o.emission}
                for o in self.objects
            ],
        }


# ---- the scene ------------------------------------------------------------------------------------------------------

_HALF = 8.0  # half-size of the walled yard, metres
_WALL_HEIGHT = 6.0


def _yard(objects: list[SynthObject], meshes: list) -> None:
    """Ground plane and four walls (single-sided quads facing the inside)."""
    h = _HALF
    ground = np.array([[-h, -h, 0], [h, -h, 0], [h, h, 0], [-h, h, 0]], dtype=np.float64)
    objects.append(SynthObject("ground", "flat", (0, 0, 0), 0.0, 0.0, 0.0, (0.95, 0.93, 0.85), 1.0))
    meshes.append(_quad(ground, np.array([0, 0, 1.0])))
    walls = [
        ((1, 0), (0.75, 0.9, 1.0)),
        ((-1, 0), (1.0, 0.9, 0.75)),
        ((0, 1), (0.85, 1.0, 0.8)),
        ((0, -1), (0.9, 0.9, 0.9)),
    ]
    for (nx, ny), tint in walls:
        # wall at x = nx·h (or y = ny·h), facing the centre
        along = np.array([-ny, nx, 0.0])
        base = np.array([nx * h, ny * h, 0.0])
        corners = np.array([base - h * along, base + h * along, base + h * along, base - h * along])
        corners[2:, 2] = _WALL_HEIGHT
        objects.append(SynthObject(f"wall{nx:+d}{ny:+d}", "flat", tuple(base), 0.0, 0.0, _WALL_HEIGHT, tint, 0.7))
        meshes.append(_quad(corners, -np.array([nx, ny, 0.0])))


def _solids(objects: list[SynthObject], meshes: list, rng: np.random.Generator) -> None:
    """Boxes, spheres, a cylinder and the emissive light box, each jittered a little by the seed."""

    def jitter(x: float, y: float) -> tuple[float, float]:
        dx, dy = rng.uniform(-0.15, 0.15, size=2)
        return x + float(dx), y + float(dy)

    boxes = [  # size, centre xy, yaw, tint, texture scale
        ((1.4, 1.0, 1.2), (-1.8, 1.2), 25.0, (1.0, 0.9, 0.75), 1.3),
        ((0.9, 0.9, 2.0), (1.5, 2.1), -15.0, (0.75, 0.9, 1.0), 1.6),
        ((2.0, 0.7, 0.6), (0.6, -2.0), 40.0, (0.85, 1.0, 0.8), 1.4),
        ((0.7, 0.7, 0.7), (2.5, -0.4), 10.0, (1.0, 0.8, 0.55), 2.0),
    ]
    for i, (size, xy, yaw, tint, scale) in enumerate(boxes):
        xy = jitter(*xy)
        yaw += float(rng.uniform(-8, 8))
        footprint = 0.5 * float(np.hypot(size[0], size[1]))
        objects.append(
            SynthObject(f"box{i}", "flat", (xy[0], xy[1], size[2] / 2), 0.0, footprint, size[2], tint, scale)
        )
        meshes.append(_box(size, xy, 0.0, yaw))
    top_of_box0 = objects[-len(boxes)]
    spheres = [  # radius, centre, tint
        (0.7, (*jitter(0.2, 0.5), 0.7), (0.95, 0.95, 0.95)),
        (0.45, (*jitter(-2.4, -1.5), 0.45), (0.6, 0.85, 0.9)),
        (0.35, (top_of_box0.center[0], top_of_box0.center[1], top_of_box0.top + 0.35), (1.0, 0.85, 0.7)),
    ]
    for i, (radius, center, tint) in enumerate(spheres):
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=radius, resolution=32)
        vertices, triangles = _legacy(mesh)
        objects.append(SynthObject(f"sphere{i}", "sphere", center, radius, radius, center[2] + radius, tint, 1.8))
        meshes.append((vertices + np.asarray(center), triangles))
    cx, cy = jitter(-0.5, 2.7)
    cylinder = o3d.geometry.TriangleMesh.create_cylinder(radius=0.4, height=1.6, resolution=64, split=1)
    vertices, triangles = _legacy(cylinder)
    objects.append(SynthObject("cylinder", "cylinder", (cx, cy, 0.8), 0.4, 0.4, 1.6, (0.9, 0.95, 0.85), 1.7))
    meshes.append((vertices + np.array([cx, cy, 0.8]), triangles))
    lx, ly = jitter(-2.7, 3.0)
    emission = (9.0, 8.4, 7.2)  # green ≥ mean(red, blue): never magenta
    objects.append(SynthObject("lightbox", "flat", (lx, ly, 0.8), 0.0, 1.0, 1.4, (1, 1, 1), 1.2, emission))
    meshes.append(_box((1.8, 0.25, 1.1), (lx, ly), 0.3, -35.0))


def _marker_positions(objects: list[SynthObject], radius: float) -> np.ndarray:
    """Marker centres: a floor grid (spheres resting on the ground) plus two floating rings, clear of every solid."""
    candidates = [
        (x, y, radius) for x in (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0) for y in (-6.0, -4.0, -2.0, 0.0, 2.0, 4.0, 6.0)
    ]
    for ring_radius, z, count in ((3.6, 2.4, 8), (6.9, 3.5, 12)):
        for k in range(count):
            angle = 2 * np.pi * (k + 0.5) / count
            candidates.append((ring_radius * np.cos(angle), ring_radius * np.sin(angle), z))
    kept = []
    for point in candidates:
        clear = all(
            o.footprint == 0.0
            or point[2] - radius > o.top + 0.3
            or np.hypot(point[0] - o.center[0], point[1] - o.center[1]) > o.footprint + radius + 0.3
            for o in objects
        )
        if clear:
            kept.append(point)
    return np.array(kept, dtype=np.float64)


def build_world(seed: int, marker_radius: float = 0.08) -> SynthWorld:
    """The procedural scene for ``seed``: same seed, same geometry, materials and texture (bit for bit).

    Args:
        seed: selects object jitter and the texture field.
        marker_radius: radius in metres of the magenta marker spheres.
    """
    rng = np.random.default_rng([seed, 0x5CE7E])
    objects: list[SynthObject] = []
    meshes: list[tuple[np.ndarray, np.ndarray]] = []
    _yard(objects, meshes)
    _solids(objects, meshes, rng)
    markers = _marker_positions(objects, marker_radius)
    for i, center in enumerate(markers):
        mesh = o3d.geometry.TriangleMesh.create_sphere(radius=marker_radius, resolution=24)
        vertices, triangles = _legacy(mesh)
        objects.append(
            SynthObject(
                f"marker{i}",
                "sphere",
                tuple(center),
                marker_radius,
                marker_radius,
                center[2] + marker_radius,
                MARKER_RADIANCE,
                1.0,
                MARKER_RADIANCE,
                textured=False,
            )
        )
        meshes.append((vertices + center, triangles))
    return SynthWorld(objects, meshes, markers, seed)
