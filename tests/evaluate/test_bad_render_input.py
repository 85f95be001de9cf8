"""Rendering refuses what would give garbage that looks finished: flat exposures, mixed stale frames, damaged models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from adop.cli import app
from adop.errors import InputError
from adop.model import load_trained_model
from adop.paths import FlyThroughConfig
from adop.render import RenderConfig, camera_path_for, render_path

runner = CliRunner()


def _short_path(model):  # noqa: ANN001, ANN202
    return camera_path_for(model, FlyThroughConfig(seconds=2 / 24, fps=24))


def test_an_exposure_far_from_the_photos_is_refused(eval_run: Path, tmp_path: Path) -> None:
    model = load_trained_model(eval_run)
    with pytest.raises(InputError, match="every frame would be flat black or white"):
        render_path(model, _short_path(model), tmp_path / "out", RenderConfig(ev=model.scene_ev + 1e9))
    with pytest.raises(InputError, match="must be a finite EV100"):
        RenderConfig(ev=float("nan"))
    assert not (tmp_path / "out").exists()  # refused before anything was written


def test_a_rerun_resumes_but_other_settings_never_mix_into_old_frames(eval_run: Path, tmp_path: Path) -> None:
    model = load_trained_model(eval_run)
    path, out = _short_path(model), tmp_path / "frames"
    first = render_path(model, path, out, RenderConfig(ev=model.scene_ev))
    again = render_path(model, path, out, RenderConfig(ev=model.scene_ev))  # same settings: resumes, keeps frames
    assert again.png == first.png
    with pytest.raises(InputError, match="already holds frames rendered with other settings"):
        render_path(model, path, out, RenderConfig(ev=model.scene_ev + 1.0))


def test_a_damaged_or_truncated_model_is_named_not_loaded(eval_run: Path, tmp_path: Path) -> None:
    copy = Path(shutil.copytree(eval_run, tmp_path / "run"))
    weights = copy / "model" / "model.pt"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2: len(data) // 2 + 64] = bytes(64)  # 64 bytes overwritten: still loads without the checksum
    weights.write_bytes(bytes(data))
    with pytest.raises(InputError, match="is damaged: its bytes do not match the checksum"):
        load_trained_model(copy)
    (copy / "model" / "model.json").unlink()  # no checksum to compare with: the reader itself must fail cleanly
    weights.write_bytes(bytes(data[: len(data) // 3]))
    with pytest.raises(InputError, match="is damaged and cannot be read"):
        load_trained_model(copy)


@pytest.mark.parametrize(("args", "message"), [
    (["--width", "0"], "width and height must be between 16 and 16384 px"),
    (["--width", "30000"], "width and height must be between 16 and 16384 px"),
    (["--ev", "inf"], "must be a finite EV100"),
])
def test_render_options_outside_their_meaning(eval_run: Path, tmp_path: Path, args: list[str], message: str) -> None:
    result = runner.invoke(app, ["render", str(eval_run), "--out", str(tmp_path / "r"), *args])
    assert result.exit_code == 2 and "Traceback" not in result.output
    assert message in " ".join(result.output.split())
