"""Runs tasks in this process, one at a time: the simplest executor, and the deterministic one."""

from __future__ import annotations

from collections import deque
from typing import Any

from ..errors import ConfigError
from .base import Executor, Feed, WorkerFactory


class InlineExecutor(Executor):
    workers = 1
    alive = 1

    def __init__(self, factory: WorkerFactory, feed: Feed | None = None):
        self.worker = factory()
        self.queue: deque[Any] = deque()
        self.failed = []  # a task that fails here fails the run: nothing is given up
        self.feed = feed
        self.known: Any = None  # what the worker holds of the feed

    @classmethod
    def create(cls, factory: WorkerFactory, workers: int | None, address: str | None = None,
               deterministic: bool = False, feed: Feed | None = None,
               per_call: int | None = None) -> Executor:  # fmt: skip
        refuse_remote(address, per_call)
        return cls(factory, feed)

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

    def close(self) -> None:
        self.worker.close()


def refuse_remote(address: str | None, per_call: int | None) -> None:
    """Local backends join no cluster, and their calls cost too little to batch."""
    for name, value in (("--address", address), ("--tasks-per-call", per_call)):
        if value is not None:
            raise ConfigError(f"{name} is for --backend ray; add --backend ray or drop {name}")
