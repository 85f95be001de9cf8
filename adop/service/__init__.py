"""The studio service over Prefect: submitting runs, following and cancelling them, fetching deliverables, setting up
the server (work pool, studio queues, deployments), the nightly sweep and the studio page.

Everything here talks to the Prefect server in ``PREFECT_API_URL`` (with ``PREFECT_API_AUTH_STRING`` when the server
requires it) and fails with one sentence when it is unreachable or refuses. The files side (studios, inboxes,
deliveries) is ``adop.studio``.
"""

import adop.flows  # noqa: F401  (Prefect environment defaults before Prefect is imported)
