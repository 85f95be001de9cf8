"""The overnight sweep: every studio submission in the inboxes that has no flow run yet becomes its own run.

Submissions made with ``adop submit --tonight`` (or copied into an inbox by hand with their ``submission.json``) wait
for it. A sweep that crashes halfway is safe to repeat: each run is created with the submission's idempotency key,
so one that was created before the crash is found again instead of duplicated, and ``queued.json`` is written after.
"""

# No ``from __future__ import annotations``: Prefect builds the flow's parameter model from the signature.

import adop.flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)

import logging

import httpx
from prefect import flow, get_run_logger
from prefect.states import Failed

from adop.errors import AdopError
from adop.flows._env import configure_library_logging
from adop.service.connection import connect
from adop.service.runs import queue_run
from adop.studio.inbox import mark_queued, pending_submissions
from adop.studio.layout import StudioRoot

logger = logging.getLogger(__name__)


def sweep(root: StudioRoot) -> list[str]:
    """Queue every pending submission; returns the labels queued (``studio/shot/v001``).

    A submission that cannot be queued (its studio's queue is missing, its folder unreadable) is logged and left for
    the next sweep; the others are still queued. An unreachable server stops the sweep (nothing could be queued)."""
    queued = []
    pending = pending_submissions(root)
    if not pending:
        return queued
    with connect() as client:
        for submission in pending:
            try:
                run = queue_run(client, submission)
                mark_queued(root, submission, str(run.id))
            except httpx.HTTPStatusError as error:
                if error.response.status_code == 401:
                    raise
                logger.warning("sweep: %s not queued: HTTP %s %s", submission.label, error.response.status_code,
                               error.response.text[:200])
                continue
            except (AdopError, OSError) as error:
                logger.warning("sweep: %s not queued: %s", submission.label, error)
                continue
            queued.append(submission.label)
    return queued


@flow(name="studio-nightly-sweep", log_prints=True)
def sweep_inboxes() -> list[str]:
    """Queue the submissions that are waiting in the studios' inboxes."""
    configure_library_logging()
    try:
        queued = sweep(StudioRoot.from_environment())
    except AdopError as error:
        return Failed(message=str(error))  # type: ignore[return-value]
    get_run_logger().info("queued %d submission(s): %s", len(queued), ", ".join(queued) or "none")
    return queued
