"""Solid 3-D value noise: view-consistent, luminance-rich albedo without any UV atlas.

The texture is a function of the world position of a surface point, so every view of a point sees the same albedo
and the dense ground-truth point cloud can be coloured by the same function. Its contrast lives in *luminance*:
SIFT works on grey levels, and an earlier prototype with independent noise per RGB channel gave a third of the
keypoints and matches (docs/method.md §13).

Everything is vectorised numpy on uint32 hashes (wrapping arithmetic), so the result is bit-identical across runs
and machines for a given seed.
"""

from __future__ import annotations

import numpy as np

_PRIME_X = np.uint32(0x8DA6B343)
_PRIME_Y = np.uint32(0xD8163841)
_PRIME_Z = np.uint32(0xCB1AB31F)
_MIX_1 = np.uint32(0x7FEB352D)
_MIX_2 = np.uint32(0x846CA68B)


def _mix(h: np.ndarray) -> np.ndarray:
    """Avalanche a uint32 array (lowbias32 finaliser) so neighbouring lattice cells get unrelated values."""
    h = h ^ (h >> np.uint32(16))
    h = h * _MIX_1
    h = h ^ (h >> np.uint32(15))
    h = h * _MIX_2
    return h ^ (h >> np.uint32(16))


def value_noise(points: np.ndarray, seed: int) -> np.ndarray:
    """Trilinearly interpolated lattice noise (smoothstep weights) at ``points [N, 3]``; values in [0, 1].

    Args:
        points: positions in lattice units (multiply world metres by the wanted frequency first).
        seed: selects an independent noise field.

    Returns:
        ``[N]`` float32.
    """
    p = np.asarray(points, dtype=np.float64)
    cell = np.floor(p)
    frac = (p - cell).astype(np.float32)
    w = frac * frac * (3.0 - 2.0 * frac)
    ci = cell.astype(np.int64).astype(np.uint32)  # wraps negatives deterministically
    seed_h = _mix(np.array([seed & 0xFFFFFFFF], dtype=np.uint32) ^ np.uint32(0x9E3779B9))[0]
    hx = (ci[:, 0] * _PRIME_X, (ci[:, 0] + np.uint32(1)) * _PRIME_X)
    hy = (ci[:, 1] * _PRIME_Y, (ci[:, 1] + np.uint32(1)) * _PRIME_Y)
    hz = (ci[:, 2] * _PRIME_Z ^ seed_h, (ci[:, 2] + np.uint32(1)) * _PRIME_Z ^ seed_h)
    scale = np.float32(1.0 / (1 << 24))

    def corner(ix: int, iy: int, iz: int) -> np.ndarray:
        return (_mix(hx[ix] ^ hy[iy] ^ hz[iz]) >> np.uint32(8)).astype(np.float32) * scale

    wx, wy, wz = w[:, 0], w[:, 1], w[:, 2]
    x00 = corner(0, 0, 0) + wx * (corner(1, 0, 0) - corner(0, 0, 0))
    x10 = corner(0, 1, 0) + wx * (corner(1, 1, 0) - corner(0, 1, 0))
    x01 = corner(0, 0, 1) + wx * (corner(1, 0, 1) - corner(0, 0, 1))
    x11 = corner(0, 1, 1) + wx * (corner(1, 1, 1) - corner(0, 1, 1))
    y0 = x00 + wy * (x10 - x00)
    y1 = x01 + wy * (x11 - x01)
    return y0 + wz * (y1 - y0)


GAIN = 0.8
STRETCH = 2.2


def fbm(points: np.ndarray, seed: int, base_frequency: float, octaves: int = 5) -> np.ndarray:
    """Fractal sum of ``octaves`` value-noise layers (frequency ×2, amplitude ×0.55 per octave), in [0, 1].

    Args:
        points: ``[N, 3]`` world positions in metres.
        seed: selects the noise field (each octave gets its own).
        base_frequency: lattice cells per metre of the coarsest octave.
        octaves: number of layers; the finest has ``base_frequency · 2^(octaves-1)`` cells per metre.

    Returns:
        ``[N]`` float32, mean about 0.5.
    """
    p = np.asarray(points, dtype=np.float64)
    total = np.zeros(len(p), dtype=np.float32)
    amplitude, norm, frequency = 1.0, 0.0, base_frequency
    for octave in range(octaves):
        total += np.float32(amplitude) * value_noise(p * frequency, seed * 131 + octave)
        norm += amplitude
        amplitude *= GAIN
        frequency *= 2.0
    return total / np.float32(norm)


def luminance_texture(points: np.ndarray, seed: int, base_frequency: float) -> np.ndarray:
    """A high-contrast grey pattern in [0.06, 0.92] for albedo: fbm stretched around its mean.

    Summed octaves cluster near 0.5, which leaves little grey-level gradient for SIFT; stretching ×2.6 and clipping
    puts the pattern's range back at several stops of reflectance.
    """
    value = fbm(points, seed, base_frequency)
    stretched = np.clip(0.5 + STRETCH * (value - 0.5), 0.0, 1.0)
    return np.float32(0.06) + np.float32(0.86) * stretched
