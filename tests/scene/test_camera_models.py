"""Camera models: unified form, projection and its inverse, validation."""

from __future__ import annotations

import numpy as np
import pytest

from adop.errors import InputError
from adop.scene import SUPPORTED_MODELS, Camera
from scenes import make_random_scene


def test_every_supported_model_maps_to_unified_form() -> None:
    scene = make_random_scene()
    assert {c.model for c in scene.cameras} == set(SUPPORTED_MODELS)
    for camera in scene.cameras:
        assert camera.intrinsics.shape == (4,)
        assert camera.distortion.shape == (8,)


@pytest.mark.parametrize("camera_index", range(5))
def test_unproject_inverts_project(camera_index: int) -> None:
    camera = make_random_scene().cameras[camera_index]
    rng = np.random.default_rng(1)
    uv = rng.uniform([0, 0], [camera.width, camera.height], size=(200, 2))
    xy = camera.unproject(uv)
    back, valid = camera.project(np.concatenate([xy, np.ones((len(xy), 1))], axis=1))
    assert valid.all()
    np.testing.assert_allclose(back, uv, atol=1e-6)


def test_pinhole_projection_known_answer() -> None:
    camera = Camera("PINHOLE", 100, 80, (50.0, 40.0, 50.0, 40.0))
    uv, valid = camera.project(np.array([[1.0, -1.0, 2.0], [0.0, 0.0, -1.0]]))
    np.testing.assert_allclose(uv[0], [75.0, 20.0])
    assert valid.tolist() == [True, False]


def test_from_unified_picks_the_simplest_exact_model() -> None:
    scene = make_random_scene()
    for camera in scene.cameras:
        rebuilt = Camera.from_unified(camera.width, camera.height, camera.intrinsics, camera.distortion)
        np.testing.assert_array_equal(rebuilt.intrinsics, camera.intrinsics)
        np.testing.assert_array_equal(rebuilt.distortion, camera.distortion)
        assert len(rebuilt.params) <= len(camera.params)


def test_unsupported_model_is_a_clear_error() -> None:
    with pytest.raises(InputError, match="OPENCV_FISHEYE.*not supported"):
        Camera("OPENCV_FISHEYE", 10, 10, (1.0, 1.0, 5.0, 5.0, 0.0, 0.0, 0.0, 0.0))
    with pytest.raises(InputError, match="takes 4 parameters"):
        Camera("PINHOLE", 10, 10, (1.0, 1.0, 5.0))


def test_scaled_camera_projects_scaled_pixels() -> None:
    camera = make_random_scene().cameras[3]
    half = camera.scaled(0.5)
    point = np.array([[0.1, -0.2, 1.5]])
    np.testing.assert_allclose(half.project(point)[0], camera.project(point)[0] * 0.5)
