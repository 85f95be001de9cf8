"""Camera paths generated from the capture cameras: a smoothed tour through them, and an orbit around the scene.

Interpolating capture poses in capture order gives jerky, uneven videos (nerfstudio PR #1911; gsplat PR #380 added
an ellipse for that reason), so `path_through_cameras` reorders the cameras by proximity, smooths the tour and walks
it at constant speed, and `orbit_path` offers the ellipse as the dependable alternative. Poses are world→camera,
OpenCV axes (docs/conventions.md).
"""

from __future__ import annotations

import numpy as np
from scipy.ndimage import gaussian_filter1d
from scipy.spatial.transform import Rotation

from adop.errors import InputError, ShapeError
from adop.paths._curves import arc_length_table, eval_rotations, position_spline, rotation_spline, tau_at_arc_lengths
from adop.paths.camera_path import CameraPath, look_at, pinhole


def _check_poses(rotations: np.ndarray, translations: np.ndarray, minimum: int) -> tuple[np.ndarray, np.ndarray]:
    rot = np.asarray(rotations, dtype=np.float64)
    trans = np.asarray(translations, dtype=np.float64)
    if rot.ndim != 3 or rot.shape[1:] != (3, 3):
        raise ShapeError(f"rotations must be [N,3,3], got {list(rot.shape)}")
    if trans.shape != (rot.shape[0], 3):
        raise ShapeError(f"translations must be [{rot.shape[0]},3], got {list(trans.shape)}")
    if rot.shape[0] < minimum:
        raise InputError(f"need at least {minimum} capture cameras for this path, got {rot.shape[0]}")
    return rot, trans


def _frame_count(seconds: float, fps: float) -> int:
    if not (seconds > 0 and fps > 0):
        raise InputError(f"seconds and fps must be positive, got seconds={seconds}, fps={fps}")
    return max(2, int(round(seconds * fps)))


def mean_up(rotations: np.ndarray) -> np.ndarray:
    """Unit world direction that the capture cameras show as screen-up on average (camera −y; OpenCV y is down)."""
    up = -np.asarray(rotations)[:, 1, :].mean(axis=0)
    norm = np.linalg.norm(up)
    if norm < 1e-9:
        raise InputError("the capture cameras disagree on 'up' (their mean up vector is zero); give up explicitly")
    return up / norm


def order_by_proximity(centers: np.ndarray, start: int | None = None) -> np.ndarray:
    """Order points into a short open tour: greedy nearest neighbour, then 2-opt until no move shortens it.

    Args:
        centers: ``[N, 3]`` camera centres.
        start: index to start from; by default the point farthest from the centroid (an end of the capture).

    Returns:
        ``[N]`` permutation of ``range(N)``.
    """
    pts = np.asarray(centers, dtype=np.float64)
    n = len(pts)
    if n <= 2:
        return np.arange(n)
    dist = np.linalg.norm(pts[:, None] - pts[None], axis=-1)
    if start is None:
        start = int(np.argmax(np.linalg.norm(pts - pts.mean(axis=0), axis=1)))
    order = [start]
    free = np.ones(n, dtype=bool)
    free[start] = False
    for _ in range(n - 1):
        d = np.where(free, dist[order[-1]], np.inf)
        nxt = int(np.argmin(d))
        order.append(nxt)
        free[nxt] = False
    tour = np.array(order)
    for _ in range(50):  # 2-opt on an open path: reverse tour[i+1..j] if it shortens the edges (i,i+1), (j,j+1)
        improved = False
        for i in range(n - 2):
            a, b = tour[i], tour[i + 1]
            j = np.arange(i + 2, n)
            c = tour[j]
            d_next = np.where(j + 1 < n, dist[c, tour[np.minimum(j + 1, n - 1)]], 0.0)
            e_next = np.where(j + 1 < n, dist[b, tour[np.minimum(j + 1, n - 1)]], 0.0)
            gain = dist[a, b] + d_next - dist[a, c] - e_next
            k = int(np.argmax(gain))
            if gain[k] > 1e-12:
                jj = j[k]
                tour[i + 1 : jj + 1] = tour[i + 1 : jj + 1][::-1].copy()
                improved = True
        if not improved:
            break
    return tour


