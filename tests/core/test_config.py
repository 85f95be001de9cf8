"""The one config mechanism (adop.config): every config validates itself and round-trips through JSON exactly."""

from __future__ import annotations

import dataclasses
import importlib
import pkgutil
import typing

import pytest

import adop
from adop.cache import compute_key
from adop.config import Config
from adop.errors import InputError
from adop.reconstruct import SfmConfig


def _all_configs() -> list[type[Config]]:
    for info in pkgutil.walk_packages(adop.__path__, "adop."):
        if not info.name.startswith("adop.flows") and info.name != "adop.__main__":
            importlib.import_module(info.name)
    found, todo = [], list(Config.__subclasses__())
    while todo:
        cls = todo.pop()
        found.append(cls)
        todo += cls.__subclasses__()
    return sorted(found, key=lambda c: c.__name__)


CONFIGS = _all_configs()


def test_every_config_in_the_package_uses_the_mechanism() -> None:
    names = {cls.__name__ for cls in CONFIGS}
    expected = {"IngestConfig", "SfmConfig", "CleanupConfig", "RasterConfig", "RendererConfig", "TonemapperConfig",
                "LossConfig", "OptimConfig", "ScheduleConfig", "SamplerConfig", "TrainConfig", "RenderConfig",
                "FlyThroughConfig", "PipelineOptions", "SynthPreset", "SynthLayout"}
    assert expected <= names, sorted(expected - names)
    for cls in CONFIGS:
        assert dataclasses.is_dataclass(cls) and cls.__dataclass_params__.frozen, cls  # type: ignore[attr-defined]


@pytest.mark.parametrize("cls", [c for c in CONFIGS if c.__name__ != "SynthPreset"], ids=lambda c: c.__name__)
def test_defaults_round_trip_exactly(cls: type[Config]) -> None:
    config = cls()
    assert cls.from_dict(config.to_dict()) == config
    assert cls.from_json(config.to_json()) == config
    assert cls.from_json(config.to_json()).config_hash() == config.config_hash()


@pytest.mark.parametrize("cls", [c for c in CONFIGS if c.__name__ != "SynthPreset"], ids=lambda c: c.__name__)
def test_unknown_fields_and_bad_choices_are_refused(cls: type[Config]) -> None:
    with pytest.raises(InputError, match="unknown field"):
        cls.from_dict({**cls().to_dict(), "no_such_field": 1})
    hints = typing.get_type_hints(cls)
    for field in dataclasses.fields(cls):
        if typing.get_origin(hints[field.name]) is typing.Literal:
            with pytest.raises(InputError, match=field.name):
                cls(**{field.name: "not-a-choice"})  # type: ignore[arg-type]


def test_a_mapper_typo_is_an_error_not_another_mapper() -> None:
    with pytest.raises(InputError, match="mapper must be one of 'auto', 'global', 'incremental'"):
        SfmConfig(mapper="typo")  # type: ignore[arg-type]
    with pytest.raises(InputError, match="max_image_size"):
        SfmConfig(max_image_size=10)
    with pytest.raises(InputError, match="expected int"):
        SfmConfig.from_dict({"max_image_size": "big"})


def test_nested_options_come_from_json_with_the_library_defaults() -> None:
    from adop.pipeline import PipelineOptions

    options = PipelineOptions.from_dict({"sfm": {"mapper": "incremental"}, "render": {"ev": 11.5}})
    assert options.sfm == SfmConfig(mapper="incremental") and options.render.ev == 11.5
    assert options.cleanup == PipelineOptions().cleanup
    with pytest.raises(InputError, match="preset"):
        PipelineOptions(train_preset="fastest")
    with pytest.raises(InputError, match="PipelineOptions.sfm"):
        PipelineOptions.from_dict({"sfm": {"mapper": "typo"}})


def test_cache_keys_carry_the_package_version(monkeypatch: pytest.MonkeyPatch) -> None:
    params = SfmConfig().to_dict()
    key = compute_key("sfm", "sfm-1", {}, params)[0]
    assert compute_key("sfm", "sfm-1", {}, SfmConfig(seed=1).to_dict())[0] != key
    monkeypatch.setattr("adop.cache.__version__", "999.0")
    assert compute_key("sfm", "sfm-1", {}, params)[0] != key
