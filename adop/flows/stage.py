"""How a pipeline stage runs: one Prefect task over the workspace's artifact cache, named and versioned once.

A stage is written as a plain function over domain arguments that fills the folder it is given::

    @stage("sfm", version=1)
    def structure_from_motion(build: ArtifactBuild, *, capture: ArtifactRef, config: SfmConfig) -> None:
        run_sfm(capture.folder / "images", build.folder, config)

``@stage`` turns it into a ``Stage``: its ``task`` is the Prefect task (keyword arguments: ``workspace`` plus the
domain arguments; it returns the artifact reference as a JSON dict), and the flow runs it with ``Stages.run``. The
artifact key is computed from the arguments alone: ``ArtifactRef``s, lists of them, ``Path``s and ``bytes`` are
*inputs*, hashed by content; everything else (configs, numbers, strings) is a *parameter*, hashed as canonical JSON.
Prefect caches the reference under the same key (so a rerun shows the stage as ``Cached``), and the workspace cache
guarantees the artifact itself. Two guards cover Prefect's known pitfalls: a reference from Prefect's result cache is
always looked up again, by stage and key, in the workspace being run (so a moved or copied workspace never resolves
into another folder, and a deleted or damaged artifact is rebuilt with ``refresh_cache``); and a finished artifact is
found even when Prefect's record of it is gone.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx
from prefect import Task, get_client, get_run_logger, task
from prefect.concurrency.sync import concurrency
from prefect.context import TaskRunContext
from prefect.exceptions import MissingContextError, ObjectNotFound, PrefectHTTPStatusError
from prefect.states import Failed, State
from prefect.task_runners import TaskRunner
from prefect.utilities.timeout import timeout as prefect_timeout

from adop.cache import ArtifactRef, Workspace, compute_key
from adop.config import to_plain
from adop.errors import AdopError, StageError

RESULTS_DIR = "prefect-results"
"""Where in a workspace Prefect keeps its cached stage results (relative, so a copied workspace brings its own)."""
SCRATCH_DIR = "runs"
"""Where in a workspace a stage keeps resumable work (training checkpoints), one folder per artifact key."""
LIMITS_VARIABLE = "ADOP_RESOURCE_LIMITS"
"""``strict`` (set for every run on a studio server by its work pool): a stage that builds on a GPU or loads every
CPU core holds a slot of the ``gpu`` or ``cpu`` global concurrency limit while it builds, and a missing limit is an
error rather than no limit. Unset (``adop run`` on one machine): no limits."""
Resource = Literal["gpu", "cpu"]
SLOT_LEASE_S = 60.0
"""A held slot is renewed every 45 s and lapses 60 s after the last renewal: the slot of a run whose worker was
killed comes free about a minute later, for its re-queued run or another. A renewal that fails (the server restarting)
does not end the build: hours of training are worth more than a briefly overbooked GPU."""
RETRIES_VARIABLE = "ADOP_STAGE_RETRIES"
"""How often a stage that raised (not one that refused its input: that is a one-line Failed state, never retried) is
tried again in the same run: ``2`` on a studio server (the work pool sets it), ``0`` for ``adop run``. A retry builds
the artifact from scratch in a new temporary folder; training resumes from its last checkpoint."""
RETRY_DELAY_VARIABLE = "ADOP_STAGE_RETRY_DELAY_S"
"""Seconds before the first retry (default 30); each further retry waits four times longer."""
TIMEOUT_SCALE_VARIABLE = "ADOP_STAGE_TIMEOUT_SCALE"
"""Multiplies every stage's time budget (``Budget``): ``2`` on a machine half as fast as the budgets assume, ``0``
turns timeouts off. Default 1."""


@dataclass(frozen=True)
class Budget:
    """How long a stage may take before it counts as hung: ``base_s + per_unit_s × units(arguments)``.

    The units are the stage's work (photos, training steps, frames), read from its arguments, so a 200-photo capture
    gets ten times the SfM time of a 20-photo one. Budgets are about ten times what the stages were measured to take
    on a 2-core machine: they end a build that hangs (a stuck mount, an encoder waiting forever), not a slow one. A
    stage that runs out of time fails like one that raised, and is retried where retries are on. The time counts from
    when the stage holds its resource slot (waiting for a GPU is not hanging). The limit is enforced between Python
    instructions: a call stuck inside native code ends when it returns.
    """

    base_s: float
    per_unit_s: float = 0.0
    units: Callable[[Mapping[str, Any]], float] | None = None

    def seconds(self, arguments: Mapping[str, Any]) -> float | None:
        """The budget for a call with these domain arguments, scaled by ``ADOP_STAGE_TIMEOUT_SCALE`` (None: off)."""
        try:
            scale = float(os.environ.get(TIMEOUT_SCALE_VARIABLE, "1"))
        except ValueError:
            raise StageError(f"{TIMEOUT_SCALE_VARIABLE} must be a number") from None
        if scale <= 0:
            return None
        units = self.units(arguments) if self.units is not None else 0.0
        return scale * (self.base_s + self.per_unit_s * units)


def retry_options() -> dict[str, Any]:
    """Prefect task options for the retries configured in the environment (none by default)."""
    try:
        retries = max(0, int(os.environ.get(RETRIES_VARIABLE, "0")))
        delay = max(0.0, float(os.environ.get(RETRY_DELAY_VARIABLE, "30")))
    except ValueError as error:
        raise StageError(f"{RETRIES_VARIABLE} and {RETRY_DELAY_VARIABLE} must be numbers: {error}") from None
    if retries == 0:
        return {}
    return {"retries": retries, "retry_delay_seconds": [delay * 4**i for i in range(retries)]}


@contextlib.contextmanager
def resource_slot(stage: str, resource: Resource | None) -> Iterator[None]:
    """One slot of the ``resource`` limit where limits are on (``ADOP_RESOURCE_LIMITS=strict``), else nothing.

    A ``cpu`` slot is a share of the machine: its build runs torch on the cores divided by the limit's slots (one
    thread each on a two-core machine with two slots). Two builds that each take every core run several times slower
    than one after the other (measured: two dense stages at once took 100 s each with every core, 30 s each with one
    thread). Logs when the slot is held and released (the run log then shows who waited for whom)."""
    if resource is None or os.environ.get(LIMITS_VARIABLE, "") != "strict":
        yield
        return
    logger = stage_logger()
    logger.info("%s: waiting for a %s slot", stage, resource)
    with concurrency(resource, occupy=1, strict=True, lease_duration=SLOT_LEASE_S,
                     raise_on_lease_renewal_failure=False):
        threads = _threads_of_a_slot(resource) if resource == "cpu" else None
        share = f" ({threads} CPU thread{'s' if threads != 1 else ''})" if threads else ""
        logger.info("%s: holding a %s slot%s", stage, resource, share)
        try:
            with _torch_threads(threads):
                yield
        finally:
            logger.info("%s: releasing the %s slot", stage, resource)


def _threads_of_a_slot(limit: str) -> int | None:
    """The machine's cores divided by the slots of the ``limit`` (None where it cannot be read: the slot is held,
    only its share of the cores is unknown, and torch keeps its own choice)."""
    try:
        with get_client(sync_client=True) as client:
            slots = client.read_global_concurrency_limit_by_name(limit).limit
    except (ObjectNotFound, PrefectHTTPStatusError, httpx.HTTPError):
        return None
    return max(1, len(os.sched_getaffinity(0)) // max(1, slots))


@contextlib.contextmanager
def _torch_threads(threads: int | None) -> Iterator[None]:
    """torch's intra-op threads set to ``threads`` for the block (unchanged where None)."""
    if threads is None:
        yield
        return
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class StageTimedOut(TimeoutError):
    """A build that ran past its stage's time budget (``Budget``)."""


