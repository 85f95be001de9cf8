"""Configuration of the two reconstruction steps: SfM (``SfmConfig``) and scene building (``CleanupConfig``).

They are separate so that the pipeline can cache the expensive SfM result under ``SfmConfig``'s hash alone: changing
a cleanup parameter reruns only ``build_scene``. Both are ``adop.config.Config``s: validated on construction, exact JSON round trip.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from adop.config import Config, require

MatcherChoice = Literal["auto", "exhaustive", "sequential"]
SfmCameraModel = Literal["SIMPLE_PINHOLE", "PINHOLE", "SIMPLE_RADIAL", "RADIAL", "OPENCV", "FULL_OPENCV"]
CameraGrouping = Literal["per_size", "per_image", "single"]
MapperChoice = Literal["auto", "global", "incremental"]


@dataclass(frozen=True)
class SfmConfig(Config):
    """Structure from motion with pycolmap (CPU SIFT, matching, incremental mapping)."""

    matcher: MatcherChoice = "auto"
    """``auto`` picks exhaustive up to ``exhaustive_max_images`` images, sequential above that when the file names
    look like numbered video frames, exhaustive otherwise. Sequential matching on an unordered set registers far
    fewer images (28/48 measured), so it is only chosen when the names say the set is ordered."""

    exhaustive_max_images: int = 100
    """Largest set ``auto`` matches exhaustively (cost grows with the square: about 0.11 CPU-s per pair)."""

    sequential_overlap: int = 10
    """Sequential matching: how many following images each image is matched against (quadratic overlap on)."""

    vocab_tree_path: Path | None = None
    """A COLMAP vocabulary-tree file; when set, sequential matching also detects loops with it."""

    mapper: MapperChoice = "auto"
    """``auto``: run COLMAP 4's built-in global mapper (GLOMAP: rotation averaging, global positioning, bundle
    adjustment), check its model against the database's two-view geometries (``adop.reconstruct.check``), and also run
    the classic incremental mapper on the same database when the check fails or the set has at most
    ``both_mappers_max_images`` images; the model the evidence supports is kept. ``global`` / ``incremental`` force
    one mapper (its model must still pass the check). The global mapper is fast and usually right, but with poor
    focal-length priors it can converge to a wrong model that looks fine by its own figures."""

    both_mappers_max_images: int = 30
    """``auto``: sets up to this size always get both mappers (there the incremental mapper costs little next to
    matching; on 48 images it took half as long as matching, so larger sets get it only when the check fails)."""

    require_consistent: bool = True
    """Stop with an ``SfmFailure`` when no model passes the check, instead of delivering a scene the evidence
    contradicts."""

    check_min_pair_inliers: int = 50
    """Check: verified pairs with fewer inlier matches are too weak to judge a model by."""

    check_max_pairs: int = 300
    """Check: at most this many pairs (the best supported) are compared, to bound its time on large sets."""

    check_rotation_tolerance: float = 5.0
    """Check: a pair agrees when its two-view rotation is within this many degrees of the model's."""

    check_min_agreement: float = 0.7
    """Check: the fraction of checked pairs that must agree for the model to be consistent."""

    check_max_focal_deviation: float = 0.25
    """Check: a model focal length further than this fraction from the EXIF focal length is noted in the report."""

    check_max_collapsed_fraction: float = 0.1
    """Check: at most this fraction of cameras may sit on top of another camera."""

    camera_model: SfmCameraModel = "SIMPLE_RADIAL"
    """COLMAP camera model to estimate. SIMPLE_RADIAL (f, one radial term) is robust for phones and small sets;
    OPENCV (fx, fy, k1, k2, p1, p2) fits wide or decentred lenses once there are enough images to constrain it."""

    camera_grouping: CameraGrouping = "per_size"
    """``per_size``: one shared camera per image size (a typical shoot is one body and lens); ``per_image``: own
    intrinsics per photo (mixed zooms); ``single``: one camera for all (sizes must match)."""

    max_image_size: int = 1600
    """Long side (px) above which images are downscaled for SIFT only (keypoints are mapped back to full
    resolution). Bounds SIFT memory: a 12 MP photo needs about 2.2 GB per thread at full size, 1.2 GB at 1600."""

    max_num_features: int = 8192
    """SIFT keypoints kept per image."""

    num_threads: int = 2
    """Threads for extraction, matching and mapping (each SIFT thread holds one image's scale space)."""

    min_registered_fraction: float = 0.6
    """Fail when fewer than this fraction of the readable images register, after one relaxed retry."""

    retry: bool = True
    """Retry once with exhaustive matching and relaxed mapper thresholds when registration falls short."""

    min_num_inliers: int = 15
    """Two-view verification: inlier matches a pair needs to count as overlapping."""

    init_min_tri_angle: float = 16.0
    """Incremental mapper: minimum triangulation angle (degrees) of the initial pair (COLMAP default; the relaxed
    retry uses 4)."""

    init_min_num_inliers: int = 100
    """Incremental mapper: inlier matches the initial pair needs (COLMAP default; the relaxed retry uses 30)."""

    retriangulate: bool = True
    """After mapping, triangulate again from every verified match with the poses fixed and relaxed thresholds
    (two-view tracks kept, ``retriangulation_min_angle``), keeping the result only if it has more points. ADOP renders
    points, not features, so coverage matters more than track length: on the small synthetic set this took the cloud
    from 23.4k to 41.8k points with the mean reprojection error going from 0.21 to 0.17 px (lund at 640 px: 827 →
    2,393). The poses and intrinsics are not touched."""

    refine_principal_point: bool = True
    """After mapping, one more bundle adjustment that also refines each camera's principal point (the mappers keep it
    at the image centre). Real lenses are off-centre by tens of pixels, which tilts every camera a little; on the
    Herz-Jesu benchmark photos this halved the pairwise rotation error (0.105° → 0.046° median). The result is kept
    only when every principal point stays within ``principal_point_max_offset`` of the centre, so a weakly constrained
    set cannot drift."""

    principal_point_max_offset: float = 0.05
    """Largest accepted principal-point offset from the image centre, as a fraction of the long side."""

    duplicate_tolerance: float = 1e-5
    """Retriangulated points closer than this fraction of the cloud's extent to a point of a longer track, seen in a
    common image, are the same surface point triangulated twice (SIFT keeps two orientations of one keypoint) and are
    removed, so retriangulation adds coverage, not copies."""

    retriangulation_min_angle: float = 0.5
    """Smallest triangulation angle (degrees) of a retriangulated point (COLMAP's default for mapping is 1.5)."""

    seed: int = 0
    """Random seed for COLMAP's RANSAC and mapper, so a rerun gives the same model."""

    def validate(self) -> None:
        require(self.exhaustive_max_images >= 2, "SfmConfig.exhaustive_max_images must be >= 2")
        require(self.sequential_overlap >= 1, "SfmConfig.sequential_overlap must be >= 1")
        require(self.max_image_size <= 0 or self.max_image_size >= 256,
                f"SfmConfig.max_image_size must be >= 256 px (or <= 0: no downscaling), got {self.max_image_size}")
        require(self.max_num_features >= 64, "SfmConfig.max_num_features must be >= 64")
        require(self.num_threads >= 1, "SfmConfig.num_threads must be >= 1")
        require(0.0 <= self.min_registered_fraction <= 1.0, "SfmConfig.min_registered_fraction must be in [0, 1]")
        require(self.min_num_inliers >= 5 and self.init_min_num_inliers >= 5, "SfmConfig inlier counts must be >= 5")
        require(self.init_min_tri_angle > 0 and self.retriangulation_min_angle > 0,
                "SfmConfig triangulation angles must be positive")
        require(self.check_min_pair_inliers >= 8 and self.check_max_pairs >= 1,
                "SfmConfig.check_min_pair_inliers must be >= 8 and check_max_pairs >= 1")
        require(self.check_rotation_tolerance > 0, "SfmConfig.check_rotation_tolerance must be positive")
        require(0 < self.check_min_agreement <= 1 and 0 <= self.check_max_collapsed_fraction <= 1,
                "SfmConfig.check_min_agreement must be in (0, 1] and check_max_collapsed_fraction in [0, 1]")
        require(self.check_max_focal_deviation > 0, "SfmConfig.check_max_focal_deviation must be positive")


