"""Similarity alignment of two point sets: how SfM results (defined up to scale) are compared with ground truth."""

from __future__ import annotations

import numpy as np


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
    """Least-squares ``dst ≈ s·R·src + t`` from ``[N, 3]`` correspondences (Umeyama 1991).

    Returns:
        ``(s, R [3, 3], t [3])``; ``R`` is a proper rotation (the reflection case is corrected).
    """
    mu_s, mu_d = src.mean(0), dst.mean(0)
    xs, xd = src - mu_s, dst - mu_d
    u, sig, vt = np.linalg.svd(xd.T @ xs / len(src))
    d = np.eye(3)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        d[2, 2] = -1
    rotation = u @ d @ vt
    variance = (xs * xs).sum() / len(src)
    scale = float(np.trace(np.diag(sig) @ d) / variance) if variance > 0 else 1.0
    return scale, rotation, mu_d - scale * rotation @ mu_s