@contextlib.contextmanager
def time_budget(stage: str, seconds: float | None) -> Iterator[None]:
    """Stop the block with ``StageTimedOut`` after ``seconds`` (None: no limit)."""
    if seconds is None:
        yield
        return
    try:
        with prefect_timeout(seconds=seconds, timeout_exc_type=StageTimedOut):
            yield
    except StageTimedOut:
        raise StageTimedOut(f"stage {stage} ran past its time budget of {seconds:.0f} s and was stopped as hung; on a "
                            f"slow machine raise {TIMEOUT_SCALE_VARIABLE} (2 doubles every budget)") from None


def stage_logger() -> logging.Logger | logging.LoggerAdapter:
    """Prefect's run logger inside a flow or task run (so lines reach the run log), else this module's logger."""
    try:
        return get_run_logger()
    except MissingContextError:
        return logging.getLogger(__name__)


@dataclass(frozen=True)
class ArtifactBuild:
    """What a stage function is handed: the empty folder to fill, and where resumable work may live."""

    folder: Path
    """The artifact being built (a temporary folder, renamed into place when the function returns)."""
    key: str
    """The artifact key."""
    workspace: Path
    """The workspace root."""

    def scratch_dir(self) -> Path:
        """``WS/runs/<key>``: a folder that outlives a killed build (checkpoints), for a rerun to resume from."""
        return self.workspace / SCRATCH_DIR / self.key


