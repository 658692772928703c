"""Runs tasks in this process, one at a time: the simplest executor, and the deterministic one."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..errors import ConfigError
from .base import Executor, WorkerFactory


class InlineExecutor(Executor):
    workers = 1
    alive = 1

    def __init__(self, factory: WorkerFactory):
        self.worker = factory()
        self.queue: deque[Any] = deque()
        self.failed = []  # a task that fails here fails the run: nothing is given up

    @classmethod
    def create(cls, factory: WorkerFactory, workers: int | None, address: str | None = None,
               deterministic: bool = False) -> Executor:  # fmt: skip
        refuse_address(address)
        return cls(factory)

    def submit(self, task: Any) -> None:
        self.queue.append(task)

    def poll(self, timeout: float | None = None) -> list[Any]:
        return [self.worker.run(self.queue.popleft())] if self.queue else []

    @property
    def in_flight(self) -> int:
        return len(self.queue)

    def close(self) -> None:
        self.worker.close()


def refuse_address(address: str | None) -> None:
    """Local backends join no cluster."""
    if address is not None:
        raise ConfigError("--address is for --backend ray; add --backend ray or drop --address")
