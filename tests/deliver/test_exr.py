"""Half-float EXR: pixel round trip within half precision, metadata round trip, camera matrices, atomic writes."""

from __future__ import annotations

import numpy as np
import pytest

from adop.deliver import frame_name, read_exr, write_exr
from adop.deliver.exr import REC709_CHROMATICITIES, exr_camera_matrices
from adop.errors import ShapeError
from adop.paths import look_at


def _hdr(h: int = 48, w: int = 64, c: int = 3) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.exp(rng.uniform(np.log(1e-3), np.log(2000.0), size=(h, w, c))).astype(np.float32)


def _camera() -> tuple[np.ndarray, np.ndarray]:
    rot, trans = look_at(np.array([1.0, -4.0, 2.0]), np.array([0.0, 0.0, 0.5]), np.array([0.0, 0.0, 1.0]))
    w2c = np.eye(4)
    w2c[:3, :3], w2c[:3, 3] = rot[0], trans[0]
    return w2c, np.array([60.0, 58.0, 31.0, 25.0])


@pytest.mark.parametrize("compression", ["piz", "zip"])
def test_half_float_round_trip(tmp_path, compression) -> None:
    img = _hdr()
    path = write_exr(tmp_path / frame_name("beauty", 1001, "exr"), img, compression=compression)
    assert path.name == "beauty.1001.exr"
    back = read_exr(path)
    assert back.pixel_type == "half" and back.compression == compression
    assert back.pixels.shape == img.shape and back.pixels.dtype == np.float32
    assert np.allclose(back.pixels, img.astype(np.float16).astype(np.float32), rtol=0, atol=0)  # lossless on half
    assert (np.abs(back.pixels - img) / img).max() < 1e-3  # half precision: 11-bit mantissa
    assert [p.name for p in tmp_path.iterdir()] == ["beauty.1001.exr"]  # no temporary file left


def test_metadata_round_trip(tmp_path) -> None:
    w2c, k = _camera()
    path = write_exr(
        tmp_path / "m.1001.exr",
        _hdr(),
        world_to_camera=w2c,
        intrinsics=k,
        frame=1001,
        fps=23.976,
        ev=9.5,
        attributes={"adop:job": "show_seq_shot_adop_v003"},
    )
    a = read_exr(path).attributes
    assert np.allclose(a["chromaticities"], REC709_CHROMATICITIES, atol=1e-7)
    assert a["oiio:ColorSpace"] == "lin_rec709_scene"
    assert a["adop:frame"] == 1001 and a["adop:ev"] == pytest.approx(9.5)
    assert tuple(a["FramesPerSecond"]) == (24000, 1001)
    assert a["adop:job"] == "show_seq_shot_adop_v003"
    assert a["Software"].startswith("adop ")
    assert np.allclose(a["adop:worldToCameraCV"], w2c, atol=1e-6)
    assert np.allclose(a["adop:intrinsics"], k)
    # OpenEXR semantics: row vector times matrix; camera space x right, y up, z forward
    point = np.array([0.3, 0.2, 0.9, 1.0])
    cam_cv = w2c @ point
    cam_exr = point @ a["worldToCamera"]
    assert np.allclose(cam_exr[:3], cam_cv[:3] * [1, -1, 1], atol=1e-5)
    ndc = point @ a["worldToNDC"]
    u, v = k[0] * cam_cv[0] / cam_cv[2] + k[2], k[1] * cam_cv[1] / cam_cv[2] + k[3]
    assert np.allclose(ndc[:2] / ndc[3], [u / 64, v / 48], atol=1e-5)


def test_ndc_corners() -> None:
    """The principal point maps to NDC (cx/W, cy/H); the top-left pixel corner to (0, 0)."""
    w2c, k = np.eye(4), np.array([50.0, 50.0, 32.0, 24.0])
    _, w2ndc = exr_camera_matrices(w2c, k, 64, 48)
    for point, want in (([0, 0, 2.0, 1], [0.5, 0.5]), ([-32 / 50 * 2, -24 / 50 * 2, 2.0, 1], [0, 0])):
        p = np.array(point) @ w2ndc
        assert np.allclose(p[:2] / p[3], want)


def test_rgba_and_bad_shapes(tmp_path) -> None:
    back = read_exr(write_exr(tmp_path / "a.1001.exr", _hdr(c=4)))
    assert back.pixels.shape[2] == 4
    with pytest.raises(ShapeError, match="H×W×3"):
        write_exr(tmp_path / "b.1001.exr", np.zeros((4, 4)))
    assert not (tmp_path / "b.1001.exr").exists()


def test_clipping_beyond_half_range(tmp_path) -> None:
    img = _hdr()
    img[0, 0, 0] = 1e6
    back = read_exr(write_exr(tmp_path / "c.1001.exr", img)).pixels
    assert back[0, 0, 0] == 65504.0
