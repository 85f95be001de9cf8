"""Generate a synthetic capture set: render, photograph, and write images plus ground truth (see package docstring).

The whole set is written into a hidden temporary sibling of the output folder and renamed into place at the end, so
a killed or failed run never leaves a complete-looking set behind (``os.replace`` of a directory is atomic on one
filesystem).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np

import adop
from adop.errors import InputError
from adop.exif import exposure_value
from adop.scene import Camera, Frame, PointCloud, Scene, save_scene
from adop.storage import ensure_free_space, ensure_writable_dir, remove_quietly, replace_folder, staging_folder
from adop.synth.camera_sim import (
    F_NUMBER,
    ISO,
    REFERENCE_SHUTTER,
    CameraSimulation,
    ImageExposure,
    draw_exposures,
    ev100,
)
from adop.synth.files import README, write_exr, write_jpeg
from adop.synth.layout import capture_poses, heldout_poses
from adop.synth.presets import SynthPreset, get_preset
from adop.synth.raytrace import trace_radiance
from adop.synth.world import MARKER_RADIANCE, SynthWorld, build_world

log = logging.getLogger(__name__)

ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class SynthManifest:
    """What ``generate_capture_set`` wrote (all paths absolute, inside ``root``)."""

    root: Path
    images_dir: Path
    scene_dir: Path
    heldout_dir: Path
    camera_model: Path
    markers: Path
    image_count: int
    heldout_count: int
    point_count: int
    marker_count: int
    preset: str
    seed: int
    seconds: float


def true_camera(preset: SynthPreset) -> Camera:
    """The SIMPLE_RADIAL camera of every image: focal ``focal_factor·W``, principal point at the image centre."""
    return Camera(
        "SIMPLE_RADIAL", preset.width, preset.height, (preset.focal_px, preset.width / 2, preset.height / 2, preset.k1)
    )


def generate_capture_set(
    out_dir: Path,
    preset: Literal["tiny", "small"] | SynthPreset = "tiny",
    seed: int = 0,
    progress: ProgressCallback | None = None,
    *,
    overwrite: bool = False,
) -> SynthManifest:
    """Render a synthetic capture set with exact ground truth into ``out_dir``.

    Args:
        out_dir: folder to create; must not exist or be empty unless ``overwrite``.
        preset: "tiny" (24 views, 320×240), "small" (48 views, 640×480) or a custom ``SynthPreset``.
        seed: selects object jitter, textures, camera jitter, exposures, white balance and noise; the same seed gives
            byte-identical files.
        progress: called as ``progress(done, total)`` after each rendered view (captures, then held-out poses).
        overwrite: replace an existing non-empty ``out_dir`` (only once the new set is complete).

    Returns:
        The paths and counts written.

    Raises:
        InputError: ``out_dir`` is a file, is non-empty without ``overwrite``, or its parent is not writable.
    """
    started = time.perf_counter()
    spec = get_preset(preset) if isinstance(preset, str) else preset
    out_dir = Path(out_dir).absolute()
    _check_destination(out_dir, overwrite)
    ensure_writable_dir(out_dir.parent, "synthetic capture set")
    ensure_free_space(out_dir.parent, _estimated_bytes(spec), "synthetic capture set")
    staging = staging_folder(out_dir)
    try:
        counts = _generate_into(staging, spec, int(seed), progress)
        replace_folder(staging, out_dir)
    finally:
        remove_quietly(staging)
    gt = out_dir / "ground_truth"
    manifest = SynthManifest(
        root=out_dir,
        images_dir=out_dir / "images",
        scene_dir=gt / "scene",
        heldout_dir=gt / "heldout",
        camera_model=gt / "camera_model.json",
        markers=gt / "markers.json",
        image_count=spec.views,
        heldout_count=spec.heldout_views,
        point_count=counts[0],
        marker_count=counts[1],
        preset=spec.name,
        seed=int(seed),
        seconds=time.perf_counter() - started,
    )
    log.info("synthetic set %s (%s, seed %d) written in %.1f s", out_dir, spec.name, seed, manifest.seconds)
    return manifest


def _estimated_bytes(preset: SynthPreset) -> int:
    """Generous size estimate: JPEGs about 1 byte per pixel, EXRs 12, PLY 40 bytes per point, doubled."""
    pixels = preset.width * preset.height
    return 2 * (preset.views * pixels + preset.heldout_views * 12 * pixels + 40 * preset.surface_points)


def _check_destination(out_dir: Path, overwrite: bool) -> None:
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"{out_dir} exists and is not a folder; choose another output folder")
    if out_dir.is_dir() and any(out_dir.iterdir()) and not overwrite:
        raise InputError(
            f"the output folder {out_dir} is not empty; choose a new folder or pass overwrite=True (--overwrite)"
        )


@dataclass
class _Job:
    """What every step of one generation shares."""

    preset: SynthPreset
    seed: int
    world: SynthWorld
    camera: Camera
    sim: CameraSimulation
    progress: ProgressCallback | None

    @property
    def total(self) -> int:
        return self.preset.views + self.preset.heldout_views

    def rng(self, *stream: int) -> np.random.Generator:
        """An independent random stream per purpose (and per image), so changing one never shifts the others."""
        return np.random.default_rng([self.seed, *stream])

    def tick(self, done: int) -> None:
        if self.progress is not None:
            self.progress(done, self.total)


def _generate_into(root: Path, preset: SynthPreset, seed: int, progress: ProgressCallback | None) -> tuple[int, int]:
    """Write the whole set under ``root``; returns (surface point count, marker count)."""
    job = _Job(
        preset,
        seed,
        build_world(seed, preset.marker_radius),
        true_camera(preset),
        CameraSimulation.default(preset.noise_sigma),
        progress,
    )
    gt_dir = root / "ground_truth"
    frames, exposures = _photograph_captures(job, root / "images")
    reference_ev = float(np.mean([e.recorded_ev for e in exposures]))
    _render_heldout(job, gt_dir / "heldout", reference_ev)
    cloud, luminance = _surface_sample(job.world, job.sim, preset.surface_points, reference_ev, job.rng(5))
    save_scene(Scene([job.camera], frames, cloud, Path("../../images"), (0.0, 0.0, 1.0)), gt_dir / "scene")
    _write_documents(job, gt_dir, exposures, reference_ev, luminance, len(cloud))
    return len(cloud), len(job.world.markers)


def _photograph_captures(job: _Job, images_dir: Path) -> tuple[list[Frame], list[ImageExposure]]:
    """Render, expose and write every capture JPEG; the recorded EV is read back from the file as adop.exif does."""
    images_dir.mkdir(parents=True)
    preset = job.preset
    poses = capture_poses(preset.layout, preset.views, job.rng(1))
    names = [f"view_{i:03d}.jpg" for i in range(preset.views)]
    frames, exposures = [], []
    for i, (name, (rotation, translation), draw) in enumerate(zip(names, poses, draw_exposures(names, job.rng(3)))):
        exposure_time, deviation, white_balance = draw
        nominal_ev = ev100(exposure_time)
        radiance = trace_radiance(job.world, job.camera, rotation, translation, preset.supersampling)
        truth = ImageExposure(name, exposure_time, nominal_ev, nominal_ev + deviation, deviation, white_balance)
        pixels = job.sim.photograph(radiance, truth, job.rng(4, i))
        focal = job.camera.intrinsics[0] if preset.exif_focal else None
        write_jpeg(images_dir / name, pixels, exposure_time, focal, preset.jpeg_quality)
        recorded = exposure_value(images_dir / name)  # EXIF stores an approximate rational: use what is read back
        deviation = truth.true_ev - recorded
        exposures.append(ImageExposure(name, exposure_time, recorded, truth.true_ev, deviation, white_balance))
        frames.append(Frame(name, 0, rotation, translation, exposure_ev=recorded))
        log.debug("%s: EV %.3f (+%.3f unrecorded), wb %s", name, recorded, deviation, white_balance)
        job.tick(i + 1)
    return frames, exposures


def _render_heldout(job: _Job, heldout_dir: Path, reference_ev: float) -> None:
    """Linear EXRs of the held-out poses and their own scene folder (no points)."""
    heldout_dir.mkdir(parents=True)
    preset, frames = job.preset, []
    poses = heldout_poses(preset.layout, preset.views, preset.heldout_views, job.rng(2))
    for k, (rotation, translation) in enumerate(poses):
        name = f"heldout_{k:02d}.exr"
        radiance = trace_radiance(job.world, job.camera, rotation, translation, preset.supersampling)
        write_exr(heldout_dir / name, radiance, name)
        frames.append(Frame(name, 0, rotation, translation, exposure_ev=reference_ev))
        job.tick(preset.views + k + 1)
    save_scene(Scene([job.camera], frames, PointCloud.empty(), Path("."), (0.0, 0.0, 1.0)), heldout_dir)


def _write_documents(
    job: _Job, gt_dir: Path, exposures: list[ImageExposure], reference_ev: float, luminance: np.ndarray, points: int
) -> None:
    """camera_model.json, markers.json and README.md (formats in adop.synth.files.README)."""
    preset = job.preset
    model = {
        "format": "adop-synth-camera-model",
        "version": 1,
        "generator": {"preset": asdict(preset), "seed": job.seed, "adop_version": adop.__version__},
        "formula": "pixel = CRF(clip(vignette(uv) * wb * L * scale * 2^(-EV_true) + noise, 0, 1)); "
        "stored = round(255 * pixel); EV_true = recorded_ev + deviation",
        "ev_definition": "EV100 = log2(N^2 / t) - log2(ISO / 100) (docs/conventions.md); brighter scene -> higher EV",
        "f_number": F_NUMBER,
        "iso": ISO,
        "reference_shutter": f"1/{REFERENCE_SHUTTER}",
        "reference_ev": reference_ev,
        **job.sim.to_dict(),
        "radiance_percentiles": _percentiles(luminance),
        "images": [asdict(e) for e in exposures],
    }
    (gt_dir / "camera_model.json").write_text(json.dumps(model, indent=1), encoding="utf-8")
    markers = {
        "radius": preset.marker_radius,
        "radiance": list(MARKER_RADIANCE),
        "positions": job.world.markers.tolist(),
        "scene": job.world.describe(),
    }
    (gt_dir / "markers.json").write_text(json.dumps(markers, indent=1), encoding="utf-8")
    readme = README.format(
        preset=preset.name,
        seed=job.seed,
        version=adop.__version__,
        points=points,
        quality=preset.jpeg_quality,
        ss=preset.supersampling,
        heldout=preset.heldout_views,
    )
    (gt_dir / "README.md").write_text(readme, encoding="utf-8")


def _surface_sample(
    world: SynthWorld, sim: CameraSimulation, count: int, reference_ev: float, rng: np.random.Generator
) -> tuple[PointCloud, np.ndarray]:
    """Dense coloured surface sample with normals, and the linear luminance of each sample (for statistics)."""
    points, normals, triangle = world.sample_surface(count, rng)
    radiance = world.radiance(points, normals, triangle).astype(np.float64)
    display = sim.response.apply(np.clip(radiance * sim.scale * 2.0 ** (-reference_ev), 0.0, 1.0))
    colors = np.clip(np.round(display * 255.0), 0, 255).astype(np.uint8)
    luminance = radiance @ np.array([0.2126, 0.7152, 0.0722])
    return PointCloud(points, normals, colors), luminance


def _percentiles(luminance: np.ndarray) -> dict:
    """Luminance percentiles of the surface and how many stops lie between the 1st and 99.9th."""
    keys = (1, 5, 50, 95, 99, 99.9)
    values = np.percentile(luminance, keys)
    out = {f"p{k}": float(v) for k, v in zip(keys, values)}
    out["stops_p1_to_p99.9"] = float(np.log2(values[-1] / max(values[0], 1e-12)))
    return out
