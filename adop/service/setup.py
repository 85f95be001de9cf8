"""Setting up a studio's Prefect server for adop, idempotently: the work pool, one work queue per studio and priority,
the deployments, the ``gpu`` and ``cpu`` global concurrency limits (training and rendering hold a ``gpu`` slot,
SfM and dense stereo a ``cpu`` slot, while they build; an existing limit is updated to the slots asked for), and the
automation that re-queues a run whose worker was lost (``adop.flows.recovery``).

The work pool's base job template is locked: its job configuration names no ``command``, ``env`` or ``working_dir``
placeholder and its variables schema admits only ``name``, ``labels`` and ``stream_output`` (``additionalProperties:
false``), so a flow run that asks for another command or environment (``--job-variable command=…``) is refused by
the server when it is created, and would be ignored by the worker if it got through. Workers run the engine command
of their own installation, with their own environment (``ADOP_STUDIO_ROOT``, ``PREFECT_API_AUTH_STRING``,
``CUDA_VISIBLE_DEVICES``) plus the fixed variables below.

Deployments are registered by module entry point (``adop.flows.studio_run:studio_capture``) with no pull step: the
workers run the adop installed in their environment, not a checkout path fixed at deploy time.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

from prefect.client.orchestration import SyncPrefectClient
from prefect.client.schemas.actions import (
    GlobalConcurrencyLimitCreate, GlobalConcurrencyLimitUpdate, WorkPoolCreate, WorkPoolUpdate,
)
from prefect.client.schemas.schedules import CronSchedule
from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
from prefect.utilities.callables import parameter_schema

from adop.flows.recovery import HEARTBEAT_SECONDS, lost_run_trigger, requeue_action
from adop.service.connection import connect
from adop.service.runs import DEPLOYMENT_NAME
from adop.studio.layout import StudioRoot
from adop.studio.names import PRIORITIES, queue_name

POOL = "adop-studio"
GPU_LIMIT = "gpu"
CPU_LIMIT = "cpu"
SWEEP_FLOW = "studio-nightly-sweep"
SWEEP_DEPLOYMENT = "nightly"
FIXED_ENV = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_EXTRA_LOGGERS": "adop",
             "GLOG_minloglevel": "1", "ADOP_RESOURCE_LIMITS": "strict", "ADOP_STAGE_RETRIES": "2",
             "PREFECT_FLOWS_HEARTBEAT_FREQUENCY": str(HEARTBEAT_SECONDS)}
"""Set for every flow run: no telemetry, adop's log lines in the run log, COLMAP's per-image INFO lines off, the
``gpu``/``cpu`` concurrency limits held by the stages that need them, two retries (30 s, 120 s later) of a stage
that raised (``adop.flows.stage``), and a heartbeat every 30 s, by which the server tells a lost run
(``adop.flows.recovery``)."""
LOST_RUN_AUTOMATION = "adop: re-queue lost studio runs"
LOST_AFTER_S = 120.0
"""A studio run whose heartbeats stop for this long (four missed beats) without a final state is re-queued."""
ALLOWED_VARIABLES = ("name", "labels", "stream_output")


def locked_job_template() -> dict[str, Any]:
    """The process worker's default template without the command, env and working-directory overrides."""
    from prefect.workers.process import ProcessWorker

    template = copy.deepcopy(ProcessWorker.get_default_base_job_template())
    configuration = template["job_configuration"]
    for key in ("command", "working_dir"):
        configuration.pop(key, None)
    configuration["env"] = dict(FIXED_ENV)
    variables = template["variables"]
    variables["properties"] = {k: v for k, v in variables["properties"].items() if k in ALLOWED_VARIABLES}
    variables["required"] = [k for k in variables.get("required", []) if k in ALLOWED_VARIABLES]
    variables["additionalProperties"] = False
    return template


@dataclass(frozen=True)
class SetupReport:
    pool: str
    queues: list[str]
    deployments: list[str]
    gpu_slots: int
    cpu_slots: int
    lost_after_s: float


def ensure_pool(client: SyncPrefectClient) -> None:
    template = locked_job_template()
    try:
        client.create_work_pool(WorkPoolCreate(name=POOL, type="process", base_job_template=template))
    except ObjectAlreadyExists:
        client.update_work_pool(POOL, WorkPoolUpdate(base_job_template=template))


