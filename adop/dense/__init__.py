"""Dense reconstruction: multi-view stereo on the SfM model, so that the renderer gets a point per pixel.

ADOP renders every point as one pixel; SfM's sparse points leave most pixels empty and the network paints blobs over
the gaps. This stage turns the SfM model into a dense, coloured cloud with normals: our plane sweep (PyTorch, the
same code on the CPU and on CUDA; ``adop.dense.sweep``) with fusion across views (``adop.dense.fusion``), or COLMAP's
PatchMatch stereo where a CUDA build of pycolmap and a GPU are present (``adop.dense.colmap_mvs``).
"""

from adop.dense.config import DenseConfig
from adop.dense.dense_cloud import DenseReport, densify, load_dense_result

__all__ = ["DenseConfig", "DenseReport", "densify", "load_dense_result"]
