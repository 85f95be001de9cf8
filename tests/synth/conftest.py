"""A micro synthetic capture set, generated once for all synth tests (a few seconds)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from adop.scene import Scene, load_scene
from adop.synth import TINY, SynthLayout, SynthManifest, SynthPreset, generate_capture_set

MICRO = TINY.with_changes(
    name="micro",
    views=8,
    width=160,
    height=120,
    supersampling=2,
    heldout_views=2,
    surface_points=5000,
    k1=-0.1,  # stronger than the presets' −0.04, so that ignoring distortion is caught near the corners
    marker_radius=0.12,  # big enough to centroid at 160×120
    layout=SynthLayout(arc_degrees=120.0),
)
"""Same code path as `tiny`, about 1/20 of its work."""

MICRO_SEED = 7


class MicroSet:
    """The generated micro set and its ground truth, loaded once."""

    def __init__(self, manifest: SynthManifest, preset: SynthPreset) -> None:
        self.manifest = manifest
        self.preset = preset
        self.root = manifest.root
        self.gt = manifest.root / "ground_truth"
        self.scene: Scene = load_scene(manifest.scene_dir)
        self.heldout: Scene = load_scene(manifest.heldout_dir)
        self.model: dict = json.loads(manifest.camera_model.read_text(encoding="utf-8"))
        self.markers: dict = json.loads(manifest.markers.read_text(encoding="utf-8"))

    @property
    def marker_positions(self) -> np.ndarray:
        return np.asarray(self.markers["positions"], dtype=np.float64)

    @staticmethod
    def linearize(pixels: np.ndarray, model: dict, image: dict) -> np.ndarray:
        """Invert the documented image formation of one capture image using only camera_model.json (no noise term).

        ``pixels`` are display values in [0, 1]; returns the radiance estimate ``L`` ``[H, W, 3]``.
        """
        table = np.asarray(model["response"]["table"], dtype=np.float64)
        xs = np.linspace(0.0, 1.0, table.shape[1])
        linear = np.stack([np.interp(pixels[..., c], table[c], xs) for c in range(3)], axis=-1)
        return linear / (MicroSet.exposure_gain(pixels.shape[1], pixels.shape[0], model, image))

    @staticmethod
    def exposure_gain(width: int, height: int, model: dict, image: dict) -> np.ndarray:
        """``vignette(uv) · wb · scale · 2^(−EV_true)`` ``[H, W, 3]``, written out independently from the JSON."""
        a1, a2, a3 = model["vignette"]["coefficients"]
        cu, cv = model["vignette"]["center"]
        u = 2.0 * (np.arange(width) + 0.5) / width - 1.0
        v = 2.0 * (np.arange(height) + 0.5) / height - 1.0
        r2 = ((u - cu) * width / height)[None, :] ** 2 + (v - cv)[:, None] ** 2
        vignette = 1.0 + a1 * r2 + a2 * r2**2 + a3 * r2**3
        wb = np.asarray(image["white_balance"], dtype=np.float64)
        return vignette[:, :, None] * wb * model["scale"] * 2.0 ** (-image["true_ev"])


@pytest.fixture(scope="session")
def micro_set(tmp_path_factory: pytest.TempPathFactory) -> MicroSet:
    out = tmp_path_factory.mktemp("synth") / "micro"
    calls: list[tuple[int, int]] = []
    manifest = generate_capture_set(
        out, MICRO, seed=MICRO_SEED, progress=lambda done, total: calls.append((done, total))
    )
    total = MICRO.views + MICRO.heldout_views
    assert calls == [(i, total) for i in range(1, total + 1)]
    return MicroSet(manifest, MICRO)
