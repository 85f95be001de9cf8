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


@pytest.mark.parametrize("where", ["same", "inside", "around"])
def test_an_output_overlapping_the_capture_is_refused_and_nothing_is_touched(tmp_path: Path, where: str) -> None:
    capture = write_capture(tmp_path / "shoot", count=3)
    (capture / "notes.txt").write_text("keep me")
    before = sorted((p.name, p.stat().st_size) for p in capture.iterdir())
    out = {"same": capture, "inside": capture / "scene", "around": tmp_path}[where]
    relation = {"same": "is", "inside": "lies inside", "around": "contains"}[where]
    _fails_cleanly(["reconstruct", str(capture), "--out", str(out), "--overwrite"], f"{relation} the capture folder")
    _fails_cleanly(["run", str(capture), "--workspace", str(out)], f"{relation} the capture folder")
    assert sorted((p.name, p.stat().st_size) for p in capture.iterdir()) == before


def test_a_render_or_run_folder_inside_its_input_is_refused(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    _fails_cleanly(["render", str(tmp_path / "run"), "--out", str(tmp_path / "run" / "frames")],
                   "lies inside the run folder")
    (tmp_path / "scene").mkdir()
    _fails_cleanly(["train", str(tmp_path / "scene"), "--out", str(tmp_path / "scene" / "run")],
                   "lies inside the scene folder")


def test_error_text_in_brackets_survives(tmp_path: Path) -> None:
    (tmp_path / "run").mkdir()
    _fails_cleanly(["render", str(tmp_path / "run"), "--out", str(tmp_path / "out"), "--path", "[nan, 0, 4].json"],
                   "[nan, 0, 4].json does not exist")


@pytest.mark.parametrize(("args", "message"), [
    (["--ev", "nan"], "must be a finite EV100"),
    (["--min-images", "1"], "min_images must be >= 3"),
    (["--max-steps", "0"], "max_steps must be at least 1"),
    (["--fps", "0"], "seconds and fps must be positive"),
])
def test_run_options_outside_their_meaning_fail_before_anything_runs(tmp_path: Path, args: list[str],
                                                                     message: str) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), *args], message)
    assert not (tmp_path / "ws" / "artifacts").exists()


def test_a_malformed_path_file_is_refused_before_the_first_stage(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    (tmp_path / "path.json").write_text("{not json")
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), "--path-file",
                    str(tmp_path / "path.json")], "not valid JSON")


def test_train_with_zero_steps_is_refused(tmp_path: Path) -> None:
    (tmp_path / "scene").mkdir()
    _fails_cleanly(["train", str(tmp_path / "scene"), "--out", str(tmp_path / "run"), "--max-steps", "0"],
                   "must be >= 1")


def test_a_workspace_under_missing_folders_is_refused(tmp_path: Path) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "a" / "b" / "c" / "ws")],
                   f"is inside {tmp_path / 'a'}, which does not exist")
    assert not (tmp_path / "a").exists()


def test_a_scene_file_with_wrong_types_is_one_sentence(tmp_path: Path) -> None:
    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "scene.json").write_text('{"format": "adop-scene", "version": 1, "cameras": 5, "frames": [], '
                                      '"points": {"file": "points.ply", "count": 0}}')
    _fails_cleanly(["train", str(scene), "--out", str(tmp_path / "run")], "holds a value of the wrong kind")


def test_an_empty_colmap_file_is_named(tmp_path: Path) -> None:
    model = tmp_path / "sparse"
    model.mkdir()
    for name in ("cameras", "images", "points3D"):
        (model / f"{name}.bin").write_bytes(b"")
    _fails_cleanly(["scene", "import", str(model), "--out", str(tmp_path / "s")], "cameras.bin is empty (0 bytes)")


def test_densify_needs_an_sfm_model(tmp_path: Path) -> None:
    (tmp_path / "scene").mkdir()
    (tmp_path / "scene" / "scene.json").write_text("{}")
    _fails_cleanly(["densify", str(tmp_path / "scene"), "--out", str(tmp_path / "dense")],
                   "dense stereo needs the SfM model and its tracks")
    _fails_cleanly(["densify", str(tmp_path / "scene"), "--out", str(tmp_path / "dense"), "--dense", "off"],
                   "--dense off would only copy the scene")
    assert not (tmp_path / "dense").exists()


@pytest.mark.parametrize("text", ["1920", "1920x", "x1080", "axb", "8x8", "1920x1080x3"])
def test_bad_resolution(tmp_path: Path, text: str) -> None:
    write_capture(tmp_path / "cap", count=3)
    _fails_cleanly(["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), "--resolution", text],
                   "resolution")
    assert not (tmp_path / "ws").exists()


@pytest.mark.parametrize("option", [["--dense", "typo"], ["--mapper", "typo"], ["--stop-after", "typo"],
                                    ["--preset", "typo"], ["--max-steps", "0"]])
def test_a_bad_option_writes_nothing(tmp_path: Path, option: list[str]) -> None:
    write_capture(tmp_path / "cap", count=3)
    result = runner.invoke(app, ["run", str(tmp_path / "cap"), "--workspace", str(tmp_path / "ws"), *option])
    assert result.exit_code == 2 and "Traceback" not in result.output, result.output
    assert not (tmp_path / "ws").exists(), "the workspace is created only once every option has been accepted"