def _is_input(value: Any) -> bool:
    if isinstance(value, (ArtifactRef, Path, bytes)):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, ArtifactRef) for v in value)


class Stage:
    """One pipeline stage: its name and version, the function that builds its artifact, and its Prefect task."""

    def __init__(self, build: Callable[..., None], *, name: str, version: int, chunked: bool = False,
                 resource: Resource | None = None, budget: Budget | None = None) -> None:
        self.name = name
        self.version = f"{name}-{version}"
        self.chunked = chunked
        self.resource = resource
        self.budget = budget
        self.build = build
        parameters = list(inspect.signature(build).parameters.values())[1:]
        if any(p.kind is not inspect.Parameter.KEYWORD_ONLY for p in parameters):
            raise TypeError(f"stage {name}: the arguments after the build folder must be keyword-only")

        def run(**arguments: Any) -> dict[str, str] | State:
            return self._build(Path(arguments.pop("workspace")), arguments)

        workspace = inspect.Parameter("workspace", inspect.Parameter.KEYWORD_ONLY, annotation=str)
        run.__signature__ = inspect.Signature([workspace, *parameters])  # type: ignore[attr-defined]
        run.__name__ = run.__qualname__ = build.__name__
        run.__doc__ = build.__doc__
        run.__module__ = build.__module__
        self.task: Task = task(
            run, name=name, description=(build.__doc__ or "").strip().split("\n")[0],
            cache_key_fn=self._prefect_cache_key, persist_result=True, result_serializer="json",
        )

    def key(self, arguments: Mapping[str, Any]) -> tuple[str, dict[str, str], dict[str, Any]]:
        """``(key, input fingerprints, parameters)`` of a call with these domain arguments."""
        inputs = {name: value for name, value in arguments.items() if _is_input(value)}
        params = {name: to_plain(value) for name, value in arguments.items() if name not in inputs}
        key, fingerprints = compute_key(self.name, self.version, inputs, params)
        return key, fingerprints, params

    def _prefect_cache_key(self, context: TaskRunContext, parameters: Mapping[str, Any]) -> str | None:
        domain = {name: value for name, value in parameters.items() if name != "workspace"}
        try:
            return f"adop-{self.name}-{self.key(domain)[0]}"
        except AdopError:
            return None  # no cache key: the task body runs and reports the same error as one Failed line

    def _build(self, workspace: Path, arguments: dict[str, Any]) -> dict[str, str] | State:
        """The task body: reuse or build the artifact; a user-facing error becomes a one-line Failed state.

        Errors adop raises on purpose (bad input, SfM that cannot register) carry an actionable message and no
        traceback is useful to the user; anything else propagates with its traceback (a bug).
        """
        try:
            key, fingerprints, params = self.key(arguments)
            ws = Workspace(workspace)

            budget_s = None if self.budget is None else self.budget.seconds(arguments)

            def build(out: Path) -> None:
                with resource_slot(self.name, self.resource):  # only a build holds a slot; a reused artifact costs nothing
                    with time_budget(self.name, budget_s):  # counted from when the slot is held, not while waiting
                        self.build(ArtifactBuild(folder=out, key=key, workspace=ws.root), **arguments)

            ref, built = ws.get_or_build_keyed(self.name, self.version, key, fingerprints, params, build)
        except AdopError as error:
            return Failed(message=str(error))
        stage_logger().info("%s: %s artifact %s", self.name, "built" if built else "reused", ref.key)
        return ref.to_dict()


