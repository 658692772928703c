"""The ask/submit/poll/tell loop against a hand-made executor: capacity, hooks and stopping."""

from __future__ import annotations

import numpy as np

from stepstone.archive import Archive
from stepstone.engine import Engine, Found, Result
from stepstone.executors.base import Executor
from stepstone.loop import drive
from stepstone.selectors import Uniform
from stepstone.trajectories import TrajectoryTree


class Fake(Executor):
    """Answers the oldest task at each poll (each finding one new cell, 10 frames); gives up
    the tasks whose id is in ``give_up``."""

    workers = 2

    @classmethod
    def create(cls, factory, workers, address=None, deterministic=False):
        return cls()

    def __init__(self, give_up=()):
        self.queue, self.failed, self.give_up = [], [], set(give_up)
        self.most_in_flight = 0

    def submit(self, task):
        self.queue.append(task)
        self.most_in_flight = max(self.most_in_flight, len(self.queue))

    def poll(self, timeout=None):
        if not self.queue:
            return []
        task = self.queue.pop(0)
        if task.task_id in self.give_up:
            self.failed.append((task, "its worker died 3 times"))
            return []
        found = [Found(f"c{task.task_id}", 1.0, 1, b"s", success=task.task_id == 7)]
        return [Result(task.task_id, np.zeros(1, np.uint8), 10, found)]

    @property
    def in_flight(self):
        return len(self.queue)

    @property
    def alive(self):
        return self.workers

    def close(self):
        pass


def engine() -> Engine:
    e = Engine(Archive(), TrajectoryTree(), Uniform(), seed=0)
    e.add_root(Found("root", 0.0, 0, b"root"))
    return e


def test_keeps_capacity_in_flight_drains_and_reports_each_result_and_failure():
    e, ex = engine(), Fake(give_up={3})
    merged, failed = [], []
    stopped = drive(e, ex, 3, lambda: e.frames < 50,
                    on_result=lambda r, s: merged.append((r.task_id, s.new_cells)),
                    on_failed=lambda t, why: failed.append((t.task_id, why)))  # fmt: skip
    assert not stopped and ex.most_in_flight == 3
    assert [t for t, _ in failed] == [3] and "died" in failed[0][1]
    assert all(new == 1 for _, new in merged) and 3 not in [t for t, _ in merged]
    assert e.frames >= 50 and ex.in_flight == 0 and not e.pending  # drained, nothing left
    assert len(e.archive) == 1 + len(merged)


def test_done_stops_at_once_and_forgets_the_tasks_in_flight():
    e, ex = engine(), Fake()
    stopped = drive(e, ex, 4, lambda: True, done=lambda: e.success_frame is not None)
    assert stopped and "c7" in e.archive and "c8" not in e.archive
    assert ex.in_flight > 0 and not e.pending  # still running, no longer wanted


def test_without_drain_the_tasks_in_flight_wait_for_the_next_call():
    e, ex = engine(), Fake()
    drive(e, ex, 2, lambda: e.frames < 30, drain=False)
    left = ex.in_flight
    assert left > 0 and len(e.pending) == left
    drive(e, ex, 2, lambda: False)  # drains them
    assert ex.in_flight == 0 and not e.pending and e.frames == 30 + 10 * left
