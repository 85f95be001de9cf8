"""Synthetic capture sets with exact ground truth: a procedural scene photographed by a simulated camera.

``generate_capture_set(OUT, preset="tiny", seed=0)`` (CLI: ``adop synth OUT --preset tiny|small --seed N``) ray-casts
a textured, walled yard with boxes, spheres, a cylinder, an emissive light box and small magenta marker spheres on the
CPU (open3d ``RaycastingScene``), through a SIMPLE_RADIAL camera (k1 = −0.04) from views on an arc around it, and
photographs the linear radiance with a simulated camera: per-image exposure (recorded in EXIF) plus an unrecorded
deviation, per-image white balance, vignetting, a non-linear response, noise, 8-bit JPEG.

Output layout::

    OUT/
      images/view_NNN.jpg          the capture set, and nothing else (EXIF: ExposureTime, FNumber 8,
                                   Exif:ISOSpeedRatings 100, Exif:FocalLength, Exif:FocalLengthIn35mmFilm,
                                   Make/Model "adop-synth"); quality 92, 4:4:4 chroma
      ground_truth/                never read by the pipeline
        README.md                  this layout and the exact image-formation formula
        scene/                     adop scene folder: true camera and poses (image_dir ../../images, exposure_ev =
                                   EXIF EV100), points.ply = dense coloured surface sample with normals
        camera_model.json          per-image recorded/true EV, deviation, white balance; vignetting; response curve
                                   (parametric + 256-sample tables); global radiance scale; the formula
        heldout/                   scene folder of held-out poses (frames name the EXRs, no points) +
                                   heldout_NN.exr linear radiance (float RGB) at those poses
        markers.json               marker sphere centres, radius and radiance; objects and lights

The formula, conventions and file details are in ``ground_truth/README.md`` (text in ``adop.synth.files.README``).
Presets are in ``adop.synth.presets``; the same seed gives byte-identical files.
"""

from adop.synth.camera_sim import CameraSimulation, ImageExposure, ResponseCurve, Vignette
from adop.synth.generate import SynthManifest, generate_capture_set, true_camera
from adop.synth.presets import PRESETS, SMALL, TINY, SynthLayout, SynthPreset, get_preset
from adop.synth.raytrace import trace_radiance
from adop.synth.world import SynthWorld, build_world

__all__ = [
    "PRESETS",
    "SMALL",
    "TINY",
    "CameraSimulation",
    "ImageExposure",
    "ResponseCurve",
    "SynthLayout",
    "SynthManifest",
    "SynthPreset",
    "SynthWorld",
    "Vignette",
    "build_world",
    "generate_capture_set",
    "get_preset",
    "trace_radiance",
    "true_camera",
]
