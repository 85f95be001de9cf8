"""Why SfM failed, in words a photographer can act on.

pycolmap reports failure only as an empty result and a log line ("No images with matches", "Discarding
reconstruction due to bad initial pair"). This module reads the feature database and the models that were found and
names the likely cause: no texture, no overlap, no baseline (identical frames or a camera that only rotated), or a
capture that splits into separate parts.
"""

from __future__ import annotations

import zlib  # noqa: F401  (before pycolmap: loaded after it, zlib users abort; see adop/scene/colmap.py)
from dataclasses import dataclass
from pathlib import Path

from adop.native import pycolmap
from adop.errors import StageError
from adop.reconstruct.check import ModelCheck

_FEATURELESS = 100  # keypoints; below this an image is effectively blank for SIFT
_NO_BASELINE = {"PANORAMIC", "PLANAR_OR_PANORAMIC"}


class SfmFailure(StageError):
    """SfM could not produce a usable model; ``report`` holds the same facts as ``sfm_report.json`` would."""

    def __init__(self, message: str, report: dict | None = None) -> None:
        super().__init__(message)
        self.report = report or {}


@dataclass(frozen=True)
class MatchStats:
    """What the feature database says about the images given to SfM."""

    keypoints: dict[str, int]
    """Keypoints per image name."""
    overlapping_pairs: int
    """Image pairs with a verified two-view geometry."""
    no_baseline_pairs: int
    """Of those, pairs explained by a homography of a camera that did not move (rotation only, or copies)."""
    isolated: tuple[str, ...]
    """Images with no verified geometry to any other image."""

    def to_dict(self) -> dict:
        return {
            "overlapping_pairs": self.overlapping_pairs,
            "no_baseline_pairs": self.no_baseline_pairs,
            "isolated_images": list(self.isolated),
            "featureless_images": self.featureless,
            "mean_keypoints": sum(self.keypoints.values()) / max(1, len(self.keypoints)),
        }

    @property
    def featureless(self) -> list[str]:
        return sorted(name for name, count in self.keypoints.items() if count < _FEATURELESS)


def read_match_stats(database_path: Path) -> MatchStats:
    """Keypoint counts and verified pairs from a COLMAP database (pairs with 0 inliers do not count)."""
    database = pycolmap.Database.open(str(database_path))
    try:
        images = {image.image_id: image.name for image in database.read_all_images()}
        keypoints = {name: int(database.num_keypoints_for_image(iid)) for iid, name in images.items()}
        pair_ids, geometries = database.read_two_view_geometries()
    finally:
        database.close()
    connected: set[str] = set()
    overlapping = no_baseline = 0
    for pair_id, geometry in zip(pair_ids, geometries):
        if len(geometry.inlier_matches) == 0:
            continue
        overlapping += 1
        no_baseline += pycolmap.TwoViewGeometryConfiguration(int(geometry.config)).name in _NO_BASELINE
        first, second = pycolmap.pair_id_to_image_pair(pair_id)
        connected.update((images[first], images[second]))
    isolated = tuple(sorted(set(images.values()) - connected))
    return MatchStats(keypoints, overlapping, no_baseline, isolated)


def _names(names: list[str] | tuple[str, ...], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return f"{shown} and {len(names) - limit} more" if len(names) > limit else shown


def explain_failure(
    *,
    num_used: int,
    registered: list[str],
    unregistered: list[str],
    model_sizes: list[int],
    stats: MatchStats,
    threshold: float,
    unreadable: dict[str, str],
) -> str:
    """The message of the ``SfmFailure`` raised when too few images registered (after the retry)."""
    total = num_used + len(unreadable)
    fraction = len(registered) / max(1, total)
    lines = [
        f"SfM registered {len(registered)} of {total} images ({fraction:.0%}; at least {threshold:.0%} needed)."
    ]
    if unregistered:
        lines.append(f"Not registered: {_names(unregistered)}.")
    if unreadable:
        lines.append(f"Unreadable and left out: {_names(sorted(unreadable))}.")
    featureless = stats.featureless
    if len(featureless) >= max(1, num_used // 2):
        cause = (
            f"{len(featureless)} of {num_used} images have almost no features (blank, sky, water, out of focus or "
            "too dark): SIFT finds nothing to match."
        )
    elif stats.overlapping_pairs == 0:
        cause = (
            "No two images share enough features: the photos do not overlap, or they show different places."
        )
    elif not registered and stats.no_baseline_pairs >= 0.5 * stats.overlapping_pairs:
        cause = (
            "The images match but were taken from (almost) the same spot: identical frames, or a camera that only "
            "turned. SfM needs the camera to move between shots to see depth."
        )
    elif len(model_sizes) > 1:
        sizes = ", ".join(str(s) for s in model_sizes)
        cause = (
            f"The capture falls apart into {len(model_sizes)} separate groups ({sizes} images) that share too few "
            "features to be joined."
        )
    elif stats.isolated:
        cause = f"{len(stats.isolated)} image(s) match no other image: {_names(stats.isolated, 6)}."
    else:
        cause = (
            "The images overlap too little, or with too little parallax, for COLMAP to find a reliable starting "
            "pair and add the rest."
        )
    lines.append(f"Likely cause: {cause}")
    advice = (
        "What to do: shoot with 60-80% overlap between neighbouring photos and move (do not just turn) between "
        "shots; add photos that bridge the gaps; avoid frames filled with sky, water, glass or blank walls; keep "
        "the subject sharp and well lit; remove photos of other places."
    )
    if registered:
        advice += " To accept the partial model, lower --min-registered-fraction."
    lines.append(advice)
    return "\n".join(lines)


def explain_inconsistency(check: ModelCheck, mappers: list[str]) -> str:
    """The message of the ``SfmFailure`` raised when no mapper's model agrees with the database's evidence."""
    lines = [f"SfM found no model that its own matches support (tried: {', '.join(dict.fromkeys(mappers))}): "
             + "; ".join(check.reasons) + "."]
    if check.inconsistent_images:
        lines.append(f"Images the kept model contradicts most: {_names(list(check.inconsistent_images))}.")
    advice = ("What to do: add photos that overlap more (60-80 % between neighbours) and move between shots; "
              "where the photos have no EXIF focal length, give one (the camera's or the lens's) or keep it in the "
              "files; try the other matcher (--matcher exhaustive or sequential); remove photos of other places.")
    if check.cameras_without_focal_prior:
        advice += (f" {check.cameras_without_focal_prior} camera(s) had no focal length in EXIF, which is the usual "
                   "cause of a wrong global model.")
    lines.append(advice)
    return "\n".join(lines)
