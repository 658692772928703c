"""Runs tasks in this process, one at a time: the simplest executor, and the deterministic one."""

from __future__ import annotations

from collections import deque
from typing import Any

from .base import WorkerFactory


class InlineExecutor:
    workers = 1

    def __init__(self, factory: WorkerFactory):
        self.worker = factory()
        self.queue: deque[Any] = deque()

    def submit(self, task: Any) -> None:
        self.queue.append(task)

    def poll(self, timeout: float | None = None) -> list[Any]:
        return [self.worker.run(self.queue.popleft())] if self.queue else []

    @property
    def in_flight(self) -> int:
        return len(self.queue)

    alive = 1

    def close(self) -> None:
        self.worker.close()
