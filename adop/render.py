"""Render a camera path with a trained model: linear-HDR half EXRs plus tonemapped PNGs, frame by frame.

Frames are rendered in chunks (a frame range each), so that a farm can hand chunks to different workers and a killed
render resumes at the first missing frame: every file is written under a temporary name and renamed when complete,
so a frame that exists is whole. Rendering needs only the trained model (``RUN_DIR/model``), never the photos.

What the two files hold (docs/method.md §11–12: EXR for comp, PNG for review):
- ``NAME.####.exr``: scene-linear Rec.709 radiance after the chosen exposure and white balance, without the camera
  response or vignetting (a clean virtual camera), half float, with the camera matrices in its header.
- ``NAME.####.png``: the same frame through the learned camera response (display-referred, 8-bit).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from adop.deliver.exr import write_exr
from adop.deliver.frames import FIRST_FRAME, frame_name
from adop.images import write_png
from adop.config import Config, require
from adop.errors import InputError
from adop.paths import CameraPath, FlyThroughConfig, fly_through_path
from adop.storage import ensure_free_space, ensure_writable_dir, write_text_atomic
from adop.model import TrainedModel

log = logging.getLogger(__name__)

Progress = Callable[[int, int, dict], None]


@dataclass(frozen=True)
class RenderConfig(Config):
    """How frames are exposed, named and written."""

    ev: float | None = None
    """Exposure (EV100) to photograph the scene at; None = the mean exposure of the training photos."""
    white_balance: tuple[float, float] | None = None
    """Linear (R, B) gains with green 1; None = neutral (the training mean)."""
    vignette: bool = False
    """Apply the learned lens vignetting to the PNGs (off: a clean virtual camera)."""
    name: str = "adop"
    """File stem: frames are NAME.1001.exr, NAME.1001.png, ..."""
    first_frame: int = FIRST_FRAME
    """Number of the path's first frame (1001 by studio convention)."""
    exr_compression: Literal["piz", "zip"] = "piz"
    """Lossless EXR compression (PIZ is smaller on noisy renders, ZIP faster to read)."""
    chunk_size: int = 24
    """Frames per chunk (one task per chunk in the pipeline)."""
    threads: int = 2
    """CPU threads that render a frame (``torch.set_num_threads`` when a chunk starts). CPU sums depend on how the
    work is split between threads, so one fixed number makes a frame the same bytes on every machine of a kind,
    whichever worker renders it and whatever its environment says (Dask workers start with one thread)."""

    def validate(self) -> None:
        require(self.ev is None or math.isfinite(self.ev), f"RenderConfig.ev must be a finite EV100, got {self.ev}")
        require(self.chunk_size >= 1, f"RenderConfig.chunk_size must be >= 1, got {self.chunk_size}")
        require(self.threads >= 1, f"RenderConfig.threads must be >= 1, got {self.threads}")
        require(self.first_frame >= 0, "RenderConfig.first_frame must be >= 0")
        require(self.white_balance is None or min(self.white_balance) > 0,
                "RenderConfig.white_balance gains must be positive")
        frame_name(self.name, self.first_frame, "png")  # a stem that cannot name frames is refused here


@dataclass
class RenderedChunk:
    """The files of one chunk, in frame order."""

    frames: list[int] = field(default_factory=list)
    exr: list[Path] = field(default_factory=list)
    png: list[Path] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def camera_path_for(model: TrainedModel, config: FlyThroughConfig = FlyThroughConfig()) -> CameraPath:
    """The fly-through of a trained model, planned from its own refined poses and points (no scene folder needed).

    A generated path defaults to the photos' resolution (what a studio delivers), not the smaller one the model was
    trained at; the renderer's point pyramid fills what the points leave open at that size.
    """
    width, height, focal = model.photo_resolution()
    rotations, translations = model.poses()
    return fly_through_path(config, rotations, translations, model.point_positions(), size=(width, height),
                            focal=focal)


EV_SPAN = 12.0
"""How far (in stops) a render's exposure may lie from the photos' mean EV: beyond it every frame is black or white."""


def check_exposure(model: TrainedModel, config: RenderConfig) -> None:
    """Refuse an exposure that would render flat frames (more than ``EV_SPAN`` stops from the photos' mean EV).

    Raises:
        InputError: naming the asked EV and the span that makes sense for this model.
    """
    if config.ev is not None and abs(config.ev - model.scene_ev) > EV_SPAN:
        raise InputError(
            f"exposure EV {config.ev:g} is {abs(config.ev - model.scene_ev):.0f} stops from the photos' mean EV "
            f"{model.scene_ev:.1f}; every frame would be flat black or white. Choose an EV between "
            f"{model.scene_ev - EV_SPAN:.1f} and {model.scene_ev + EV_SPAN:.1f}"
        )


SETTINGS_FILE = ".adop-render.json"


