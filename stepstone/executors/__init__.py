"""Executors: where tasks run. ``REGISTRY`` names the backends; ``make`` builds one by name.

A new backend is a file here with an ``Executor`` subclass and one line in ``REGISTRY``.
"""

from __future__ import annotations

import os

from ..errors import ConfigError
from ..registry import Registry
from .base import Executor, Feed, WorkerFactory
from .inline import InlineExecutor
from .processes import ProcessExecutor

REGISTRY: Registry[type[Executor]] = Registry("backend", Executor, {
    "processes": ".processes:ProcessExecutor",
    "inline": ".inline:InlineExecutor",
    "ray": ".ray:RayExecutor",  # ray: imported only when chosen
}, __name__)  # fmt: skip
register = REGISTRY.register


def make(
    backend: str,
    factory: WorkerFactory,
    workers: int | None,
    address: str | None = None,
    deterministic: bool = False,
    feed: Feed | None = None,
    per_call: int | None = None,
) -> Executor:
    """The executor of ``--backend``, its workers started.

    Raises:
        ConfigError: an unknown backend, a worker count that cannot help, or an option the
            backend does not take.
    """
    check_workers(workers, backend)
    return REGISTRY[backend].create(factory, workers, address, deterministic, feed, per_call)


# Local processes beyond a few per core only compete for the same cores (and memory: each holds
# an environment); a typo like --workers 10000 must not fork ten thousand emulators.
PER_CORE = 4


def check_workers(workers: int | None, backend: str = "processes") -> None:
    """Refuse a worker count that cannot help, before anything is written."""
    if workers is None:
        return
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    cores = os.cpu_count() or 1
    if REGISTRY[backend].local and workers > PER_CORE * cores:
        raise ConfigError(
            f"--workers {workers} is more than {PER_CORE} per core on this machine's {cores} "
            f"cores; local workers beyond that only compete for them: use at most "
            f"{PER_CORE * cores}, or --backend ray for a cluster"
        )


__all__ = [
    "REGISTRY", "Executor", "InlineExecutor", "ProcessExecutor", "check_workers", "make",
    "register",
]  # fmt: skip
