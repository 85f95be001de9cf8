"""The exported model: everything rendering needs, without the training photos, and its loader.

``RUN_DIR/model/`` holds ``model.pt`` (the ``SceneModel`` state: points, normals, drop-out radii, descriptors,
background, environment map, network, tonemapper, refined poses, cameras) and ``model.json`` (human-readable
metadata: config, frames, cameras, split, step). It is written into a temporary sibling and renamed into place, so a
``model/`` folder is always complete.

``load_trained_model(run_dir)`` gives a ``TrainedModel``, whose ``render`` takes any pose and intrinsics and returns
display values at a chosen exposure and white balance, or the raw linear HDR (as ADOP's viewer; docs/method.md §11); the
fly-through renderer builds on it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

import adop
from adop.errors import InputError
from adop.storage import remove_quietly, replace_folder, sha256_file, staging_folder
from adop.scene import Camera
from adop.model.config import TrainConfig
from adop.model.scene_model import SceneModel

MODEL_DIR = "model"
FORMAT = "adop-trained-model"
VERSION = 1


def export_model(model: SceneModel, run_dir: Path, *, frames: list[dict[str, Any]], cameras: list[Camera],
                 scene_dir: Path, step: int) -> Path:
    """Write ``RUN_DIR/model/`` atomically (see module docstring); returns the folder."""
    final = Path(run_dir) / MODEL_DIR
    tmp = staging_folder(final)
    meta = {
        "format": FORMAT, "version": VERSION, "adop_version": adop.__version__, "step": int(step),
        "scene_dir": str(Path(scene_dir).absolute()), "image_scale": model.config.image_scale,
        "config": model.config.to_dict(), "cameras": [c.to_dict() for c in cameras], "frames": frames,
        "points": int(model.positions.shape[0]),
    }
    try:
        state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"meta": meta, "state": state}, tmp / "model.pt")
        (tmp / "model.json").write_text(json.dumps({**meta, "model_sha256": sha256_file(tmp / "model.pt")}, indent=1),
                                        encoding="utf-8")
        replace_folder(tmp, final)
    finally:
        remove_quietly(tmp)
    return final


@dataclass
class TrainedModel:
    """A trained scene, ready to render novel views (no photos needed).

    Attributes:
        config: the training config.
        scene_model: the scene model in eval mode.
        frames: per training-set frame ``{"name", "camera", "exif_ev", "heldout"}`` in scene order.
        cameras: the cameras at the training scale (``config.image_scale``).
        scene_dir: the scene folder it was trained on.
        step: optimiser steps it was trained for.
    """

    config: TrainConfig
    scene_model: SceneModel
    frames: list[dict[str, Any]]
    cameras: list[Camera]
    scene_dir: Path
    step: int

    @property
    def scene_ev(self) -> float:
        """Mean EXIF EV100 of the training frames: the exposure ``render(ev=None)`` uses."""
        return float(self.scene_model.tonemapper.scene_ev)

    def training_resolution(self) -> tuple[int, int, float]:
        """``(W, H, focal)`` of the first camera at the scale the model was trained at.

        The one-pixel rasterizer's hole pattern depends on points per pixel, so the network renders best at the
        scale it learned; rendering larger leaves holes it never saw.
        """
        camera = self.cameras[0]
        return camera.width, camera.height, float(camera.intrinsics[0])

    def photo_resolution(self) -> tuple[int, int, float]:
        """``(W, H, focal)`` of the first camera at the photos' own size, what deliverables are rendered at."""
        camera = self.cameras[0].scaled(1.0 / self.config.image_scale) if self.config.image_scale != 1.0 \
            else self.cameras[0]
        return camera.width, camera.height, float(camera.intrinsics[0])

    def poses(self) -> tuple[np.ndarray, np.ndarray]:
        """Refined world→camera rotations ``[F, 3, 3]`` and translations ``[F, 3]`` of every frame, in scene order."""
        return self.scene_model.rotations.numpy().copy(), self.scene_model.translations.numpy().copy()

    def point_positions(self) -> np.ndarray:
        """World positions ``[N, 3]`` of the model's points."""
        return self.scene_model.positions.detach().numpy().astype(np.float64)

    def frame_pose(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        """Refined world→camera ``(R [3, 3], t [3])`` of frame ``index`` (held-out frames keep their input pose)."""
        return self.scene_model.rotations[index].numpy().copy(), self.scene_model.translations[index].numpy().copy()

    @torch.no_grad()
    def render(
        self,
        rotation: np.ndarray | Tensor,  # [3, 3] world->camera
        translation: np.ndarray | Tensor,  # [3]
        intrinsics: np.ndarray | Tensor | tuple[float, float, float, float],  # [4] fx fy cx cy
        size: tuple[int, int],
        distortion: np.ndarray | Tensor | None = None,  # [8] OpenCV order
        ev: float | None = None,
        white_balance: tuple[float, float] | None = None,
        hdr: bool = False,
        *,
        camera_index: int = 0,
        vignette: bool = True,
    ) -> Tensor:  # [3, H, W]
        """Render one view.

        Args:
            rotation: world→camera rotation (docs/conventions.md).
            translation: world→camera translation.
            intrinsics: ``(fx, fy, cx, cy)`` in pixels of ``size``.
            size: output ``(W, H)``.
            distortion: OpenCV-order coefficients; None renders without distortion.
            ev: absolute EV100 to "photograph" at; None uses ``scene_ev`` (the mean training exposure).
            white_balance: linear ``(R, B)`` gains (green 1); None is neutral (the training mean).
            hdr: return the network's raw linear HDR (scene-referred, unbounded) instead of display values.
            camera_index: whose response curve to apply.
            vignette: apply the learned vignetting (off for a clean "virtual camera").

        Returns:
            ``[3, H, W]`` float32: display values in [0, 1], or linear HDR when ``hdr``.
        """
        def as_tensor(value: Any, shape: tuple[int, ...], dtype: torch.dtype) -> Tensor:
            t = torch.as_tensor(np.array(value, dtype=np.float64), dtype=dtype)
            if t.shape != shape:
                raise InputError(f"expected a {list(shape)} array, got {list(t.shape)}")
            return t

        rot = as_tensor(rotation, (3, 3), torch.float64)[None]
        trans = as_tensor(translation, (3,), torch.float64)[None]
        k = as_tensor(intrinsics, (4,), torch.float32)[None]
        dist = torch.zeros(1, 8) if distortion is None else as_tensor(distortion, (8,), torch.float32)[None]
        width, height = int(size[0]), int(size[1])
        raw = self.scene_model.render_hdr(rot, trans, k, dist, (width, height), raster=self.config.raster.evaluation())
        if hdr:
            return raw[0]
        out = self.scene_model.tonemapper.apply(
            raw, ev=ev, white_balance=white_balance, camera_index=camera_index, full_size=(width, height),
            vignette=vignette,
        )
        return out[0].clamp(0.0, 1.0)

    @torch.no_grad()
    def render_frame(self, index: int, *, hdr: bool = False) -> Tensor:  # [3, H, W]
        """Re-render frame ``index`` of the training set at its pose, camera and learned exposure/white balance."""
        frame = self.frames[index]
        cam = self.cameras[int(frame["camera"])]
        rot, trans = self.frame_pose(index)
        corr = self.scene_model.tonemapper.view_correction(index)
        return self.render(
            rot, trans, cam.intrinsics, (cam.width, cam.height), cam.distortion, ev=corr.ev,
            white_balance=corr.white_balance, hdr=hdr, camera_index=int(frame["camera"]),
        )


def load_trained_model(run_dir: Path) -> TrainedModel:
    """Load ``RUN_DIR/model/`` (written at the end of ``adop.train.train``).

    Raises:
        InputError: there is no finished model in ``run_dir``, or it is from a newer adop.
    """
    path = Path(run_dir) / MODEL_DIR / "model.pt"
    if not path.is_file():
        raise InputError(f"{run_dir} holds no trained model ({path} is missing); finish training with `adop train`")
    _verify_checksum(path)
    try:
        document = torch.load(path, map_location="cpu", weights_only=True)  # tensors and plain metadata only
    except Exception as error:  # noqa: BLE001 - a file we cannot read is damaged, whatever the reason
        raise InputError(f"{path} is damaged and cannot be read ({type(error).__name__}); restore it or retrain") from None
    meta, state = document["meta"], document["state"]
    if meta.get("format") != FORMAT or int(meta.get("version", 0)) > VERSION:
        raise InputError(f"{path} is not a trained model this adop can read (format {meta.get('format')!r})")
    config = TrainConfig.from_dict(meta["config"])
    frames = meta["frames"]
    train_mask = torch.tensor([not f["heldout"] for f in frames])
    model = SceneModel(
        config, positions=state["positions"], normals=state.get("normals"), radius=state.get("radius"), colors=None,
        rotations=state["rotations"], translations=state["translations"], intrinsics=state["intrinsics"],
        distortion=state["distortion"], full_size=state["full_size"], camera_index=state["camera_index"],
        exif_ev=torch.tensor([f["exif_ev"] for f in frames], dtype=torch.float32), train_mask=train_mask,
        num_cameras=int(state["tonemapper.response"].shape[0]),
    )
    model.load_state_dict(state)
    model.eval().requires_grad_(False)
    return TrainedModel(
        config=config, scene_model=model, frames=frames, cameras=[Camera.from_dict(c) for c in meta["cameras"]],
        scene_dir=Path(meta["scene_dir"]), step=int(meta["step"]),
    )


def _verify_checksum(path: Path) -> None:
    """Refuse a ``model.pt`` whose bytes no longer match the checksum ``model.json`` recorded when it was exported."""
    meta_path = path.with_name("model.json")
    try:
        expected = json.loads(meta_path.read_text(encoding="utf-8")).get("model_sha256")
    except (OSError, json.JSONDecodeError):
        return  # no readable record (a model exported before checksums): nothing to compare with
    if expected is not None and sha256_file(path) != expected:
        raise InputError(f"{path} is damaged: its bytes do not match the checksum in {meta_path.name}; "
                         "restore it or retrain")
