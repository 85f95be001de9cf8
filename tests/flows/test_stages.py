"""The stage tasks called directly (``Stage.task.fn``), and the flow in-process under ``prefect_test_harness``."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
from prefect.states import State

from adop.cache import ArtifactRef, Workspace
from adop.errors import InputError, StageError
from adop.flows.capture_to_deliverable import capture_to_deliverable, ingest_capture, structure_from_motion
from adop.flows.stage import Budget, Stage, stage
from adop.ingest import IngestConfig
from adop.pipeline import PipelineOptions
from adop.reconstruct import SfmConfig
from imaging import write_capture, write_photo


def test_ingest_task_builds_once_then_reuses(tmp_path: Path) -> None:
    photos = write_capture(tmp_path / "photos", count=3)
    ws = tmp_path / "ws"
    first = ingest_capture.task.fn(workspace=str(ws), images=photos, config=IngestConfig())
    assert isinstance(first, dict) and first["stage"] == "ingest"
    folder = Path(first["path"])
    assert folder.parent == ws.resolve() / "artifacts" / "ingest"
    assert sorted(p.name for p in (folder / "images").iterdir()) == ["photo_00.jpg", "photo_01.jpg", "photo_02.jpg"]
    manifest = (folder / "manifest.json").read_text()
    again = ingest_capture.task.fn(workspace=str(ws), images=photos, config=IngestConfig())
    assert again == first and (folder / "manifest.json").read_text() == manifest  # reused, not rebuilt


def test_stage_key_follows_content_and_parameters_not_location(tmp_path: Path) -> None:
    photos = write_capture(tmp_path / "a", count=3)
    copy = Path(shutil.copytree(photos, tmp_path / "b"))
    key = ingest_capture.key({"images": photos, "config": IngestConfig()})[0]
    assert ingest_capture.key({"images": copy, "config": IngestConfig()})[0] == key
    assert ingest_capture.key({"images": photos, "config": IngestConfig(min_images=4)})[0] != key
    write_photo(copy / "photo_01.jpg", seed=99)  # same name, other bytes
    assert ingest_capture.key({"images": copy, "config": IngestConfig()})[0] != key


def test_upstream_artifacts_are_inputs_by_digest(tmp_path: Path) -> None:
    ref = ArtifactRef(stage="ingest", key="k", path=str(tmp_path / "anywhere"), digest="d1")
    moved = ArtifactRef(stage="ingest", key="k", path=str(tmp_path / "elsewhere"), digest="d1")
    other = ArtifactRef(stage="ingest", key="k", path=str(tmp_path / "anywhere"), digest="d2")
    key = structure_from_motion.key({"capture": ref, "config": SfmConfig()})[0]
    assert structure_from_motion.key({"capture": moved, "config": SfmConfig()})[0] == key
    assert structure_from_motion.key({"capture": other, "config": SfmConfig()})[0] != key
    assert structure_from_motion.key({"capture": ref, "config": SfmConfig(mapper="incremental")})[0] != key


def test_a_user_error_in_a_stage_is_one_failed_line(tmp_path: Path) -> None:
    photos = write_capture(tmp_path / "photos", count=2)
    state = ingest_capture.task.fn(workspace=str(tmp_path / "ws"), images=photos, config=IngestConfig())
    assert isinstance(state, State) and state.is_failed()
    assert "only 2 usable photo(s)" in state.message and "\n" not in state.message
    assert not list((tmp_path / "ws" / "artifacts").glob("ingest/*"))  # nothing that looks finished


def test_stage_arguments_must_be_keyword_only() -> None:
    def positional(build, capture, config) -> None:  # noqa: ANN001
        pass

    with pytest.raises(TypeError, match="keyword-only"):
        stage("broken", version=1)(positional)
    assert isinstance(ingest_capture, Stage) and ingest_capture.version == "ingest-1"


@pytest.fixture(scope="module")
def harness():
    """One Prefect test server (SQLite, temporary) for the in-process flow runs of this module."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=180):
        yield


def _ingest_only(capture: Path, workspace: Path, options: object) -> dict:
    state = capture_to_deliverable(str(capture), str(workspace), options, return_state=True)
    assert state.is_completed(), state.message
    return state.result()


