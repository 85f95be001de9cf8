"""Tests of adop.model.config and presets: JSON round trip, hashes, validation, the holdout split."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adop.errors import InputError
from adop.nn.losses import LossConfig
from adop.scene.photos import holdout_split
from adop.train import PRESETS, TrainConfig, preset
from adop.scene.photos import load_scene_data


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_preset_json_round_trip(name: str) -> None:
    config = preset(name)
    again = TrainConfig.from_json(config.to_json())
    assert again == config
    assert again.config_hash() == config.config_hash()
    assert isinstance(again.environment_size, tuple)


def test_round_trip_keeps_paths_and_nested_values() -> None:
    config = TrainConfig(loss=LossConfig(vgg_weights=Path("/weights/vgg19.pth")), environment_size=(64, 32))
    again = TrainConfig.from_dict(json.loads(config.to_json()))
    assert again.loss.vgg_weights == Path("/weights/vgg19.pth")
    assert again == config


def test_unknown_field_and_bad_literal_are_errors() -> None:
    data = TrainConfig().to_dict()
    with pytest.raises(InputError, match="unknown field"):
        TrainConfig.from_dict({**data, "learning_rate": 1.0})
    with pytest.raises(InputError, match="not one of"):
        TrainConfig.from_dict({**data, "camera_model": "magic"})
    with pytest.raises(InputError, match="expected int"):
        TrainConfig.from_dict({**data, "max_steps": "many"})


def test_compatibility_hash_ignores_run_length_only() -> None:
    base = preset("cpu-fast")
    assert base.replace(max_steps=7, checkpoint_every=3).compatibility_hash() == base.compatibility_hash()
    assert base.replace(max_steps=7).config_hash() != base.config_hash()
    assert base.replace(seed=1).compatibility_hash() != base.compatibility_hash()


def test_validation() -> None:
    with pytest.raises(InputError):
        TrainConfig(image_scale=0.0)
    with pytest.raises(InputError):
        preset("no-such-preset")


def test_holdout_split_every_eighth() -> None:
    held = holdout_split(20, 8)
    assert np.flatnonzero(held).tolist() == [0, 8, 16]
    assert np.flatnonzero(holdout_split(20, 8, 3)).tolist() == [3, 11, 19]
    assert not holdout_split(20, 0).any()
    with pytest.raises(InputError):
        holdout_split(3, 1)


def test_scene_data_split_and_photos(micro_scene: Path) -> None:
    data = load_scene_data(micro_scene, holdout_every=4)
    assert data.heldout_indices.tolist() == [0, 4, 8]
    assert len(data.train_indices) == 7
    assert data.photos is not None and data.photos[0].shape == (3, 48, 64)
    half = load_scene_data(micro_scene, image_scale=0.5, photos=True)
    assert half.photos is not None and half.photos[1].shape == (3, 24, 32)
    assert half.intrinsics[0, 0] == pytest.approx(data.intrinsics[0, 0] / 2)
