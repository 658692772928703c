"""Runs tasks in this process, one at a time: the simplest executor, and the deterministic one."""

from __future__ import annotations

from collections import deque
from typing import Any

from .base import Feed, WorkerFactory


class InlineExecutor:
    workers = 1

    def __init__(self, factory: WorkerFactory, feed: Feed | None = None):
        self.worker = factory()
        self.queue: deque[Any] = deque()
        self.feed = feed
        self.known: Any = None

    def submit(self, task: Any) -> None:
        self.queue.append(task)

    def poll(self, timeout: float | None = None) -> list[Any]:
        if not self.queue:
            return []
        task = self.queue.popleft()
        if self.feed is not None:
            task, self.known = self.feed.attach(task, self.known)
        return [self.worker.run(task)]

    @property
    def in_flight(self) -> int:
        return len(self.queue)

    alive = 1

    def close(self) -> None:
        self.worker.close()