def path_through_cameras(
    rotations: np.ndarray,  # [N, 3, 3] world→camera
    translations: np.ndarray,  # [N, 3]
    *,
    width: int,
    height: int,
    fps: float = 24.0,
    seconds: float = 10.0,
    fov_deg: float = 50.0,
    focal_px: float | None = None,
    smoothing: float = 1.5,
    start: int | None = None,
) -> CameraPath:
    """A fly-through past the capture cameras, ordered by proximity, smoothed, at constant speed.

    The tour (`order_by_proximity`) is smoothed with a Gaussian of ``smoothing`` cameras along the tour (positions,
    and rotations as sign-aligned quaternions), then a C¹ Hermite spline is laid through the smoothed centres with
    chord-length knots and resampled by arc length, so every frame moves the camera the same distance. Rotations
    follow the same knots through a rotation spline.

    Args:
        rotations: ``[N, 3, 3]`` capture world→camera rotations.
        translations: ``[N, 3]`` capture world→camera translations.
        width: output width in pixels.
        height: output height in pixels.
        fps: frames per second.
        seconds: duration; the path has ``round(seconds * fps)`` frames.
        fov_deg: vertical field of view in degrees (ignored when ``focal_px`` is given).
        focal_px: focal length in output pixels, e.g. the capture focal scaled to the output height.
        smoothing: Gaussian sigma in cameras along the tour; 0 passes through the capture centres exactly.
        start: index of the first camera; default: an end of the capture (see `order_by_proximity`).

    Returns:
        The `CameraPath`.

    Raises:
        InputError: fewer than two cameras, or all cameras at one position (use `orbit_path` then).
    """
    rot, trans = _check_poses(rotations, translations, 2)
    centers = -np.einsum("nji,nj->ni", rot, trans)
    order = order_by_proximity(centers, start)
    pts = centers[order]
    quats = Rotation.from_matrix(rot[order]).as_quat()
    for i in range(1, len(quats)):  # consecutive quaternions in one hemisphere, so that averaging is meaningful
        if np.dot(quats[i], quats[i - 1]) < 0:
            quats[i] = -quats[i]
    if smoothing > 0:
        pts = gaussian_filter1d(pts, smoothing, axis=0, mode="nearest")
        quats = gaussian_filter1d(quats, smoothing, axis=0, mode="nearest")
    chord = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    total = chord.sum()
    if total < 1e-12:
        raise InputError("all capture cameras are at one position, so there is no path through them; use orbit_path")
    keep = np.concatenate([[True], chord > 1e-9 * total])  # knots must increase strictly
    pts, quats = pts[keep], quats[keep]
    knots = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(pts, axis=0), axis=1))])
    spline = position_spline(knots, pts)
    rots = Rotation.from_quat(quats)
    rspline = rotation_spline(knots, rots)
    tau_table, s_table = arc_length_table(spline, knots)
    n_frames = _frame_count(seconds, fps)
    tau = tau_at_arc_lengths(tau_table, s_table, np.linspace(0.0, s_table[-1], n_frames))
    out_rot = eval_rotations(knots, rots, rspline, tau).as_matrix()
    out_t = -np.einsum("fij,fj->fi", out_rot, spline(tau))
    k = pinhole(width, height, focal_px=focal_px) if focal_px is not None else pinhole(width, height, fov_deg=fov_deg)
    return CameraPath(out_rot, out_t, np.tile(k, (n_frames, 1)), width, height, fps)


