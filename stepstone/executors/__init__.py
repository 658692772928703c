"""Executors: where tasks run. ``make`` builds one by backend name."""

from __future__ import annotations

from ..errors import ConfigError
from .base import Executor, WorkerFactory
from .inline import InlineExecutor
from .processes import ProcessExecutor

BACKENDS = ("processes", "inline", "ray")


def make(
    backend: str, factory: WorkerFactory, workers: int | None, address: str | None = None
) -> Executor:
    if workers is not None and workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if address is not None and backend != "ray":
        raise ConfigError("--address is for --backend ray; add --backend ray or drop --address")
    if backend == "ray":
        from .ray import RayExecutor

        return RayExecutor(factory, workers, address)
    if backend == "inline":
        return InlineExecutor(factory)
    if backend == "processes":
        if workers == 1:
            return InlineExecutor(factory)
        return ProcessExecutor(factory, workers)
    raise ConfigError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")


__all__ = ["BACKENDS", "Executor", "InlineExecutor", "ProcessExecutor", "make"]