def _claim_folder(out_dir: Path, model: TrainedModel, path: CameraPath, config: RenderConfig) -> None:
    settings = {
        "render": {k: v for k, v in config.to_dict().items() if k != "chunk_size"},
        "camera_path": hashlib.sha256(json.dumps(path.to_json(), sort_keys=True).encode()).hexdigest(),
        "model": {"scene_dir": str(model.scene_dir), "step": model.step, "config": model.config.config_hash()},
    }
    marker = out_dir / SETTINGS_FILE
    if marker.is_file():
        try:
            previous = json.loads(marker.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            previous = None
        if previous != settings:
            raise InputError(
                f"{out_dir} already holds frames rendered with other settings (exposure, camera path, name or model); "
                "choose another output folder, or delete those frames to render them again"
            )
        return
    write_text_atomic(marker, json.dumps(settings, indent=1))


def chunk_ranges(frame_count: int, chunk_size: int) -> list[tuple[int, int]]:
    """``[(start, stop), ...]`` path-frame index ranges covering ``frame_count`` frames."""
    if frame_count < 1:
        raise InputError("the camera path has no frames")
    size = max(1, int(chunk_size))
    return [(start, min(start + size, frame_count)) for start in range(0, frame_count, size)]


def _frame_images(model: TrainedModel, path: CameraPath, index: int, config: RenderConfig) -> tuple[np.ndarray, ...]:
    size = (path.width, path.height)
    hdr = model.render(path.rotations[index], path.translations[index], path.intrinsics[index], size, hdr=True)
    tonemapper = model.scene_model.tonemapper
    linear = tonemapper.apply(hdr[None], ev=config.ev, white_balance=config.white_balance, full_size=size,
                              vignette=False, output="linear")[0]
    display = tonemapper.apply(hdr[None], ev=config.ev, white_balance=config.white_balance, full_size=size,
                               vignette=config.vignette, output="ldr")[0].clamp(0.0, 1.0)
    to_hwc = lambda t: t.permute(1, 2, 0).contiguous().numpy()  # noqa: E731
    return to_hwc(linear), to_hwc(display)


@torch.no_grad()
def render_chunk(
    model: TrainedModel,
    path: CameraPath,
    frames: range | Sequence[int],
    out_dir: Path,
    config: RenderConfig = RenderConfig(),
    *,
    progress: Progress | None = None,
    timestamp: str | None = None,
) -> RenderedChunk:
    """Render the path frames ``frames`` (0-based path indices) into ``out_dir``; existing complete frames are kept.

    ``timestamp``: the EXR ``DateTime`` (``YYYY:MM:DD HH:MM:SS``); the pipeline passes the time its model was trained,
    so that a frame rendered again, anywhere, is the same file. None: the time of writing."""
    check_exposure(model, config)
    out_dir = ensure_writable_dir(Path(out_dir), "render output")
    frame_bytes = path.width * path.height * 3 * 3  # half EXR + PNG, a generous upper bound per frame
    ensure_free_space(out_dir, frame_bytes * len(frames) + (64 << 20), "rendered frames")
    chunk = RenderedChunk()
    ev = model.scene_ev if config.ev is None else config.ev
    attributes = None if timestamp is None else {"DateTime": timestamp}
    # Set for the process and left so: chunks render at once on several threads of one process, and a chunk that
    # restored the count it found would change it under another chunk still rendering.
    torch.set_num_threads(config.threads)
    for done, index in enumerate(frames, start=1):
        _render_frame(model, path, index, out_dir, config, ev, attributes, chunk)
        if progress is not None:
            progress(done, len(frames), {"frame": config.first_frame + index})
    return chunk


def _render_frame(model: TrainedModel, path: CameraPath, index: int, out_dir: Path, config: RenderConfig, ev: float,
                  attributes: dict[str, str] | None, chunk: RenderedChunk) -> None:
    """Render path frame ``index`` into ``out_dir`` unless both its files are there; add it to ``chunk``."""
    number = config.first_frame + index
    exr_path = out_dir / frame_name(config.name, number, "exr")
    png_path = out_dir / frame_name(config.name, number, "png")
    if not (exr_path.is_file() and png_path.is_file()):
        linear, display = _frame_images(model, path, index, config)
        if not np.isfinite(linear).all():
            raise InputError(f"frame {number} rendered non-finite values; the model is damaged, retrain it")
        write_exr(
            exr_path, linear, world_to_camera=path.world_to_camera()[index], intrinsics=path.intrinsics[index],
            frame=number, fps=path.fps, ev=ev, compression=config.exr_compression, attributes=attributes,
        )
        write_png(png_path, display)
    chunk.frames.append(number)
    chunk.exr.append(exr_path)
    chunk.png.append(png_path)


def render_path(
    model: TrainedModel,
    path: CameraPath,
    out_dir: Path,
    config: RenderConfig = RenderConfig(),
    *,
    progress: Progress | None = None,
) -> RenderedChunk:
    """Render every frame of ``path`` chunk by chunk (what ``adop render`` does on one machine).

    A rerun into the same folder keeps the frames it already has, so it resumes; frames made with other settings are
    never mixed in: ``out_dir/.adop-render.json`` records what made them, and other settings are refused.

    Raises:
        InputError: ``out_dir`` holds frames rendered with other settings.
    """
    check_exposure(model, config)
    _claim_folder(Path(out_dir), model, path, config)
    result = RenderedChunk()
    ranges = chunk_ranges(len(path.rotations), config.chunk_size)
    total = len(path.rotations)
    for start, stop in ranges:
        def chunk_progress(done: int, _total: int, metrics: dict, offset: int = start) -> None:
            if progress is not None:
                progress(offset + done, total, metrics)

        chunk = render_chunk(model, path, range(start, stop), out_dir, config, progress=chunk_progress)
        result.frames += chunk.frames
        result.exr += chunk.exr
        result.png += chunk.png
    log.info("rendered %d frames of %dx%d into %s", total, path.width, path.height, out_dir)
    return result
