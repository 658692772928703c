"""What an executor is: something that runs ``worker.run(task)`` somewhere and hands back results.

Executors know nothing about exploration: they are given a picklable factory that builds a
worker (an object with ``run(task) -> result``) and move tasks and results as bytes. Results
come back in completion order; the engine merges them in any order.

An executor may be given a ``Feed``: state its workers keep between tasks (the archive table
workers filter their findings by, table.py). It tracks what each worker holds and, as it sends
a task, lets the feed attach what that worker lacks; a replaced worker starts from nothing.
"""

from __future__ import annotations

import pickle
from collections.abc import Callable
from typing import Any, Protocol

WorkerFactory = Callable[[], Any]


class Feed(Protocol):
    def attach(self, task: Any, known: Any) -> tuple[Any, Any]:
        """``task`` carrying what a worker holding ``known`` (None: nothing) lacks, and what
        that worker holds once it has run it."""
        ...


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def loads(data: bytes) -> Any:
    return pickle.loads(data)


class Executor(Protocol):
    workers: int

    def submit(self, task: Any) -> None: ...

    def poll(self, timeout: float | None = None) -> list[Any]:
        """Results finished so far, waiting up to ``timeout`` seconds for at least one."""
        ...

    @property
    def in_flight(self) -> int: ...

    @property
    def alive(self) -> int:
        """Workers currently able to run tasks (shown in the progress bar)."""
        ...

    def close(self) -> None: ...
