"""Crash recovery of studio runs: a run whose worker was lost is put back in its queue, at most ``MAX_REQUEUES`` times.

A studio run crashes in one of two ways, and both end with the same flow run back in state ``Scheduled`` (named
``Requeued``) in its own work queue, where the next free worker takes it:

- **The process lived to see it** (SIGTERM from systemd when a worker is restarted, an interrupted engine): Prefect
  records the run as ``Crashed`` and runs the flow's ``on_crashed`` hook, ``requeue_crashed``, in the run's own
  process.
- **The process is gone** (SIGKILL, the out-of-memory killer, a machine that lost power or its network): nothing
  runs in it any more, so the server notices instead. Every flow run sends a heartbeat every
  ``HEARTBEAT_SECONDS``; the automation that ``adop studio setup`` creates (``adop.service.setup``) re-queues a
  studio run whose heartbeats stop for longer than its ``lost_after`` without a final state.

The re-run resumes, it does not restart: every finished stage is reused from the studio's artifact cache, and
training continues from its last checkpoint. A run that keeps crashing (a capture that kills its worker every time)
is not re-queued forever: the run counts its ``Requeued`` states when it starts and fails with one sentence past
``MAX_REQUEUES``; a crash past the limit stays ``Crashed`` and the studio is notified.
"""

from __future__ import annotations

import logging
from typing import Any
from uuid import UUID

from prefect import get_client
from prefect.client.schemas.objects import FlowRun
from prefect.states import Scheduled, State

REQUEUED = "Requeued"
"""The name of the ``Scheduled`` state a recovered run is put back in (the run's history counts them)."""
MAX_REQUEUES = 2
"""How often one run is put back in its queue after a crash before it is given up."""
HEARTBEAT_SECONDS = 30
"""How often a studio run tells the server it is alive (Prefect's minimum; set by the work pool)."""

logger = logging.getLogger(__name__)


def requeue_count(flow_run_id: UUID | str) -> int:
    """How often the run has been put back in its queue so far."""
    with get_client(sync_client=True) as client:
        return sum(1 for state in client.read_flow_run_states(UUID(str(flow_run_id))) if state.name == REQUEUED)


def requeue(flow_run_id: UUID | str, reason: str) -> None:
    """Put the run back in its work queue now (``Scheduled``, named ``Requeued``), whatever state it is in."""
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(UUID(str(flow_run_id)), Scheduled(name=REQUEUED, message=reason), force=True)


def requeue_crashed(flow_run: FlowRun, state: State) -> bool:
    """Re-queue a crashed run unless it has already been re-queued ``MAX_REQUEUES`` times; whether it was."""
    try:
        count = requeue_count(flow_run.id)
        if count >= MAX_REQUEUES:
            logger.warning("run %s crashed again after %d re-queues; it stays Crashed", flow_run.id, count)
            return False
        requeue(flow_run.id, f"re-queued after a crash ({state.message or state.name}); finished stages are reused")
    except Exception as error:  # noqa: BLE001 - a hook that cannot reach the server leaves the run Crashed
        logger.warning("run %s crashed and could not be re-queued: %s", flow_run.id, error)
        return False
    logger.info("run %s crashed (%s) and is back in its queue (re-queue %d of %d)", flow_run.id,
                state.message or state.name, count + 1, MAX_REQUEUES)
    return True


def requeue_limit_reached(flow_run_id: UUID | str) -> str | None:
    """The reason to give a run up when it starts, if it has been re-queued more often than ``MAX_REQUEUES``."""
    count = requeue_count(flow_run_id)
    if count <= MAX_REQUEUES:
        return None
    return (f"the run was lost {count} times (its worker died or was killed each time) and is not re-queued again; "
            "check the workers' logs and memory before submitting it again")


def lost_run_trigger(flow_name: str, lost_after_s: float) -> dict[str, Any]:
    """The automation trigger that fires for a run of ``flow_name`` whose heartbeats stopped ``lost_after_s`` ago
    before it reached a final state (a proactive event trigger, one bucket per flow run)."""
    return {
        "type": "event", "posture": "Proactive", "threshold": 1, "within": float(lost_after_s),
        "match": {"prefect.resource.id": "prefect.flow-run.*"},
        "match_related": {"prefect.resource.role": "flow", "prefect.resource.name": flow_name},
        "after": ["prefect.flow-run.heartbeat"],
        "expect": ["prefect.flow-run.heartbeat", "prefect.flow-run.Completed", "prefect.flow-run.Failed",
                   "prefect.flow-run.Cancelled", "prefect.flow-run.Cancelling", "prefect.flow-run.Crashed",
                   "prefect.flow-run.Scheduled"],
        "for_each": ["prefect.resource.id"],
    }


def requeue_action(lost_after_s: float) -> dict[str, Any]:
    """The automation action that puts a lost run back in its queue."""
    return {"type": "change-flow-run-state", "state": "SCHEDULED", "name": REQUEUED, "force": True,
            "message": f"re-queued: no heartbeat for {lost_after_s:.0f} s (its worker was lost); finished stages "
                       "are reused"}
