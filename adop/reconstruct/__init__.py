"""Capture set → scene: structure from motion (pycolmap), cleanup (open3d) and ADOP's point preprocessing.

Two pure steps so that the pipeline can cache them separately: ``run_sfm`` (expensive, keyed by ``SfmConfig``)
and ``build_scene`` (cheap, keyed by ``CleanupConfig``); ``reconstruct`` runs both.
"""

from adop.reconstruct.build import SceneReport, build_scene
from adop.reconstruct.config import CleanupConfig, SfmConfig
from adop.reconstruct.failure import SfmFailure
from adop.reconstruct.pipeline import reconstruct
from adop.reconstruct.sfm import SfmResult, run_sfm

__all__ = [
    "CleanupConfig",
    "SceneReport",
    "SfmConfig",
    "SfmFailure",
    "SfmResult",
    "build_scene",
    "reconstruct",
    "run_sfm",
]
