"""Contact sheet, delivery.json and the whole deliver stage on a tiny sequence."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adop.deliver import (
    frame_name,
    make_contact_sheet,
    make_deliverables,
    verify_manifest,
    write_exr,
    write_manifest,
)
from adop.images import read_image, write_png
from adop.errors import InputError, StageError
from adop.paths import look_at, orbit_path


def _frames(folder: Path, n: int = 10) -> tuple[list[Path], list[Path]]:
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    eye = np.stack([3 * np.cos(ang), 3 * np.sin(ang), np.ones(8)], axis=1)
    rot, trans = look_at(eye, np.zeros(3), np.array([0, 0, 1.0]))
    path = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=n / 24)
    png, exr = [], []
    for i in range(n):
        hdr = np.full((48, 64, 3), 0.1 * (i + 1), np.float32)
        exr.append(
            write_exr(
                folder / frame_name("shot", 1001 + i, "exr"),
                hdr,
                frame=1001 + i,
                fps=24,
                world_to_camera=path.world_to_camera()[i],
                intrinsics=path.intrinsics[i],
            )
        )
        png.append(write_png(folder / frame_name("shot", 1001 + i, "png"), np.clip(hdr, 0, 1)))
    return png, exr


def test_contact_sheet(tmp_path) -> None:
    png, _ = _frames(tmp_path)
    sheet = make_contact_sheet(png, tmp_path / "sheet.png", columns=3, max_tiles=5, tile_width=64)
    assert sheet.frame_numbers == (1001, 1003, 1005, 1008, 1010)
    img = read_image(sheet.path)
    assert img.shape == (2 * (48 + 24 + 4) + 4, 3 * (64 + 4) + 4, 3)
    assert sheet.labelled
    label_strip = img[4 + 48 : 4 + 48 + 24, 4 : 4 + 64]
    assert label_strip.max() > 150  # the frame number is drawn (light text on the dark strip)
    with pytest.raises(InputError, match="no frames"):
        make_contact_sheet([], tmp_path / "x.png")


def test_manifest_checksums(tmp_path) -> None:
    png, _ = _frames(tmp_path, n=3)
    path = write_manifest(
        tmp_path,
        files=png,
        frame_range=(1001, 1003),
        fps=24,
        width=64,
        height=48,
        camera_path=None,
        metrics={"psnr": 27.5},
    )
    doc = json.loads(path.read_text())
    assert [f["path"] for f in doc["files"]] == ["shot.1001.png", "shot.1002.png", "shot.1003.png"]
    assert all(len(f["sha256"]) == 64 and f["bytes"] > 0 for f in doc["files"])
    assert doc["frame_range"] == {"first": 1001, "last": 1003, "count": 3}
    assert verify_manifest(path) == []
    png[1].write_bytes(png[1].read_bytes() + b"x")
    problems = verify_manifest(path)
    assert len(problems) == 1 and problems[0].startswith("shot.1002.png: size")
    with pytest.raises(InputError, match="missing files"):
        write_manifest(
            tmp_path,
            files=[tmp_path / "nope.png"],
            frame_range=(1, 1),
            fps=24,
            width=1,
            height=1,
            camera_path=None,
            metrics={},
        )


def test_make_deliverables(tmp_path) -> None:
    png, exr = _frames(tmp_path / "render")
    ang = np.linspace(0, 2 * np.pi, 8, endpoint=False)
    rot, trans = look_at(
        np.stack([3 * np.cos(ang), 3 * np.sin(ang), np.ones(8)], 1), np.zeros(3), np.array([0, 0, 1.0])
    )
    path = orbit_path(rot, trans, np.zeros(3), width=64, height=48, fps=24, seconds=10 / 24)
    d = make_deliverables(
        png,
        tmp_path / "delivery",
        name="show_seq_shot_adop_v001",
        fps=24,
        hdr_frames=exr,
        camera_path=path,
        metrics={"psnr": 28.0, "ssim": 0.9, "lpips": 0.1},
        extra={"tonemapper": "learned"},
    )
    assert d.frame_range == (1001, 1010)
    assert sorted(p.name for p in d.folder.iterdir()) == [
        "delivery.json",
        "show_seq_shot_adop_v001.mov",
        "show_seq_shot_adop_v001.mp4",
        "show_seq_shot_adop_v001_camera_path.json",
        "show_seq_shot_adop_v001_contact_sheet.png",
    ]
    doc = json.loads(d.manifest.read_text())
    assert len(doc["files"]) == 10 + 10 + 2 + 1 + 1
    assert doc["metrics"]["psnr"] == 28.0 and doc["tonemapper"] == "learned"
    assert doc["software"]["adop"] and doc["software"]["ffmpeg"] != "unknown"
    assert doc["videos"]["show_seq_shot_adop_v001.mov"]["codec_tag"] == "apch"
    assert doc["camera_path"]["kind"] == "frames" and len(doc["camera_path"]["frames"]) == 10
    assert verify_manifest(d.manifest) == []
    with pytest.raises(StageError, match="do not match"):
        make_deliverables(png, tmp_path / "d2", name="x", fps=24, hdr_frames=exr[:-1], codecs=())