def ensure_queues(client: SyncPrefectClient, studios: list[str]) -> list[str]:
    """``<studio>-high|normal|low`` for every studio; all high queues are served before any normal one."""
    names = []
    for rank, priority in enumerate(PRIORITIES):
        for index, studio in enumerate(sorted(studios)):
            name = queue_name(studio, priority)
            order = 1 + rank * 1000 + index
            try:
                queue = client.read_work_queue_by_name(name, work_pool_name=POOL)
                client.update_work_queue(queue.id, priority=order)
            except ObjectNotFound:
                client.create_work_queue(name=name, work_pool_name=POOL, priority=order,
                                         description=f"{priority}-priority runs of studio {studio}")
            names.append(name)
    return names


def ensure_limit(client: SyncPrefectClient, name: str, slots: int) -> None:
    """The global concurrency limit ``name`` at ``slots`` (created, or updated when it exists with another value)."""
    try:
        limit = client.read_global_concurrency_limit_by_name(name)
        if limit.limit != slots or not limit.active:
            client.update_global_concurrency_limit(name, GlobalConcurrencyLimitUpdate(limit=slots, active=True))
    except ObjectNotFound:
        client.create_global_concurrency_limit(GlobalConcurrencyLimitCreate(name=name, limit=slots))


def ensure_lost_run_automation(client: SyncPrefectClient, flow_name: str, lost_after_s: float) -> None:
    """The server-side automation that re-queues a run of ``flow_name`` whose worker was lost (created or replaced)."""
    from prefect.events.schemas.automations import AutomationCore

    automation = AutomationCore.model_validate({
        "name": LOST_RUN_AUTOMATION, "enabled": True,
        "description": f"Put a {flow_name} run back in its queue when its heartbeats stop for {lost_after_s:.0f} s "
                       "(worker killed, machine lost); the run resumes from the artifact cache.",
        "trigger": lost_run_trigger(flow_name, lost_after_s), "actions": [requeue_action(lost_after_s)],
    })
    existing = client.read_automations_by_name(LOST_RUN_AUTOMATION)
    if existing:
        client.update_automation(existing[0].id, automation)
        for duplicate in existing[1:]:
            client.delete_automation(duplicate.id)
    else:
        client.create_automation(automation)


def _deploy(client: SyncPrefectClient, flow: Any, entrypoint: str, name: str, *, description: str,
            schedules: list[Any] | None = None, concurrency_limit: int | None = None) -> str:
    flow_id = client.create_flow_from_name(flow.name)
    client.create_deployment(
        flow_id=flow_id, name=name, entrypoint=entrypoint, work_pool_name=POOL,
        work_queue_name=None, description=description, pull_steps=[], path=None,
        parameter_openapi_schema=parameter_schema(flow).model_dump_for_openapi(),
        enforce_parameter_schema=True, schedules=schedules, concurrency_limit=concurrency_limit,
    )
    return f"{flow.name}/{name}"


def setup_server(root: StudioRoot, *, gpu_slots: int = 1, cpu_slots: int = 2, nightly_cron: str = "0 1 * * *",
                 timezone: str = "Europe/Berlin", run_limit: int | None = None,
                 lost_after_s: float = LOST_AFTER_S) -> SetupReport:
    """Create or update everything the studio service needs on the server (safe to run again)."""
    from prefect.client.schemas.actions import DeploymentScheduleCreate

    from adop.flows.studio_run import studio_capture
    from adop.service.nightly import sweep_inboxes

    studios = sorted(root.studios())
    with connect() as client:
        ensure_pool(client)
        queues = ensure_queues(client, studios)
        ensure_limit(client, GPU_LIMIT, gpu_slots)
        ensure_limit(client, CPU_LIMIT, cpu_slots)
        ensure_lost_run_automation(client, studio_capture.name, lost_after_s)
        deployments = [
            _deploy(client, studio_capture, "adop.flows.studio_run:studio_capture", DEPLOYMENT_NAME,
                    description="One studio submission through the pipeline (queued by adop submit and the page).",
                    concurrency_limit=run_limit),
            _deploy(client, sweep_inboxes, "adop.service.nightly:sweep_inboxes", SWEEP_DEPLOYMENT,
                    description="Queue every studio submission that has no run yet.",
                    schedules=[DeploymentScheduleCreate(schedule=CronSchedule(cron=nightly_cron, timezone=timezone),
                                                        active=True)]),
        ]
    return SetupReport(pool=POOL, queues=queues, deployments=deployments, gpu_slots=gpu_slots, cpu_slots=cpu_slots,
                       lost_after_s=lost_after_s)