def orbit_path(
    rotations: np.ndarray,  # [N, 3, 3] world→camera
    translations: np.ndarray,  # [N, 3]
    center: np.ndarray,  # [3] point to look at, e.g. the point cloud's median
    *,
    width: int,
    height: int,
    fps: float = 24.0,
    seconds: float = 10.0,
    fov_deg: float = 50.0,
    focal_px: float | None = None,
    turns: float = 1.0,
    radius_scale: float = 1.0,
    height_offset: float = 0.0,
    radius_percentile: float = 90.0,
) -> CameraPath:
    """An ellipse around the scene, in the dominant plane of the capture centres, looking at ``center``.

    The plane's normal is the least-variance direction of the camera centres (oriented towards the cameras' mean up);
    the ellipse is centred on ``center`` projected into the plane, its axes along the two main directions of the
    centres, its radii the ``radius_percentile`` of the centres' distances along those axes (robust to a few stray
    cameras, as in gsplat's ellipse). The camera starts near the first capture camera, turns counter-clockwise seen
    from above, at constant speed (arc length, not angle), and a whole number of ``turns`` loops seamlessly.

    Args:
        rotations: ``[N, 3, 3]`` capture world→camera rotations.
        translations: ``[N, 3]`` capture world→camera translations.
        center: ``[3]`` the point every frame looks at.
        width: output width in pixels.
        height: output height in pixels.
        fps: frames per second.
        seconds: duration; ``round(seconds * fps)`` frames.
        fov_deg: vertical field of view in degrees (ignored when ``focal_px`` is given).
        focal_px: focal length in output pixels.
        turns: number of revolutions.
        radius_scale: multiplies both radii (``< 1`` moves closer).
        height_offset: shifts the ellipse along the plane normal, in world units.
        radius_percentile: percentile of the centres' spread used as the radii.

    Raises:
        InputError: fewer than three cameras, or an ellipse of zero size.
    """
    rot, trans = _check_poses(rotations, translations, 3)
    target = np.asarray(center, dtype=np.float64).reshape(3)
    centers = -np.einsum("nji,nj->ni", rot, trans)
    up = mean_up(rot)
    mean = centers.mean(axis=0)
    _, vecs = np.linalg.eigh(np.cov((centers - mean).T))
    normal = vecs[:, 0] if np.dot(vecs[:, 0], up) >= 0 else -vecs[:, 0]
    e1 = vecs[:, 2]
    e2 = np.cross(normal, e1)
    origin = target + normal * (np.dot(mean - target, normal) + height_offset)
    rel = centers - origin
    x, y = rel @ e1, rel @ e2
    a = radius_scale * np.percentile(np.abs(x), radius_percentile)
    b = radius_scale * np.percentile(np.abs(y), radius_percentile)
    if max(a, b) < 1e-9:
        raise InputError("the capture cameras span no area around the centre; give a centre away from the cameras")
    a, b = max(a, 1e-3 * b), max(b, 1e-3 * a)  # a flat capture still orbits, as a thin ellipse
    theta0 = float(np.arctan2(y[0] / b, x[0] / a))
    dense = theta0 + np.linspace(0.0, 2.0 * np.pi * turns, 4096 * max(1, int(np.ceil(turns))) + 1)
    ring = origin + np.outer(a * np.cos(dense), e1) + np.outer(b * np.sin(dense), e2)
    s = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(ring, axis=0), axis=1))])
    n_frames = _frame_count(seconds, fps)
    closed = abs(turns - round(turns)) < 1e-9
    targets = s[-1] * np.arange(n_frames) / (n_frames if closed else n_frames - 1)
    theta = np.interp(targets, s, dense)
    eye = origin + np.outer(a * np.cos(theta), e1) + np.outer(b * np.sin(theta), e2)
    out_rot, out_t = look_at(eye, target, up)
    k = pinhole(width, height, focal_px=focal_px) if focal_px is not None else pinhole(width, height, fov_deg=fov_deg)
    return CameraPath(out_rot, out_t, np.tile(k, (n_frames, 1)), width, height, fps)
