"""ADOP's differentiable one-pixel point rasterizer (ADOP ``PointRenderer.cu``; docs/method.md §3–4).

Public API: :func:`rasterize` returns a :class:`RasterOutput` pyramid; :class:`RasterConfig` holds the options;
:func:`se3_exp` / :func:`apply_pose_tangent` apply pose steps. Three backends share one semantics: CuPy kernels
(``kernels/*.cu``) for CUDA tensors, a compiled C++/OpenMP kernel (``kernels/cpu/``) for CPU tensors and the
pure-PyTorch reference (``_torch.py``), which is the test oracle.
"""

from adop.raster.api import RasterOutput, apply_pose_tangent, rasterize, se3_exp
from adop.raster.config import Backend, RasterConfig
from adop.raster.function import resolve_backend

__all__ = ["Backend", "RasterConfig", "RasterOutput", "apply_pose_tangent", "rasterize", "resolve_backend", "se3_exp"]
