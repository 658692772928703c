"""Executors: where tasks run. ``make`` builds one by backend name."""

from __future__ import annotations

import os

from ..errors import ConfigError
from .base import Executor, Feed, WorkerFactory
from .inline import InlineExecutor
from .processes import ProcessExecutor

BACKENDS = ("processes", "inline", "ray")


def make(
    backend: str,
    factory: WorkerFactory,
    workers: int | None,
    address: str | None = None,
    deterministic: bool = False,
    feed: Feed | None = None,
) -> Executor:
    check_workers(workers, backend)
    if address is not None and backend != "ray":
        raise ConfigError("--address is for --backend ray; add --backend ray or drop --address")
    if deterministic and backend == "ray":
        raise ConfigError(
            "--deterministic is for local workers; drop it or use --backend processes"
        )
    if backend == "ray":
        from .ray import RayExecutor

        return RayExecutor(factory, workers, address, feed)
    if backend == "inline":
        return InlineExecutor(factory, feed)
    if backend == "processes":
        if workers == 1:
            return InlineExecutor(factory, feed)
        return ProcessExecutor(factory, workers, deterministic, feed)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


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
    if backend != "ray" and workers > PER_CORE * cores:
        raise ConfigError(
            f"--workers {workers} is more than {PER_CORE} per core on this machine's {cores} "
            f"cores; local workers beyond that only compete for them: use at most "
            f"{PER_CORE * cores}, or --backend ray for a cluster"
        )


__all__ = ["BACKENDS", "Executor", "InlineExecutor", "ProcessExecutor", "check_workers", "make"]
