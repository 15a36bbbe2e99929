"""Dask clusters for geolabel: a LocalCluster sized to the machine, or an existing scheduler.

geolabel hands whole units of work (a scene to pre-label, with its zonal statistics) to Dask
workers, one task per unit; each worker process runs one task at a time on as many torch
threads as it has Dask threads (one, on a LocalCluster of one process per core), because
torch's OpenMP threads spin-wait and two processes that each use every core slow each other
down several times over (see :mod:`geolabel.prelabel.threads`).

Memory allocation on workers: Dask starts worker processes with ``MALLOC_TRIM_THRESHOLD_=65536``
(to hand freed memory back to the OS sooner). Setting it also freezes glibc's mmap threshold at
128 KiB, so every array above that size is a fresh ``mmap`` whose pages are faulted in and
zeroed on first touch; geolabel's pre-labeling allocates many such arrays (batches, strips,
probability tiles) and ran 1.7x slower per scene on such a worker than in a plain process.
The LocalCluster here keeps Dask's trim threshold and sets ``MALLOC_MMAP_THRESHOLD_`` to
32 MiB (:data:`WORKER_ENV`), which restores the plain process's speed. For workers you start
yourself, set it in their environment: ``MALLOC_MMAP_THRESHOLD_=33554432 dask worker ...``.

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
    from distributed import Client, LocalCluster

__all__ = ["LOCAL", "WORKER_ENV", "dask_client", "local_cluster", "worker_threads"]

LOCAL = "local"
"""The scheduler name that starts a LocalCluster on this machine."""

WORKER_ENV: dict[str, str] = {"MALLOC_MMAP_THRESHOLD_": str(32 * 1024 * 1024)}
"""Environment of the LocalCluster's worker processes (see the module docstring)."""


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
    from distributed import Client

    if scheduler == LOCAL:
        cluster = local_cluster(n_workers)
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


def local_cluster(n_workers: int | None = None, *, dashboard: bool = True) -> LocalCluster:
    """A LocalCluster of single-threaded worker processes, one per core by default.

    Args:
        n_workers: Worker processes (default: the cores available).
        dashboard: Serve Dask's dashboard on a free port.

    Returns:
        The running cluster (close it, or use it as a context manager).

    Raises:
        ClusterError: ``n_workers`` is below 1.
    """
    import dask
    from distributed import LocalCluster

    workers = _cores() if n_workers is None else int(n_workers)
    if workers < 1:
        raise ClusterError(f"A LocalCluster needs at least one worker, got {n_workers}.")
    # glibc reads MALLOC_* when a process starts: the variables must be in the environment
    # the worker process is spawned with (Dask's ``env=`` is applied after the spawn).
    spawn_env = {f"distributed.nanny.pre-spawn-environ.{k}": v for k, v in WORKER_ENV.items()}
    # Dask's statistical profiler samples every task's stack each 10 ms from its own thread:
    # CPU taken from the one core a single-threaded worker has. Off for our clusters. The
    # event-loop tick (20 ms), the nannies' memory checks (100 ms) and the system monitor
    # (500 ms) run in this process and the workers beside the tasks; once every core has a
    # worker they take CPU from the tasks. At 1 s, 1 s and 2 s this process used 0.35 s of
    # CPU instead of 0.55 s per 4-scene job (benchmarks/scale.py), and a worker that nears
    # its memory limit is still caught within a second.
    quiet = {
        # One task per worker at a time: the next scene goes to whichever worker frees up
        # first (Dask's default 1.1 hands a single-threaded worker two tasks at once, so
        # four uneven scenes split two and two whatever their sizes).
        "distributed.scheduler.worker-saturation": 1.0,
        "distributed.worker.profile.enabled": False,
        "distributed.admin.tick.interval": "1s",
        "distributed.worker.memory.monitor-interval": "1s",
        "distributed.admin.system-monitor.interval": "2s",
    }
    with dask.config.set({**spawn_env, **quiet}):
        return LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=":0" if dashboard else None,
            silence_logs=40,
        )


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
