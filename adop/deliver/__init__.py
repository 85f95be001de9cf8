"""Studio deliverables: half-float EXR and PNG frame sequences, H.264/ProRes movies, contact sheet, manifest.

Every writer is atomic (``adop.storage``: temporary name, then rename), so a file with its final name is complete. Frame naming follows
the studio ``name.1001.ext`` convention (`adop.deliver.frames`).
"""

from adop.deliver.contact_sheet import ContactSheet, make_contact_sheet
from adop.deliver.delivery import Delivery, make_deliverables
from adop.deliver.exr import ExrFrame, exr_camera_matrices, read_exr, write_exr
from adop.deliver.frames import (
    FIRST_FRAME,
    fps_fraction,
    frame_name,
    frame_pattern,
    hash_pattern,
    parse_frame_name,
    sequence_info,
)
from adop.deliver.manifest import verify_manifest, write_manifest
from adop.deliver.video import VideoInfo, encode_video, ffmpeg_version, probe_video

__all__ = [
    "FIRST_FRAME",
    "ContactSheet",
    "Delivery",
    "ExrFrame",
    "VideoInfo",
    "encode_video",
    "exr_camera_matrices",
    "ffmpeg_version",
    "fps_fraction",
    "frame_name",
    "frame_pattern",
    "hash_pattern",
    "make_contact_sheet",
    "make_deliverables",
    "parse_frame_name",
    "probe_video",
    "read_exr",
    "sequence_info",
    "verify_manifest",
    "write_exr",
    "write_manifest",
]