def stage(name: str, *, version: int, chunked: bool = False, resource: Resource | None = None,
          budget: Budget | None = None) -> Callable[[Callable[..., None]], Stage]:
    """Declare a stage function (see the module docstring); bump ``version`` when its output changes meaning.

    ``chunked``: the flow runs the stage once per chunk of work (render frames); the summary lists every chunk.
    ``resource``: the global concurrency limit (``gpu`` or ``cpu``) whose slot the build holds on a studio server.
    ``budget``: the time after which the build counts as hung and is stopped (``Budget``; none: no limit).
    """

    def decorate(build: Callable[..., None]) -> Stage:
        return Stage(build, name=name, version=version, chunked=chunked, resource=resource, budget=budget)

    return decorate


@dataclass
class StageRecord:
    """How one stage ran in a flow: its Prefect state names and the artifacts it returned, in call order."""

    states: list[str] = field(default_factory=list)
    artifacts: list[ArtifactRef] = field(default_factory=list)
    chunked: bool = False

    def to_dict(self) -> dict[str, Any]:
        record: dict[str, Any] = {"state": ",".join(sorted(set(self.states))), "artifact": self.artifacts[-1].to_dict()}
        if self.chunked:
            record["chunks"] = [ref.to_dict() for ref in self.artifacts]
        return record


class Stages:
    """Runs stages over one workspace and records how each ran (for the flow's summary)."""

    def __init__(self, workspace: Workspace) -> None:
        self.workspace = workspace
        self.records: dict[str, StageRecord] = {}

    def run(self, stage: Stage, **arguments: Any) -> ArtifactRef:
        """Run ``stage`` with these domain arguments; return its artifact in this workspace.

        Raises:
            StageError: the stage failed (its message is the one-line reason).
        """
        bound = self._bound(stage)
        return self._finish(stage, bound, arguments, bound(**self._call(arguments), return_state=True))

    def run_each(self, stage: Stage, calls: list[dict[str, Any]], runner: TaskRunner | None) -> list[ArtifactRef]:
        """Run ``stage`` once per argument set in ``calls``, all at once through ``runner`` (a started Prefect task
        runner: threads, a Dask cluster) or one after the other without one; the artifacts in call order.

        Raises:
            StageError: a call failed (the first failure's reason; the other calls still ran to their end).
        """
        if runner is None:
            return [self.run(stage, **arguments) for arguments in calls]
        bound = self._bound(stage)
        futures = [runner.submit(bound, parameters=self._call(arguments)) for arguments in calls]
        states = []
        for future in futures:
            future.wait()
            states.append(future.state)
        return [self._finish(stage, bound, arguments, state) for arguments, state in zip(calls, states)]

    def _bound(self, stage: Stage) -> Task:
        return stage.task.with_options(result_storage=self.workspace.root / RESULTS_DIR, **retry_options())

    def _call(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        return dict(arguments, workspace=str(self.workspace.root))

    def _finish(self, stage: Stage, bound: Task, arguments: Mapping[str, Any], state: State) -> ArtifactRef:
        """The artifact of a finished call (rebuilt in place if Prefect's cached result points at a missing or
        damaged one), recorded for the summary."""
        ref = self._resolve(stage, state)
        if ref is None:
            stage_logger().warning("stage %s: the cached result points at a missing or damaged artifact in this "
                                   "workspace; rebuilding", stage.name)
            state = bound.with_options(refresh_cache=True)(**self._call(arguments), return_state=True)
            ref = self._resolve(stage, state)
            if ref is None:  # pragma: no cover - a build that returns is always published and valid
                raise StageError(f"stage {stage.name} finished without a valid artifact")
        stage_logger().info("stage %s: %s -> %s", stage.name, state.name, ref.path)
        record = self.records.setdefault(stage.name, StageRecord(chunked=stage.chunked))
        record.states.append(state.name)
        record.artifacts.append(ref)
        return ref

    def _resolve(self, stage: Stage, state: State) -> ArtifactRef | None:
        if state.is_failed():
            raise StageError(state.message or f"stage {stage.name} failed")
        cached = ArtifactRef.from_dict(state.result())
        # A task that ran has just validated (or built) the artifact; only a Prefect cache hit needs the checksums.
        found = self.workspace.lookup(stage.name, cached.key, checksums=state.name == "Cached")
        return found if found is not None and found.digest == cached.digest else None

    def summary(self) -> dict[str, Any]:
        """``{"workspace": root, "stages": {name: {"state", "artifact"[, "chunks"]}}}`` in the order stages ran."""
        return {"workspace": str(self.workspace.root),
                "stages": {name: record.to_dict() for name, record in self.records.items()}}
