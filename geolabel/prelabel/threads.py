"""How many threads torch gets: the cores that are free now, not every core.

Torch's CPU kernels run on an OpenMP pool whose threads spin-wait at every barrier. When another
process holds one of the cores, a thread of that pool is descheduled and the others wait for it
at each layer: on this project's 2-core machine, a training step of the default model took 5×
longer with 2 threads than with 1 while another process kept one core busy (0.9 s vs 4.5 s per
batch of 8 crops of 128 px). So the thread count is measured, not assumed: :class:`ThreadTuner`
times real calls on one thread and on every core and keeps the faster, again every round of
calls; before its first measurement it starts from the cores left free by other work (1-minute
load average), never more than the cores this process may run on.
"""

from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator

from threadpoolctl import ThreadpoolController

__all__ = [
    "ThreadTuner",
    "available_cores",
    "default_threads",
    "one_blas_thread",
    "short_gil_turns",
]


@functools.cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()  # finds the loaded BLAS libraries once (a few ms)


@contextlib.contextmanager
def one_blas_thread() -> Iterator[None]:
    """One thread for numpy's BLAS (OpenBLAS) while the block runs.

    For numpy work beside the model's streams (pre-labeling's mosaic, statistics and
    embeddings): OpenBLAS runs a matrix product on every core and its threads then spin-wait,
    taking the cores the streams need. Pre-labeling the benchmark scene took 1.56 s with
    OpenBLAS's 2 threads and 1.37 s with one. The limit is process-wide and restored after.
    """
    with _controller().limit(limits=1, user_api="blas"):
        yield


@contextlib.contextmanager
def short_gil_turns(seconds: float = 0.0002) -> Iterator[None]:
    """Python's thread switch interval (normally 5 ms) set to ``seconds`` while the block runs.

    The model's streams need the GIL for a moment between torch operations; a post thread
    running Python-level numpy code keeps it until the switch interval forces it to let go,
    so with the default 5 ms every operation of a stream could wait up to 5 ms. Pre-labeling
    the benchmark scene took 1.31-1.40 s at 0.2 ms and 1.51-1.56 s at 5 ms. The interval is
    process-wide and restored after.
    """
    before = sys.getswitchinterval()
    sys.setswitchinterval(seconds)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def default_threads(requested: int | None = None) -> int:
    """Torch threads to use: ``requested`` if given, else the cores not busy with other work.

    ``cores - floor(load)``, between 1 and ``cores``, where ``load`` is the 1-minute load
    average (processes running or waiting to run). An idle 2-core machine gets 2 threads; one
    with another busy process gets 1.

    Args:
        requested: An explicit thread count (at least 1), used as given.

    Returns:
        The thread count.
    """
    if requested is not None:
        return max(1, int(requested))
    cores = available_cores()
    try:
        load = os.getloadavg()[0]
    except (AttributeError, OSError):
        load = 0.0
    return max(1, min(cores, cores - int(load)))


class ThreadTuner:
    """Picks torch's thread count by timing real work: one thread against every core.

    Work comes in calls (training steps, inference batches) grouped in rounds of ``period``
    calls. The first call of a round runs on one thread, the second on every available core;
    the faster per unit of work (per crop, per tile) runs the rest of the round. So a round
    costs at most one call at the slower setting, and a change of load on the machine is
    noticed within a round. With an explicit thread count (or one core) nothing is timed.

    Args:
        requested: An explicit thread count.
        period: Calls per round.
        skip_first: Leave the very first call out of the timing (it builds oneDNN's kernels
            and would make whichever setting goes first look slow).
    """

    def __init__(
        self, requested: int | None = None, *, period: int = 32, skip_first: bool = False
    ) -> None:
        self.cores = available_cores()
        self.current = default_threads(requested)
        self.tuning = requested is None and self.cores > 1
        self.period = max(2, int(period))
        self._n = -1 if skip_first else 0
        self._trial: dict[int, float] = {}

    def before(self) -> None:
        """Set the thread count for the next call."""
        import torch

        if self.tuning and self._n >= 0:
            phase = self._n % self.period
            if phase == 0:
                self._trial = {}
                self.current = 1
            elif phase == 1:
                self.current = self.cores
        torch.set_num_threads(self.current)

    def after(self, seconds: float, units: int = 1) -> None:
        """Record how long the call took for ``units`` of work."""
        if self.tuning and self._n >= 0:
            phase = self._n % self.period
            if phase in (0, 1):
                self._trial[self.current] = seconds / max(units, 1)
            if phase == 1:
                self.current = min(self._trial, key=lambda k: self._trial[k])
        self._n += 1
