"""Configuration of the dense stage (multi-view stereo and fusion): one validated dataclass, cached by its hash."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from adop.config import Config, require

DenseMethod = Literal["auto", "ours", "colmap", "off"]
DenseDevice = Literal["auto", "cpu", "cuda"]


@dataclass(frozen=True)
class DenseConfig(Config):
    """Multi-view stereo on the SfM model: per-view depth maps, then fusion into one coloured cloud with normals.

    ADOP renders points one pixel each, so the cloud has to cover the photos: SfM keeps only the features it could
    match, and the network then paints blobs over the gaps (docs/method.md §15).
    """

    method: DenseMethod = "ours"
    """``ours``: the plane sweep of ``adop.dense.sweep`` (PyTorch, the same code on the CPU and on CUDA).
    ``colmap``: COLMAP's PatchMatch stereo + fusion, where pycolmap was built with CUDA and a GPU is present (run in a
    child process: without a GPU it aborts the whole process). ``auto``: colmap where it can run, else ours.
    ``off``: keep the SfM points."""

    device: DenseDevice = "auto"
    """Where ``ours`` runs: ``auto`` picks CUDA when torch sees a GPU."""

    max_image_size: int = 1000
    """Long side (px) of the depth maps on the CPU; photos are undistorted and downscaled to it. 0: full size."""

    max_image_size_cuda: int = 0
    """The same on a CUDA device; 0: the photos' full size."""

    neighbours: int = 3
    """Source views per reference view, the best by covisible SfM points with a useful triangulation angle."""

    min_shared_points: int = 15
    """A source view must share at least this many SfM points (within the angle range) with the reference view."""

    min_triangulation_angle: float = 2.0
    """Degrees: shared points seen under a smaller angle do not count towards a source view (no parallax)."""

    max_triangulation_angle: float = 45.0
    """Degrees: shared points seen under a larger angle do not count (the patches no longer look alike)."""

    depth_planes: int = 64
    """Fronto-parallel planes of the sweep, spaced uniformly in inverse depth over the view's depth range."""

    coarse_size: int = 150
    """Views whose long side is at least twice this are swept coarse to fine: the full sweep on a half-size copy
    (recursively), then ``refine_planes`` depths per pixel around the coarse one at full size."""

    refine_planes: int = 17
    """Depth hypotheses per pixel at a refined level, half a coarse plane apart, centred on the coarse depth."""

    ground_planes: bool = False
    """Also sweep planes parallel to the ground (given the scene's up direction) and keep, per pixel, the better of
    the two families, for a road or floor seen at a grazing angle. Off by default: on a street capture (29 photos at
    640 px) it raised the pixels with a depth from 55.6 % to 57.3 % for 44 % more time, and nothing with the
    coarse-to-fine sweep, whose refined levels already follow slanted surfaces."""

    facade_planes: bool = False
    """Also sweep vertical planes along the view direction on both sides of the camera (the facades of a street seen
    from within it), like ``ground_planes``. Off by default: on the street capture it raised the fused coverage from
    17.3 % to 17.7 % for about 15 % more time."""

    depth_margin: float = 0.25
    """The depth range is the 2nd–98th percentile of the view's SfM point depths, widened by this fraction."""

    window_radius: int = 3
    """ZNCC window half-size in pixels (3: 7×7). ZNCC ignores gain and offset, so exposure and white-balance
    differences between the photos do not change the cost."""

    best_sources: int = 2
    """A depth's score is the mean ZNCC of its best this many source views (occlusion-robust aggregation); where fewer
    sources see the pixel's window, the mean of those that do."""

    min_ncc: float = 0.4
    """Pixels whose best score is lower are rejected (no consistent match)."""

    min_texture: float = 0.01
    """Pixels whose window has a grey-level standard deviation below this (of 1) are rejected (no texture)."""

    fusion_neighbours: int = 6
    """Views a depth is checked against during fusion."""

    min_consistent: int = 1
    """Fusion keeps a pixel when at least this many other views agree with its depth. On a street capture (29 photos
    at 640 px) 2 kept a quarter of what 1 keeps (4.9 % against 14.7 % of the photos' pixels covered); with 1 a depth
    still needs one other view's independent depth to agree."""

    max_reprojection_error: float = 2.0
    """Fusion: a view agrees when its depth, projected back, lands within this many pixels (COLMAP's default)."""

    max_depth_error: float = 0.02
    """Fusion: ... and within this fraction of the depth (COLMAP: 0.01 for PatchMatch depths; a plane sweep's are
    noisier)."""

    merge_footprint: float = 2.0
    """Fused points closer than about this many pixel footprints (depth / focal length of the view that made them)
    are merged into one; 0 keeps them all."""

    max_points: int = 4_000_000
    """Upper bound of the fused cloud: above it, the merge grid grows (×1.5 at a time) until the cloud fits. Training
    cost grows with the points (a two-core CPU trains ``cpu-fast`` at about 4 steps/s with 1.5 M points); ADOP renders
    10⁸ points on a GPU, so raise it there."""

    tile_rows: int = 128
    """Rows of the reference view swept at once: bounds memory (planes × rows × width floats) at any photo size."""

    def validate(self) -> None:
        require(self.max_image_size == 0 or self.max_image_size >= 64,
                f"DenseConfig.max_image_size must be 0 (full size) or >= 64 px, got {self.max_image_size}")
        require(self.max_image_size_cuda == 0 or self.max_image_size_cuda >= 64,
                "DenseConfig.max_image_size_cuda must be 0 (full size) or >= 64 px")
        require(1 <= self.neighbours <= 32, "DenseConfig.neighbours must be in [1, 32]")
        require(1 <= self.best_sources <= self.neighbours,
                "DenseConfig.best_sources must be between 1 and neighbours")
        require(self.min_shared_points >= 1, "DenseConfig.min_shared_points must be >= 1")
        require(0 < self.min_triangulation_angle < self.max_triangulation_angle < 90,
                "DenseConfig triangulation angles must satisfy 0 < min < max < 90")
        require(8 <= self.depth_planes <= 1024, "DenseConfig.depth_planes must be in [8, 1024]")
        require(self.coarse_size >= 32, "DenseConfig.coarse_size must be >= 32 px")
        require(3 <= self.refine_planes <= 64, "DenseConfig.refine_planes must be in [3, 64]")
        require(0 <= self.depth_margin <= 2, "DenseConfig.depth_margin must be in [0, 2]")
        require(1 <= self.window_radius <= 15, "DenseConfig.window_radius must be in [1, 15]")
        require(-1 < self.min_ncc < 1, "DenseConfig.min_ncc must be in (-1, 1)")
        require(self.min_texture >= 0, "DenseConfig.min_texture must be >= 0")
        require(1 <= self.fusion_neighbours <= 64, "DenseConfig.fusion_neighbours must be in [1, 64]")
        require(0 <= self.min_consistent <= self.fusion_neighbours,
                "DenseConfig.min_consistent must be between 0 and fusion_neighbours")
        require(self.max_reprojection_error > 0 and self.max_depth_error > 0,
                "DenseConfig fusion tolerances must be positive")
        require(self.merge_footprint >= 0, "DenseConfig.merge_footprint must be >= 0")
        require(self.max_points >= 1000, "DenseConfig.max_points must be >= 1000")
        require(self.tile_rows >= 16, "DenseConfig.tile_rows must be >= 16")

    def depth_map_fields(self) -> dict:
        """The fields a depth map's values depend on: not fusion's, not where or in which tiles it was computed, not
        the size settings (the map's size is part of its key), so changing those reuses the maps."""
        ignored = {"method", "device", "max_image_size", "max_image_size_cuda", "tile_rows", "fusion_neighbours",
                   "min_consistent", "max_reprojection_error", "max_depth_error", "merge_footprint", "max_points"}
        return {k: v for k, v in self.to_dict().items() if k not in ignored}

    def image_size_for(self, device: str) -> int:
        """The depth maps' long side on ``device`` (0: full size)."""
        return self.max_image_size_cuda if device.startswith("cuda") else self.max_image_size
