"""User mistakes on the command line: one sentence on stderr, exit status 2, no traceback."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from adop.cli import app
from imaging import write_capture

runner = CliRunner()


def _fails_cleanly(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert message in " ".join(result.output.split())


def test_missing_capture_folder(tmp_path: Path) -> None:
    _fails_cleanly(["run", str(tmp_path / "nope"), "--workspace", str(tmp_path / "ws")], "does not exist")


def test_folder_without_photos(tmp_path: Path) -> None:
    (tmp_path / "cap").mkdir()
    (tmp_path / "cap" / "readme.txt").write_text("hi")
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws")], "holds no JPEG/PNG/TIFF")


def test_unwritable_workspace(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    (tmp_path / "blocker").write_text("a file where the workspace should go")
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "blocker" / "ws")], "not writable")


def test_scene_import_of_missing_adop_folder(tmp_path: Path) -> None:
    _fails_cleanly(
        ["scene", "import", str(tmp_path / "none"), "--format", "adop", "--out", str(tmp_path / "s")], "does not exist"
    )


@pytest.mark.parametrize("command", [[], ["run"], ["synth"], ["reconstruct"], ["train"], ["eval"], ["render"], ["demo"], ["scene", "import"], ["scene", "export"]])
def test_help_explains_each_command(command: list[str]) -> None:
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0 and "Usage" in result.output


def test_train_on_a_missing_scene(tmp_path: Path) -> None:
    _fails_cleanly(["train", str(tmp_path / "none"), "--out", str(tmp_path / "run")], "not an adop scene folder")


def test_render_without_a_trained_model(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    _fails_cleanly(["render", str(tmp_path / "run"), "--out", str(tmp_path / "r")], "holds no trained model")


def test_unknown_training_preset(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), "--preset", "fastest"],
                   "preset")


def test_reconstruct_with_a_mapper_typo(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["reconstruct", str(tmp_path / "cap"), "--out", str(tmp_path / "scene"), "--mapper", "typo"],
                   "SfmConfig.mapper must be one of 'auto', 'global', 'incremental'")
    assert not (tmp_path / "scene").exists()


def test_run_with_a_mapper_typo_fails_before_prefect_starts(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), "--mapper", "typo"],
                   "SfmConfig.mapper must be one of")