@dataclass(frozen=True)
class CleanupConfig(Config):
    """Point-cloud cleanup (open3d) and ADOP's point preprocessing (ADOP ``SceneData.cpp``,
    ``preprocess_pointcloud.cpp``; docs/method.md §2)."""

    outlier_neighbors: int = 20
    """Statistical outlier removal: neighbours whose mean distance is compared with the global distribution."""

    outlier_std_ratio: float = 2.0
    """Statistical outlier removal: drop points whose mean neighbour distance exceeds mean + ratio·std.
    0 disables the filter."""

    voxel_factor: float = 0.0
    """Voxel downsampling with an edge of ``voxel_factor`` × the median nearest-neighbour spacing (SfM units are
    arbitrary, so the size is relative to the data); 0 disables it."""

    normal_neighbors: int = 20
    """Neighbours used by open3d to fit each point's normal (a plane through them)."""

    duplicate_tolerance: float = 1e-5
    """Points closer than this fraction of the cloud's extent are duplicates (ADOP: 1e-4 absolute)."""

    lonely_ratio: float = 0.0
    """ADOP's lonely-point filter: drop points whose 5th-neighbour distance exceeds this fraction of their
    distance to the nearest camera (ADOP: 0.02, which its loader effectively never applies); 0 disables it."""

    point_factor: int = 1
    """ADOP densification: ``k`` keeps each point and adds ``k - 1`` jittered copies in its tangent plane
    (ADOP used 2–4 on Tanks and Temples); 1 disables it."""

    radius_seed: int = 0
    """Seed of the fixed random factor ``sqrt(1/u)`` of the drop-out radius and of the densification jitter."""

    sparse_fill: bool = True
    """With a dense cloud: also keep the SfM points where it has none (far from every dense point), so a surface
    the stereo could not match still gets its sparse points."""

    sparse_fill_spacing: float = 5.0
    """An SfM point is "where the dense cloud has none" when its nearest dense point is farther than this many
    median dense-point spacings."""

    quicklook_size: int = 800
    """Long side in pixels of ``quicklook.png`` (top-down view of cameras and points)."""

    def validate(self) -> None:
        require(self.outlier_neighbors >= 1 and self.normal_neighbors >= 3,
                "CleanupConfig.outlier_neighbors must be >= 1 and normal_neighbors >= 3")
        require(self.outlier_std_ratio >= 0 and self.voxel_factor >= 0 and self.lonely_ratio >= 0,
                "CleanupConfig.outlier_std_ratio, voxel_factor and lonely_ratio must be >= 0")
        require(self.duplicate_tolerance >= 0, "CleanupConfig.duplicate_tolerance must be >= 0")
        require(1 <= self.point_factor <= 8, f"CleanupConfig.point_factor must be in [1, 8], got {self.point_factor}")
        require(self.sparse_fill_spacing > 0, "CleanupConfig.sparse_fill_spacing must be positive")
        require(self.quicklook_size >= 64, "CleanupConfig.quicklook_size must be >= 64 px")
