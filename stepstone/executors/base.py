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
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

WorkerFactory = Callable[[], Any]


class Feed(Protocol):
    """What an executor sends each worker of the archive with its tasks (table.TableFeed)."""

    def attach(self, task: Any, known: Any) -> tuple[Any, Any]:
        """``task`` carrying what a worker holding ``known`` (None: nothing) lacks, and what
        that worker holds once it has run it."""
        ...


def dumps(obj: Any) -> bytes:
    return pickle.dumps(obj, protocol=5)


def loads(data: bytes) -> Any:
    return pickle.loads(data)


class Executor(ABC):
    """Base class of executors; a subclass is registered by backend name in
    ``executors.REGISTRY`` (``--backend``).

    Attributes:
        local: whether the workers run on this machine (their number is then capped by its
            cores, ``executors.check_workers``).
        workers: how many workers run tasks at once.
        reissued: tasks sent again because their worker died (metrics: ``reissued``).
        replaced: workers started in place of dead ones (metrics: ``workers_replaced``).
        failed: ``(task, why)`` of tasks given up (they killed too many workers), until the
            driver takes them with ``given_up``.
    """

    local: ClassVar[bool] = True
    workers: int
    reissued: int = 0
    replaced: int = 0
    failed: list[tuple[Any, str]]

    @classmethod
    @abstractmethod
    def create(
        cls,
        factory: WorkerFactory,
        workers: int | None,
        address: str | None = None,
        deterministic: bool = False,
        feed: Feed | None = None,
        per_call: int | None = None,
    ) -> Executor:
        """The executor for a run's options, its workers started.

        Args:
            factory: builds one worker; pickled to reach other processes.
            workers: how many (None: the backend's default, e.g. one per core).
            address: a cluster to join (``--address``), for backends that have one.
            deterministic: return results in submission order (``--deterministic``).
            feed: what each worker is sent of the archive with its tasks (table.py), so it
                ships snapshots only of cells new or better by it; None: no filtering.
            per_call: tasks sent to a worker in one call (``--tasks-per-call``), for backends whose
                calls cost more than a task's bookkeeping; None: the backend's choice.

        Returns:
            The executor (possibly of another class: one local worker runs inline).

        Raises:
            ConfigError: an option this backend does not take, or its extra is missing.
        """

    @abstractmethod
    def submit(self, task: Any) -> None:
        """Queue ``task`` to run on some worker; returns at once."""

    @abstractmethod
    def poll(self, timeout: float | None = None) -> list[Any]:
        """Results finished so far, waiting up to ``timeout`` seconds for at least one.

        Raises:
            StepstoneError: a worker raised one (a bad snapshot, a missing extra).
        """

    @property
    @abstractmethod
    def in_flight(self) -> int:
        """Tasks submitted whose result has not been returned by ``poll`` yet."""

    @property
    @abstractmethod
    def alive(self) -> int:
        """Workers currently able to run tasks (shown in the progress bar)."""

    @property
    def capacity(self) -> int:
        """Tasks to keep in flight so that no worker waits for the driver: two a worker, one
        running and one ready to start (a backend sending several per call keeps more)."""
        return 2 * self.workers

    @abstractmethod
    def close(self) -> None:
        """Stop the workers; tasks still running are dropped."""

    def given_up(self) -> list[tuple[Any, str]]:
        """Take the tasks given up since the last call, as ``(task, why)``."""
        out = list(self.failed)
        self.failed.clear()
        return out
