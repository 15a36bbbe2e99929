"""Dask clusters for geolabel: a LocalCluster sized to the machine, or an existing scheduler.

geolabel hands whole units of work (a scene to pre-label, with its zonal statistics) to Dask
workers, one task per unit; each worker process runs one task at a time on as many torch
threads as it has Dask threads (one, on a LocalCluster of one process per core), because
torch's OpenMP threads spin-wait and two processes that each use every core slow each other
down several times over (see :mod:`geolabel.prelabel.threads`).

An existing cluster (``dask scheduler`` plus ``dask worker tcp://HOST:8786`` on each machine)
is used by its address. Its workers need geolabel installed and must see the project's files
(scenes, model folder, output folder) at the same paths: a shared file system.

Example:
    >>> with dask_client("local") as client:  # doctest: +SKIP
    ...     futures = client.map(work, scenes)
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

from geolabel.errors import ClusterError

if TYPE_CHECKING:
    from distributed import Client

__all__ = ["LOCAL", "dask_client", "worker_threads"]

LOCAL = "local"
"""The scheduler name that starts a LocalCluster on this machine."""


def _cores() -> int:
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


@contextlib.contextmanager
def dask_client(
    scheduler: str = LOCAL, *, n_workers: int | None = None, timeout: float = 10.0
) -> Iterator[Client]:
    """Connect to a Dask scheduler, or start a LocalCluster, for the duration of a block.

    ``local`` starts one worker process per core (``n_workers`` to choose), each with one
    thread and an equal share of the memory, and shuts it down on exit; any other value is
    the address of a running scheduler (``tcp://10.0.0.5:8786``), whose cluster is left
    running.

    Args:
        scheduler: ``local`` or a scheduler address.
        n_workers: Worker processes of a LocalCluster (default: the cores available).
        timeout: Seconds to wait for a remote scheduler.

    Yields:
        The connected client.

    Raises:
        ClusterError: The scheduler cannot be reached, or ``n_workers`` is below 1.
    """
    from distributed import Client, LocalCluster

    if scheduler == LOCAL:
        workers = _cores() if n_workers is None else int(n_workers)
        if workers < 1:
            raise ClusterError(f"A LocalCluster needs at least one worker, got {n_workers}.")
        cluster = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0",
            silence_logs=40,
        )
        try:
            with Client(cluster) as client:
                yield client
        finally:
            cluster.close()
        return
    try:
        client = Client(scheduler, timeout=f"{timeout}s")
    except (OSError, TimeoutError, ValueError) as exc:
        raise ClusterError(
            f"Cannot reach the Dask scheduler at {scheduler!r} ({exc}). Start one with "
            "`dask scheduler` and workers with `dask worker ADDRESS`, check the address "
            "(tcp://HOST:8786), or use --scheduler local."
        ) from exc
    try:
        yield client
    finally:
        client.close()


def worker_threads(requested: int | None = None) -> int:
    """Torch threads for a task on a Dask worker: ``requested``, else the worker's threads.

    Args:
        requested: An explicit thread count.

    Returns:
        The thread count (1 on a LocalCluster of one single-threaded process per core).
    """
    if requested is not None:
        return max(1, int(requested))
    try:
        from distributed import get_worker

        return max(1, int(get_worker().state.nthreads))
    except ValueError:  # not on a worker
        return 1
