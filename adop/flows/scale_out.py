"""Where render chunks run: Prefect task runners picked from ``ScaleOutConfig``.

``threads`` is Prefect's thread-pool task runner in the flow's own process (rendering is torch work that releases
the GIL). ``dask`` is ``prefect-dask``'s ``DaskTaskRunner``: a local cluster of worker processes on this machine, or
a running cluster of render machines by its scheduler's address. Every chunk is still the same cached stage task, so
a chunk reruns only if it changed and a chunk that failed is retried like any stage. On threads, a studio run's
chunks hold ``gpu`` slots as its training does; on Dask, a chunk takes a slot only where the Dask worker's own
environment turns limits on (``ADOP_RESOURCE_LIMITS``): a render farm's workers, one per GPU with one thread each,
are their own limit.

On a studio server the farm decides, never the submission: the flow takes the scheduler from ``ADOP_DASK_ADDRESS``
in the worker's environment and ignores what a submission's options say (a Dask scheduler sends pickled results
back, so an address chosen by a submitter would let it run code on the worker).
"""

from __future__ import annotations

import os

from prefect.task_runners import TaskRunner, ThreadPoolTaskRunner

from adop.pipeline import ScaleOutConfig

DASK_ADDRESS_VARIABLE = "ADOP_DASK_ADDRESS"
"""The scheduler of the farm's render cluster (``tcp://host:8786``), set in a studio worker's environment."""

WORKER_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
"""The environment of a local cluster's worker processes. Each renders with ``RenderConfig.threads`` OpenMP threads;
where the processes together have more threads than the machine has cores, OpenMP's default busy-waiting makes them
take the cores from each other (a chunk took 18 s instead of 2.5 s with two workers of two threads on two cores), and
passive waiting does not. Workers of a farm's cluster want the same when they share a machine's cores."""


def task_runner(config: ScaleOutConfig) -> TaskRunner | None:
    """A new (not yet started) task runner for ``config``; None for ``serial``."""
    if config.runner == "serial":
        return None
    if config.runner == "threads":
        return ThreadPoolTaskRunner(max_workers=config.workers)
    from prefect_dask import DaskTaskRunner

    if config.dask_address is not None:
        return DaskTaskRunner(address=config.dask_address)
    return DaskTaskRunner(cluster_kwargs={"n_workers": config.workers, "threads_per_worker": 1, "processes": True,
                                          "host": "127.0.0.1", "dashboard_address": None, "env": WORKER_ENV})


def farm_scale_out() -> ScaleOutConfig:
    """The studio server's setting: its Dask cluster where ``ADOP_DASK_ADDRESS`` names one, else threads."""
    address = os.environ.get(DASK_ADDRESS_VARIABLE, "").strip()
    if address:
        return ScaleOutConfig(runner="dask", dask_address=address)
    return ScaleOutConfig()
