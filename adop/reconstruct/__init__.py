"""Capture set → scene: structure from motion (pycolmap), dense stereo (``adop.dense``), cleanup (open3d) and ADOP's
point preprocessing.

Three pure steps so that the pipeline can cache them separately: ``run_sfm`` (expensive, keyed by ``SfmConfig``),
``run_dense`` (keyed by ``DenseConfig``) and ``build_scene`` (cheap, keyed by ``CleanupConfig``); ``reconstruct``
runs all three.
"""

from adop.reconstruct.build import SceneReport, build_scene
from adop.reconstruct.config import CleanupConfig, SfmConfig
from adop.reconstruct.dense import run_dense
from adop.reconstruct.failure import SfmFailure
from adop.reconstruct.pipeline import densify_scene, reconstruct
from adop.reconstruct.sfm import SfmResult, run_sfm

__all__ = [
    "CleanupConfig",
    "SceneReport",
    "SfmConfig",
    "SfmFailure",
    "SfmResult",
    "build_scene",
    "densify_scene",
    "reconstruct",
    "run_dense",
    "run_sfm",
]
