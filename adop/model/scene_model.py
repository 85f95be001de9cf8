"""The scene model: points with learned descriptors, the neural renderer, the tonemapper and refinable poses.

The nerfstudio "model" part of the split. It owns every learned tensor of a scene and renders crops of its frames
(training) or arbitrary views (export, evaluation); it knows nothing about photos, losses or optimisers. Everything
rendering needs lives in its state dict, so an exported model renders without the training photos.

Poses are world→camera (docs/conventions.md), kept in float64 buffers. ADOP refines them with a per-frame SE(3)
tangent ``δ`` that the rasterizer differentiates (approximately, ADOP ``RenderBackward``; docs/method.md §4); after
every optimiser step the trainer folds ``δ`` into the pose with ``apply_pose_tangent`` and resets it
(``apply_pose_step``).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from adop.nn.renderer import NeuralRenderer
from adop.nn.tonemapper import Tonemapper
from adop.raster import RasterConfig, apply_pose_tangent, rasterize
from adop.raster.radius import drop_out_radius
from adop.model.config import TrainConfig
from adop.scene.photos import SceneData

CAMERA_GROUPS = ("exposure", "white_balance", "vignette", "response")
"""Parameter groups frozen for ``schedule.lock_camera_epochs``."""
STRUCTURE_GROUPS = ("poses",)
"""Parameter groups frozen for ``schedule.lock_structure_epochs``."""


def srgb_to_linear(x: Tensor) -> Tensor:
    """Approximate linearisation of display values (gamma 2.2, the tonemapper's initial response)."""
    return x.clamp(0.0, 1.0) ** 2.2


class SceneModel(nn.Module):
    """All learned state of one scene.

    Args:
        config: The run's config (descriptor channels from ``renderer.input_channels``).
        positions: ``[N, 3]`` world positions.
        normals: ``[N, 3]`` normals for back-face culling, or None.
        radius: ``[N]`` ADOP drop-out radius, or None (no stochastic discarding).
        colors: ``[N, 3]`` uint8 point colours (for ``descriptor_init="colors"``), or None.
        rotations: ``[F, 3, 3]`` world→camera rotations of all frames (float64).
        translations: ``[F, 3]``.
        intrinsics: ``[F, 4]`` ``(fx, fy, cx, cy)``.
        distortion: ``[F, 8]`` OpenCV order.
        full_size: ``[F, 2]`` image ``(W, H)``.
        camera_index: ``[F]`` physical camera of each frame.
        exif_ev: ``[F]`` EXIF EV100 of each frame.
        train_mask: ``[F]`` bool, frames that anchor the tonemapper's mean EV and white balance.
        num_cameras: physical cameras (response curves).
    """

    def __init__(
        self, config: TrainConfig, *, positions: Tensor, normals: Tensor | None, radius: Tensor | None,
        colors: Tensor | None, rotations: Tensor, translations: Tensor, intrinsics: Tensor, distortion: Tensor,
        full_size: Tensor, camera_index: Tensor, exif_ev: Tensor, train_mask: Tensor, num_cameras: int,
    ) -> None:
        super().__init__()
        self.config = config
        n, channels = positions.shape[0], config.renderer.input_channels
        gen = torch.Generator().manual_seed(config.seed)
        self.register_buffer("positions", positions.float().contiguous())
        self.register_buffer("normals", None if normals is None else normals.float().contiguous())
        self.register_buffer("radius", None if radius is None else radius.float().contiguous())
        self.register_buffer("rotations", rotations.double().clone())
        self.register_buffer("translations", translations.double().clone())
        self.register_buffer("intrinsics", intrinsics.float().clone())
        self.register_buffer("distortion", distortion.float().clone())
        self.register_buffer("full_size", full_size.long().clone())
        self.register_buffer("camera_index", camera_index.long().clone())
        descriptors = torch.rand(n, channels, generator=gen)
        if config.descriptor_init == "colors" and colors is not None:
            linear = srgb_to_linear(colors.float() / 255.0)
            descriptors[:, : min(3, channels)] = linear[:, : min(3, channels)]
        self.descriptors = nn.Parameter(descriptors)
        self.background = nn.Parameter(torch.full((channels,), -1.0))  # ADOP's background init
        env_w, env_h = config.environment_size
        self.environment = (
            nn.Parameter(torch.zeros(channels, env_h, env_w)) if config.environment_map else None
        )
        self.pose_delta = nn.Parameter(torch.zeros(rotations.shape[0], 6))
        with torch.random.fork_rng(devices=[]):  # seeded network init without touching the caller's RNG
            torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
            self.renderer = NeuralRenderer(config.renderer)
        self.tonemapper = Tonemapper(
            config.effective_tonemapper(), num_images=rotations.shape[0], num_cameras=num_cameras,
            exif_ev=exif_ev.float(), train_images=train_mask.bool(),
        )

    @property
    def num_frames(self) -> int:
        """Frames (training and held out) the model holds poses and corrections for."""
        return int(self.rotations.shape[0])

    def param_groups(self) -> dict[str, list[nn.Parameter]]:
        """Learnable tensors by ADOP parameter group; groups the config switches off are absent."""
        tm = self.tonemapper
        tcfg = tm.config
        groups: dict[str, list[nn.Parameter]] = {
            "network": list(self.renderer.parameters()),
            "descriptors": [self.descriptors],
            "background": [self.background],
        }
        if self.environment is not None:
            groups["environment"] = [self.environment]
        if self.config.camera_model == "learned":
            if tcfg.enable_exposure and tcfg.learn_exposure:
                groups["exposure"] = [tm.exposure]
            if tcfg.enable_white_balance:
                groups["white_balance"] = [tm.log_white_balance]
            if tcfg.enable_vignette:
                groups["vignette"] = [tm.vignette_alpha, tm.vignette_centre]
            if tcfg.enable_response:
                groups["response"] = [tm.response]
        if self.config.optim.lr_poses > 0 and self.config.raster.pose_gradients:
            groups["poses"] = [self.pose_delta]
        return groups

    def rasterize_views(
        self, rotations: Tensor, translations: Tensor, intrinsics: Tensor, distortion: Tensor,
        size: tuple[int, int], *, crops: Tensor | None = None, pose_tangent: Tensor | None = None,
        raster: RasterConfig | None = None, generator: torch.Generator | None = None,
    ) -> tuple[Tensor, ...]:
        """The neural-image pyramid of ``B`` views (``[B, C, h >> l, w >> l]`` per layer)."""
        out = rasterize(
            self.positions, self.descriptors, self.background, rotations, translations, intrinsics, size,
            normals=self.normals, radius=self.radius, distortion=distortion, crops=crops, pose_tangent=pose_tangent,
            environment_map=self.environment, config=raster if raster is not None else self.config.raster,
            generator=generator,
        )
        return out.features

    def render_hdr(
        self, rotations: Tensor, translations: Tensor, intrinsics: Tensor, distortion: Tensor,
        size: tuple[int, int], *, crops: Tensor | None = None, pose_tangent: Tensor | None = None,
        raster: RasterConfig | None = None, generator: torch.Generator | None = None,
    ) -> Tensor:  # [B, 3, h, w]
        """Linear HDR of ``B`` views: rasterize, then the U-Net."""
        features = self.rasterize_views(
            rotations, translations, intrinsics, distortion, size, crops=crops, pose_tangent=pose_tangent,
            raster=raster, generator=generator,
        )
        return self.renderer(list(features))

    def render_frames(
        self, frames: Tensor, crops: Tensor, size: tuple[int, int], *, poses_trainable: bool,
        generator: torch.Generator | None = None,
    ) -> tuple[Tensor, Tensor]:
        """Training render of crops of known frames with their own learned exposure and white balance.

        Args:
            frames: ``[B]`` frame indices.
            crops: ``[B, 3]`` ``(zoom, ox, oy)``.
            size: crop ``(w, h)``.
            poses_trainable: pass the pose tangent so the rasterizer produces pose gradients.
            generator: dropout RNG.

        Returns:
            ``(hdr [B, 3, h, w], ldr [B, 3, h, w])``.
        """
        tangent = self.pose_delta[frames] if poses_trainable else None
        hdr = self.render_hdr(
            self.rotations[frames], self.translations[frames], self.intrinsics[frames], self.distortion[frames],
            size, crops=crops, pose_tangent=tangent, generator=generator,
        )
        ldr = self.tonemapper(
            hdr, frames, self.camera_index[frames], crop=crops, full_size=self.full_size[frames].to(hdr.dtype)
        )
        return hdr, ldr

    @torch.no_grad()
    def render_frame_hdr(self, index: int) -> Tensor:  # [1, 3, H, W]
        """Full-resolution HDR of one frame at its (refined) pose, dropout off."""
        w, h = (int(v) for v in self.full_size[index])
        sl = slice(index, index + 1)
        return self.render_hdr(
            self.rotations[sl], self.translations[sl], self.intrinsics[sl], self.distortion[sl], (w, h),
            raster=self.config.raster.evaluation(),
        )

    @torch.no_grad()
    def anchor_exposure_slope(self) -> float:
        """Remove the linear trend of the EV corrections in the EXIF EV over the training images (see
        ``TrainConfig.exposure_slope_anchor``); returns the removed slope."""
        tm = self.tonemapper
        train = tm.train_images
        found = self._exif_trend((tm.exposure[train] - tm.exposure_init[train])[:, None])
        if found is None:
            return 0.0
        trend, slopes = found
        tm.exposure[train] -= trend[:, 0]
        return float(slopes[0])

    @torch.no_grad()
    def anchor_white_balance_slope(self) -> Tensor:  # [2]
        """Remove the linear trend of the learned log R/B gains in the EXIF EV over the training images (see
        ``TrainConfig.white_balance_slope_anchor``); returns the removed slopes."""
        tm = self.tonemapper
        found = self._exif_trend(tm.log_white_balance[tm.train_images])
        if found is None:
            return torch.zeros(2)
        trend, slopes = found
        tm.log_white_balance[tm.train_images] -= trend
        return slopes

    def _exif_trend(self, values: Tensor) -> tuple[Tensor, Tensor] | None:  # values [N_train, K]
        """Least-squares trend of ``values`` (one row per training image) in the centred EXIF EV, as
        ``(trend [N_train, K], slopes [K])``; None when the EXIF EVs span less than ~0.1 stop (RMS)."""
        tm = self.tonemapper
        init = tm.exposure_init[tm.train_images]
        centred = init - init.mean()
        if float((centred * centred).mean()) < 1e-2:
            return None
        slopes = (values * centred[:, None]).sum(dim=0) / (centred * centred).sum()
        return centred[:, None] * slopes[None, :], slopes

    @torch.no_grad()
    def apply_pose_step(self) -> None:
        """Fold the pose tangents into the poses (``V ← exp(δ)·V``) and reset them to zero."""
        delta = self.pose_delta.detach()
        moved = delta.abs().sum(dim=1) > 0
        if bool(moved.any()):
            rot, trans = apply_pose_tangent(self.rotations[moved], self.translations[moved], delta[moved])
            self.rotations[moved] = rot
            self.translations[moved] = trans
        self.pose_delta.zero_()

    @classmethod
    def from_scene_data(cls, config: TrainConfig, data: SceneData) -> SceneModel:
        """Build from a ``SceneData``, computing ADOP drop-out radii (seeded) if the scene has none (e.g. the
        synthetic generator's ground-truth points)."""
        points = data.scene.points
        radius = points.radius
        if radius is None:
            radius = drop_out_radius(points.positions, np.random.default_rng(config.seed))
        return cls(
            config,
            positions=torch.from_numpy(np.ascontiguousarray(points.positions)).float(),
            normals=None if points.normals is None else torch.from_numpy(np.ascontiguousarray(points.normals)).float(),
            radius=torch.from_numpy(np.ascontiguousarray(radius, dtype=np.float32)),
            colors=None if points.colors is None else torch.from_numpy(np.ascontiguousarray(points.colors)),
            rotations=data.rotations, translations=data.translations, intrinsics=data.intrinsics,
            distortion=data.distortion, full_size=data.full_size, camera_index=data.camera_index,
            exif_ev=data.exif_ev, train_mask=torch.from_numpy(~data.heldout),
            num_cameras=max(1, len(data.scene.cameras)),
        )

