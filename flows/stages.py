"""How a pipeline stage runs as a Prefect task over the artifact cache.

Each stage task takes the artifact key (computed by the flow from the content of the stage's inputs, its parameters
and its version) and returns a small ``ArtifactRef`` dict; Prefect caches that JSON record under the same key, so a
rerun shows the stage as ``Cached`` without running it. Two guards cover Prefect's known pitfalls (shared
prefect-notes §2.4): a cached reference whose artifact was deleted or damaged is detected and the stage is rerun with
``refresh_cache``; and even when Prefect's record is gone, the workspace cache still finds a finished artifact.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from collections.abc import Callable

from prefect import Task, get_run_logger
from prefect.context import TaskRunContext
from prefect.states import Failed, State

from adop.cache import ArtifactRef, Workspace, compute_key
from adop.errors import AdopError, StageError


def stage_cache_key(context: TaskRunContext, parameters: Mapping[str, Any]) -> str:
    """Prefect cache key: the task name plus the artifact key the flow computed."""
    return f"adop-{context.task.name}-{parameters['key']}"


STAGE_TASK_OPTIONS: dict[str, Any] = {
    "cache_key_fn": stage_cache_key,
    "persist_result": True,
    "result_serializer": "json",
}


def run_stage(
    task: Task,
    workspace: Workspace,
    *,
    stage: str,
    version: str,
    inputs: Mapping[str, Path | ArtifactRef | str],
    params: Mapping[str, Any],
    **task_kwargs: Any,
) -> tuple[ArtifactRef, str]:
    """Run one stage task through both caches; return its artifact and the final state name (e.g. ``Cached``)."""
    logger = get_run_logger()
    key, fingerprints = compute_key(stage, version, inputs, params)
    bound = task.with_options(result_storage=workspace.root / "prefect-results")
    arguments = dict(key=key, fingerprints=fingerprints, workspace=str(workspace.root), params=dict(params))
    arguments.update(task_kwargs)
    state = bound(**arguments, return_state=True)
    if state.is_failed():
        raise StageError(state.message or f"stage {stage} failed")
    ref = ArtifactRef.from_dict(state.result())
    if not workspace.check(ref):
        logger.warning("stage %s: cached result points at a missing or damaged artifact; rebuilding", stage)
        state = bound.with_options(refresh_cache=True)(**arguments, return_state=True)
        ref = ArtifactRef.from_dict(state.result())
    logger.info("stage %s: %s -> %s", stage, state.name, ref.path)
    return ref, state.name


def build_artifact(
    stage: str,
    version: str,
    key: str,
    fingerprints: Mapping[str, str],
    workspace: str,
    params: Mapping[str, Any],
    build: Callable[[Path], object],
) -> dict[str, str] | State:
    """The body of every stage task: reuse or build the artifact; a user-facing error becomes a one-line Failed state.

    Errors adop raises on purpose (bad input, SfM that cannot register) carry an actionable message and no
    traceback is useful to the user; anything else propagates with its traceback (a bug).
    """
    try:
        ref, built = Workspace(Path(workspace)).get_or_build_keyed(
            stage, version, key, fingerprints, params, lambda out: build(out) and None
        )
    except AdopError as error:
        return Failed(message=str(error))
    get_run_logger().info("%s: %s artifact %s", stage, "built" if built else "reused", ref.key)
    return ref.to_dict()