@pytest.mark.flow
@pytest.mark.slow
def test_flow_reruns_cached_and_a_copied_workspace_stays_inside_itself(harness: None, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture" / "images", count=3).parent
    ws = tmp_path / "ws"
    options = {"stop_after": "ingest", "ingest": {"min_images": 3}}  # a deployment passes JSON like this
    first = _ingest_only(capture, ws, options)["stages"]["ingest"]
    assert first["state"] == "Completed"
    second = _ingest_only(capture, ws, PipelineOptions(stop_after="ingest"))["stages"]["ingest"]
    assert second["state"] == "Cached" and second["artifact"] == first["artifact"]

    copy = Path(shutil.copytree(ws, tmp_path / "copy"))
    in_copy = _ingest_only(capture, copy, options)["stages"]["ingest"]
    assert in_copy["state"] == "Cached"
    assert Path(in_copy["artifact"]["path"]).is_relative_to(copy.resolve())  # never the original's folder

    damaged = Path(in_copy["artifact"]["path"]) / "capture.json"
    damaged.write_text("{}")
    repaired = _ingest_only(capture, copy, options)["stages"]["ingest"]
    assert Path(repaired["artifact"]["path"]).is_relative_to(copy.resolve())
    assert json.loads(damaged.read_text())["images"]  # rebuilt in the copy
    assert Workspace(ws).lookup("ingest", first["artifact"]["key"]) is not None  # the original is untouched


@pytest.mark.flow
@pytest.mark.slow
def test_flow_refuses_unknown_options(harness: None, tmp_path: Path) -> None:
    capture = write_capture(tmp_path / "capture", count=3)
    state = capture_to_deliverable(str(capture), str(tmp_path / "ws"), {"sfm": {"mapper": "typo"}},
                                   return_state=True)
    assert state.is_failed()


def test_a_missing_input_file_is_one_failed_line_not_a_traceback(tmp_path: Path) -> None:
    from adop.flows.capture_to_deliverable import plan_fly_through
    from adop.paths import FlyThroughConfig

    model = ArtifactRef(stage="train", key="k", path=str(tmp_path / "model"), digest="d")
    state = plan_fly_through.task.fn(workspace=str(tmp_path / "ws"), model=model, config=FlyThroughConfig(),
                                     path_file=tmp_path / "no_such_path.json")
    assert isinstance(state, State) and state.is_failed() and "does not exist" in state.message


def test_sfm_messages_name_the_users_folder_not_the_working_copy(tmp_path: Path) -> None:
    photos = tmp_path / "shoot"
    write_photo(photos / "a.jpg", seed=1)
    for name in ("b.jpg", "c.jpg"):
        shutil.copy(photos / "a.jpg", photos / name)  # byte-identical copies: one usable photo
    ws = tmp_path / "ws"
    capture = ArtifactRef.from_dict(ingest_capture.task.fn(workspace=str(ws), images=photos, config=IngestConfig()))
    state = structure_from_motion.task.fn(workspace=str(ws), capture=capture, config=SfmConfig(num_threads=1))
    assert isinstance(state, State) and state.is_failed()
    assert str(photos.resolve()) in state.message and "artifacts" not in state.message


ATTEMPTS: list[int] = []


@stage("flaky", version=1)
def flaky_stage(build, *, label: str) -> None:  # noqa: ANN001
    """Raises on its first build (a lost mount, a crashed encoder), succeeds on the next."""
    ATTEMPTS.append(1)
    if len(ATTEMPTS) == 1:
        raise OSError("the network file system went away")
    (build.folder / "done.txt").write_text(label)


def _one_stage_flow(one: Stage):  # noqa: ANN202
    """A flow that runs ``one`` alone in the workspace it is given and returns the summary."""
    from prefect import flow

    from adop.flows.stage import Stages

    @flow
    def one_stage(workspace: str) -> dict:
        stages = Stages(Workspace(Path(workspace)))
        stages.run(one, label="x")
        return stages.summary()

    return one_stage


@pytest.mark.flow
@pytest.mark.slow
def test_a_stage_that_raised_is_retried_where_retries_are_on(harness: None, tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    one_stage = _one_stage_flow(flaky_stage)
    ATTEMPTS.clear()
    with pytest.raises(StageError, match="network file system"):  # off by default (adop run)
        one_stage(str(tmp_path / "ws0"))
    monkeypatch.setenv("ADOP_STAGE_RETRIES", "1")
    monkeypatch.setenv("ADOP_STAGE_RETRY_DELAY_S", "0")
    ATTEMPTS.clear()
    summary = one_stage(str(tmp_path / "ws1"))
    assert len(ATTEMPTS) == 2 and summary["stages"]["flaky"]["state"] == "Completed"
    assert (Path(summary["stages"]["flaky"]["artifact"]["path"]) / "done.txt").read_text() == "x"


@stage("stuck", version=1, budget=Budget(0.5))
def stuck_stage(build, *, label: str) -> None:  # noqa: ANN001
    """Waits far longer than its budget (a mount that never answers)."""
    for _ in range(200):
        time.sleep(0.05)
    (build.folder / "done.txt").write_text(label)


@pytest.mark.flow
@pytest.mark.slow
def test_a_stage_past_its_time_budget_is_stopped_with_a_sentence(harness: None, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    one_stage = _one_stage_flow(stuck_stage)
    started = time.monotonic()
    with pytest.raises(StageError, match=r"stage stuck ran past its time budget of 2 s .* ADOP_STAGE_TIMEOUT_SCALE"):
        monkeypatch.setenv("ADOP_STAGE_TIMEOUT_SCALE", "4")
        one_stage(str(tmp_path / "ws"))
    assert time.monotonic() - started < 8  # stopped after its budget, not after the 10 s it would have taken
    assert not any((tmp_path / "ws" / "artifacts").rglob("done.txt"))
    monkeypatch.setenv("ADOP_STAGE_TIMEOUT_SCALE", "0")  # off: the stage finishes
    summary = one_stage(str(tmp_path / "ws"))
    assert summary["stages"]["stuck"]["state"] == "Completed"


def test_the_farm_not_the_submission_chooses_the_render_cluster(monkeypatch: pytest.MonkeyPatch) -> None:
    from prefect.task_runners import ThreadPoolTaskRunner
    from prefect_dask import DaskTaskRunner

    from adop.flows.scale_out import farm_scale_out, task_runner
    from adop.pipeline import ScaleOutConfig

    monkeypatch.delenv("ADOP_DASK_ADDRESS", raising=False)
    assert farm_scale_out() == ScaleOutConfig()
    monkeypatch.setenv("ADOP_DASK_ADDRESS", "tcp://render-scheduler:8786")
    assert farm_scale_out() == ScaleOutConfig(runner="dask", dask_address="tcp://render-scheduler:8786")
    assert task_runner(ScaleOutConfig(runner="serial")) is None
    assert isinstance(task_runner(ScaleOutConfig()), ThreadPoolTaskRunner)
    remote = task_runner(farm_scale_out())
    assert isinstance(remote, DaskTaskRunner) and remote.address == "tcp://render-scheduler:8786"
    with pytest.raises(InputError, match="dask_address needs runner='dask'"):
        ScaleOutConfig(dask_address="tcp://elsewhere:8786")
