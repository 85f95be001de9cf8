"""The tonemapper: ADOP's differentiable photometric camera model, linear HDR in, display values in [0, 1] out.

Order of operations (ADOP ``NeuralCamera.cpp``; docs/method.md §6): per-image exposure ``x·2^-e``, per-image white
balance (R and B gains, green fixed at 1), a vignetting polynomial ``1 + α1 r² + α2 r⁴ + α3 r⁶`` around a learned
centre, and a per-camera response curve of ``response_samples`` samples per channel (piecewise linear, initialised to
gamma 1/2.2, leaky outside [0, 1] in training). Exposure semantics follow docs/conventions.md: radiance ``L``
photographed at EV ``e`` lands at ``L·2^-e``; the tonemapper stores EVs relative to the scene EV (the mean EXIF EV of
the training images).

**Anchoring** (docs/method.md §6). A global brightness or colour change can be explained either by the scene
(descriptors and network) or by shifting every image's exposure/white balance the opposite way; nothing in the photos
decides which, so without a constraint the split drifts during training (the "blue cast" of LichtFeld PR #1892) and
renders at a chosen EV come out wrong. We remove that gauge freedom in the parametrisation: the effective per-image
EV and log white balance are the learned values minus their mean over the *training* images (plus the EXIF mean), so
their mean is exactly the EXIF mean after any optimiser step — Adam and LBFGS included, with no post-step hook for
the trainer to forget. ``anchor="reference"`` instead pins one image at its EXIF value (ADOP/TRIPS pin frame 0's
white balance); ``"none"`` reproduces ADOP's unanchored exposure.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from adop.config import Config
from adop.errors import ShapeError

__all__ = ["Tonemapper", "TonemapperConfig", "ViewCorrection", "crop_uv"]

log = logging.getLogger(__name__)

Anchor = Literal["zero_mean", "reference", "none"]
Output = Literal["ldr", "linear", "raw"]


@dataclass(frozen=True)
class TonemapperConfig(Config):
    """Which parts of the camera model exist and how they start (defaults: ADOP T&T, plus TRIPS' white balance)."""

    enable_exposure: bool = True
    """Scale by ``2^-e`` per image; off means the HDR is used at the scene EV for every image."""
    learn_exposure: bool = True
    """Learn the per-image EV (ADOP T&T); False keeps the EXIF values (ADOP boat config, ``fix_exposure``)."""
    enable_white_balance: bool = True
    """Learn per-image R and B gains (green fixed at 1). Off in ADOP's configs, on in TRIPS."""
    enable_vignette: bool = True
    """Apply the vignetting polynomial with learned coefficients and centre."""
    enable_response: bool = True
    """Apply the learned per-camera response curve; off means clamping to [0, 1]."""
    response_samples: int = 25
    """Samples per channel of the piecewise-linear response curve over [0, 1] (ADOP: 25)."""
    response_gamma: float = 2.2
    """Initial response is ``x^(1/response_gamma)``."""
    response_leak_factor: float = 0.01
    """Leak outside [0, 1] in training, so clipped pixels still pass gradients (ADOP ``response_leak_factor``)."""
    response_smoothness: float = 1.0
    """Weight of ``smoothness_loss()`` that the trainer adds to the loss (ADOP ``response_smoothness``)."""
    anchor: Anchor = "zero_mean"
    """How per-image EV/white balance are anchored against global drift (module docstring)."""
    reference_image: int = 0
    """The pinned image when ``anchor == "reference"``."""


@dataclass(frozen=True)
class ViewCorrection:
    """Exposure and white balance of one view, in render-time units (what ``Tonemapper.apply`` takes)."""

    ev: float
    """Absolute EV100 (scene EV plus the relative exposure)."""
    white_balance: tuple[float, float]
    """Linear gains for R and B (green is 1)."""
    loss: float = math.nan
    """Mean squared error on the fitted pixels (NaN when not fitted)."""


def crop_uv(crop: Tensor, full_size: Tensor, height: int, width: int) -> tuple[Tensor, Tensor]:
    """Position of every crop pixel centre in the full image, normalised to [−1, 1].

    A crop maps full-image pixels ``u`` to crop pixels ``u' = zoom·u − ox`` (docs/conventions.md), so the centre of crop
    column ``i`` (``u' = i + 0.5``) lies at ``u = (i + 0.5 + ox) / zoom``; normalising by the *full* width makes the
    vignette of a crop equal to the corresponding part of the full-image vignette.

    Args:
        crop: ``[B, 3]`` rows ``(zoom, ox, oy)``; ``(1, 0, 0)`` is the full image.
        full_size: ``[B, 2]`` full image ``(W, H)`` in pixels.
        height: Crop height H.
        width: Crop width W.

    Returns:
        ``(u, v)``, each ``[B, H, W]`` in the dtype/device of ``crop``.
    """
    cols = torch.arange(width, dtype=crop.dtype, device=crop.device) + 0.5
    rows = torch.arange(height, dtype=crop.dtype, device=crop.device) + 0.5
    zoom, ox, oy = (crop[:, k].view(-1, 1, 1) for k in range(3))
    full_w, full_h = full_size[:, 0].view(-1, 1, 1), full_size[:, 1].view(-1, 1, 1)
    u = 2.0 * ((cols.view(1, 1, -1) + ox) / zoom) / full_w - 1.0
    v = 2.0 * ((rows.view(1, -1, 1) + oy) / zoom) / full_h - 1.0
    return u.expand(-1, height, width), v.expand(-1, height, width)


def _response_lookup(x: Tensor, curves: Tensor) -> Tensor:
    """Piecewise-linear lookup of ``x`` [B, 3, H, W] (clamped to [0, 1]) in ``curves`` [B, 3, S]."""
    b, c, h, w = x.shape
    segments = curves.shape[-1] - 1
    t = x.clamp(0.0, 1.0) * segments
    i0 = t.detach().floor().clamp(max=segments - 1)
    frac = (t - i0).reshape(b, c, h * w)
    idx = i0.long().reshape(b, c, h * w)
    y0 = torch.gather(curves, 2, idx)
    y1 = torch.gather(curves, 2, idx + 1)
    return (y0 + (y1 - y0) * frac).reshape(b, c, h, w)


def _leak(x: Tensor, factor: float) -> Tensor:
    """ADOP's training-only leak: ``f·x`` below 0, ``f − f/sqrt(|x| + 1e-4)`` above 1, zero in between."""
    below = torch.where(x < 0, factor * x, torch.zeros_like(x))
    above = torch.where(x > 1, factor - factor / torch.sqrt(x.abs() + 1e-4), torch.zeros_like(x))
    return below + above


def _as_batch(value: Tensor | tuple[float, ...] | float | int, batch: int, width: int, like: Tensor) -> Tensor:
    """Broadcast a scalar, a tuple or a tensor to ``[batch, width]`` in the dtype/device of ``like``."""
    t = torch.as_tensor(value, dtype=like.dtype, device=like.device)
    if t.dim() <= 1 and (t.numel() == width or t.numel() == 1):
        t = t.reshape(1, -1)
    return t.expand(batch, width) if t.shape[0] == 1 else t.reshape(batch, width)


class Tonemapper(nn.Module):
    """Differentiable camera model (ADOP ``NeuralCamera``; docs/method.md §6), anchored per-image exposure and WB.

    Args:
        config: What to model and how to anchor it.
        num_images: Images in the scene (training and held out); ``image_index`` refers to these.
        num_cameras: Physical cameras; each has its own response curve.
        exif_ev: ``[num_images]`` EXIF EV100 per image, NaN where unknown (treated as the scene EV). None: all 0.
        train_images: ``[num_images]`` bool, the images whose mean anchors the corrections. None: all of them.
    """

    def __init__(
        self,
        config: TonemapperConfig | None = None,
        *,
        num_images: int,
        num_cameras: int = 1,
        exif_ev: Tensor | None = None,  # [N]
        train_images: Tensor | None = None,  # [N] bool
    ) -> None:
        super().__init__()
        self.config = cfg = config if config is not None else TonemapperConfig()
        if num_images < 1 or num_cameras < 1 or cfg.response_samples < 2:
            raise ValueError(
                f"need num_images, num_cameras >= 1 and response_samples >= 2 ({num_images=}, {num_cameras=})"
            )
        if cfg.anchor == "reference" and not 0 <= cfg.reference_image < num_images:
            raise ValueError(f"reference_image {cfg.reference_image} is not one of the {num_images} images")
        train = torch.ones(num_images, dtype=torch.bool) if train_images is None else train_images.to(torch.bool).cpu()
        ev = torch.zeros(num_images) if exif_ev is None else exif_ev.detach().to(torch.float32).cpu()
        if train.shape != (num_images,) or ev.shape != (num_images,):
            raise ShapeError(
                f"exif_ev and train_images must be [{num_images}], got {list(ev.shape)} and {list(train.shape)}"
            )
        if not train.any():
            raise ValueError("train_images selects no image; the anchor needs at least one")
        known = train & ~torch.isnan(ev)
        scene_ev = float(ev[known].mean()) if known.any() else 0.0
        ev_init = torch.nan_to_num(ev - scene_ev, nan=0.0)
        self.register_buffer("scene_ev", torch.tensor(scene_ev))
        self.register_buffer("train_images", train)
        self.register_buffer("exposure_init", ev_init.clone())
        self.exposure = nn.Parameter(ev_init.clone(), requires_grad=cfg.enable_exposure and cfg.learn_exposure)
        self.log_white_balance = nn.Parameter(torch.zeros(num_images, 2), requires_grad=cfg.enable_white_balance)
        self.vignette_alpha = nn.Parameter(torch.zeros(3), requires_grad=cfg.enable_vignette)
        self.vignette_centre = nn.Parameter(torch.zeros(2), requires_grad=cfg.enable_vignette)
        grid = torch.linspace(0.0, 1.0, cfg.response_samples) ** (1.0 / cfg.response_gamma)
        self.response = nn.Parameter(grid.expand(num_cameras, 3, -1).clone(), requires_grad=cfg.enable_response)

    @property
    def num_images(self) -> int:
        """Images the tonemapper holds corrections for."""
        return self.exposure.shape[0]

    def _anchored(self, raw: Tensor, init: Tensor) -> Tensor:
        """Remove the global gauge from per-image values (module docstring); ``init`` holds the EXIF anchor."""
        if self.config.anchor == "none":
            return raw
        if self.config.anchor == "reference":
            ref = self.config.reference_image
            return raw - raw[ref] + init[ref]
        train = self.train_images
        return raw - raw[train].mean(dim=0) + init[train].mean(dim=0)

    def effective_exposure(self) -> Tensor:  # [N]
        """Per-image EV relative to the scene EV, after anchoring (what the forward pass uses)."""
        return self._anchored(self.exposure, self.exposure_init)

    def effective_log_white_balance(self) -> Tensor:  # [N, 2]
        """Per-image natural-log R and B gains after anchoring (zero mean over training images by default)."""
        return self._anchored(self.log_white_balance, torch.zeros_like(self.log_white_balance))

    def view_correction(self, image_index: int) -> ViewCorrection:
        """The learned correction of one image in render-time units, to re-render a training view as photographed."""
        with torch.no_grad():
            ev = float(self.effective_exposure()[image_index]) + float(self.scene_ev)
            gains = self.effective_log_white_balance()[image_index].exp()
        return ViewCorrection(ev=ev, white_balance=(float(gains[0]), float(gains[1])))

    def vignette_factor(self, crop: Tensor, full_size: Tensor, height: int, width: int) -> Tensor:  # [B, 1, H, W]
        """Vignetting gain ``1 + α1 r² + α2 r⁴ + α3 r⁶`` at every crop pixel (see ``crop_uv``)."""
        u, v = crop_uv(crop, full_size, height, width)
        aspect = (full_size[:, 0] / full_size[:, 1]).view(-1, 1, 1)
        centre = self.vignette_centre.to(u)
        r2 = ((u - centre[0]) * aspect) ** 2 + (v - centre[1]) ** 2
        a = self.vignette_alpha.to(u)
        return (1.0 + r2 * (a[0] + r2 * (a[1] + r2 * a[2]))).unsqueeze(1)

    def smoothness_loss(self) -> Tensor:
        """ADOP's response regulariser (docs/method.md §6), already multiplied by ``config.response_smoothness``.

        ``(S²·1e-5)·[r_0² + Σ_k (r_k − (r_{k−1} + r_{k+1})/2)²]`` summed over channels and cameras: it pulls the first
        sample to 0 and each interior sample towards its neighbours' mean, so the curve stays smooth where few pixels
        constrain it. The last sample is free. Zero when the response is disabled.
        """
        r = self.response
        if not self.config.enable_response:
            return r.new_zeros(())
        interior = r[..., 1:-1] - 0.5 * (r[..., :-2] + r[..., 2:])
        scale = r.shape[-1] ** 2 * 1e-5
        return self.config.response_smoothness * scale * ((r[..., 0] ** 2).sum() + (interior**2).sum())

    def _tonemap(
        self,
        hdr: Tensor,  # [B, 3, H, W]
        ev_rel: Tensor | None,  # [B]
        log_wb: Tensor | None,  # [B, 2]
        camera_index: Tensor,  # [B]
        crop: Tensor | None,  # [B, 3]
        full_size: Tensor | tuple[int, int] | None,
        *,
        leaky: bool,
        output: Output,
        vignette: bool,
    ) -> Tensor:
        if hdr.dim() != 4 or hdr.shape[1] != 3:
            raise ShapeError(f"hdr: expected [B, 3, H, W], got {list(hdr.shape)}")
        if output == "raw":
            return hdr
        b, _, h, w = hdr.shape
        x = hdr
        if ev_rel is not None:
            x = x * torch.exp2(-ev_rel.to(hdr)).view(b, 1, 1, 1)
        if log_wb is not None:
            zero = log_wb.new_zeros(b, 1)
            x = x * torch.cat([log_wb[:, :1], zero, log_wb[:, 1:]], dim=1).exp().to(hdr).view(b, 3, 1, 1)
        if vignette and self.config.enable_vignette:
            crop_t = _as_batch((1.0, 0.0, 0.0) if crop is None else crop, b, 3, hdr)
            size_t = _as_batch((w, h) if full_size is None else full_size, b, 2, hdr)
            x = x * self.vignette_factor(crop_t, size_t, h, w)
        if output == "linear":
            return x
        if not self.config.enable_response:
            return x.clamp(0.0, 1.0)
        if camera_index.shape != (b,) or int(camera_index.min()) < 0 or int(camera_index.max()) >= len(self.response):
            raise ShapeError(f"camera_index: expected [{b}] in [0, {len(self.response)}), got {camera_index.tolist()}")
        y = _response_lookup(x, self.response[camera_index].to(hdr))
        return y + _leak(x, self.config.response_leak_factor) if leaky else y

    def forward(
        self,
        hdr: Tensor,  # [B, 3, H, W]
        image_index: Tensor,  # [B] long
        camera_index: Tensor,  # [B] long
        crop: Tensor | None = None,  # [B, 3] (zoom, ox, oy)
        full_size: Tensor | tuple[int, int] | None = None,  # [B, 2] or (W, H)
    ) -> Tensor:
        """Tonemap training views with their own learned corrections.

        Args:
            hdr: Linear HDR from the renderer.
            image_index: Which image each batch element shows (selects exposure and white balance).
            camera_index: Which camera took it (selects the response curve).
            crop: Crop of each element (docs/conventions.md); None means the full image.
            full_size: Full image ``(W, H)``, one for all or ``[B, 2]``; None means the size of ``hdr``.

        Returns:
            ``[B, 3, H, W]`` display values; in [0, 1] in eval mode, leaky outside it in training mode.
        """
        if image_index.shape != (hdr.shape[0],):
            raise ShapeError(f"image_index: expected [{hdr.shape[0]}], got {list(image_index.shape)}")
        cfg = self.config
        ev = self.effective_exposure()[image_index] if cfg.enable_exposure else None
        wb = self.effective_log_white_balance()[image_index] if cfg.enable_white_balance else None
        return self._tonemap(
            hdr, ev, wb, camera_index, crop, full_size, leaky=self.training, output="ldr", vignette=True
        )

    def apply(
        self,
        hdr: Tensor,  # [B, 3, H, W]
        *,
        ev: float | Tensor | None = None,
        white_balance: tuple[float, float] | Tensor | None = None,
        camera_index: int | Tensor = 0,
        crop: Tensor | None = None,
        full_size: Tensor | tuple[int, int] | None = None,
        vignette: bool = True,
        output: Output = "ldr",
    ) -> Tensor:
        """Render-time tonemapping at a chosen exposure and white balance (as ADOP's viewer; docs/method.md §11).

        Args:
            hdr: Linear HDR from the renderer.
            ev: Absolute EV100 to photograph at (scalar or ``[B]``); None means the scene EV.
            white_balance: Linear ``(R, B)`` gains (or ``[B, 2]``); None means neutral (1, 1), the training mean.
            camera_index: Whose response curve to use (int or ``[B]``).
            crop: As in ``forward``.
            full_size: As in ``forward``.
            vignette: Apply the learned vignetting.
            output: ``"ldr"`` display values in [0, 1]; ``"linear"`` exposure, white balance and vignette without the
                response (unclamped HDR at that exposure); ``"raw"`` the input HDR unchanged.

        Returns:
            ``[B, 3, H, W]``; never leaky, whatever the module mode.
        """
        b = hdr.shape[0]
        ev_rel = None if ev is None else _as_batch(ev, b, 1, hdr)[:, 0] - self.scene_ev.to(hdr)
        log_wb = None if white_balance is None else _as_batch(white_balance, b, 2, hdr).log()
        cam = torch.as_tensor(camera_index, device=hdr.device, dtype=torch.long).reshape(-1).expand(b)
        return self._tonemap(hdr, ev_rel, log_wb, cam, crop, full_size, leaky=False, output=output, vignette=vignette)

    def fit_view_correction(
        self,
        hdr: Tensor,  # [B, 3, H, W]
        target: Tensor,  # [B, 3, H, W]
        *,
        mask: Tensor | None = None,  # [B, 1, H, W]
        camera_index: int = 0,
        crop: Tensor | None = None,
        full_size: Tensor | tuple[int, int] | None = None,
        ev_init: float | None = None,
        fit_white_balance: bool = True,
        steps: int = 30,
    ) -> ViewCorrection:
        """Fit exposure (and white balance) of a held-out view on some of its pixels, everything else frozen.

        A held-out photo was taken at an exposure/white balance the model never saw; the usual protocol (e.g. fit on
        the left half, score on the right) estimates them first so the metric measures the scene, not the camera.
        LBFGS with a strong-Wolfe line search on the masked mean squared error (smooth, so LBFGS converges in a few
        iterations); the response leak is on so over-exposed starts still pass gradients. Module parameters receive no
        gradients.

        Args:
            hdr: Renderer output for the view (detached here).
            target: The photo, display values in [0, 1].
            mask: Pixels to fit on (1) and to ignore (0); None uses all.
            camera_index: The view's camera.
            crop: As in ``forward``.
            full_size: As in ``forward``.
            ev_init: Starting absolute EV100 (e.g. the view's EXIF EV); None means the scene EV.
            fit_white_balance: Also fit R and B gains; otherwise they stay neutral.
            steps: Maximum LBFGS iterations.

        Returns:
            The fitted ``ViewCorrection``; pass ``ev`` and ``white_balance`` to ``apply``.
        """
        if target.shape != hdr.shape:
            raise ShapeError(f"target: expected {list(hdr.shape)}, got {list(target.shape)}")
        hdr, target = hdr.detach(), target.detach().to(hdr)
        weight = torch.ones_like(hdr[:, :1]) if mask is None else mask.detach().to(hdr).expand_as(hdr[:, :1])
        denom = weight.sum().clamp_min(1.0) * 3
        start = 0.0 if ev_init is None else ev_init - float(self.scene_ev)
        ev = torch.tensor([start], dtype=hdr.dtype, device=hdr.device, requires_grad=True)
        log_wb = torch.zeros(1, 2, dtype=hdr.dtype, device=hdr.device, requires_grad=fit_white_balance)
        variables = [ev, log_wb] if fit_white_balance else [ev]
        cam = torch.full((hdr.shape[0],), camera_index, dtype=torch.long, device=hdr.device)
        optimiser = torch.optim.LBFGS(variables, lr=1.0, max_iter=steps, line_search_fn="strong_wolfe")

        def closure() -> Tensor:
            ldr = self._tonemap(
                hdr, ev.expand(hdr.shape[0]), log_wb.expand(hdr.shape[0], 2), cam, crop, full_size,
                leaky=True, output="ldr", vignette=True,
            )
            loss = (weight * (ldr - target) ** 2).sum() / denom
            grads = torch.autograd.grad(loss, variables)
            for var, grad in zip(variables, grads):
                var.grad = grad
            return loss.detach()

        optimiser.step(closure)
        final = float(closure())
        ev_rel, gains = float(ev.detach()), log_wb.detach()[0].exp()
        log.debug("fitted view correction: ev %+.3f (relative), loss %.3g", ev_rel, final)
        return ViewCorrection(
            ev=ev_rel + float(self.scene_ev), white_balance=(float(gains[0]), float(gains[1])), loss=final
        )
