"""Helpers shared by the bench scripts: drive an engine through an executor for a while."""

from __future__ import annotations

import time

from stepstone.engine import Engine
from stepstone.executors.inline import InlineExecutor
from stepstone.loop import drive


def pump(engine: Engine, executor, seconds: float, on_result=None) -> tuple[int, float]:
    """Keep the tasks the executor asks for in flight for ``seconds``; return (frames,
    elapsed)."""
    frames0, start = engine.frames, time.perf_counter()
    more = lambda: time.perf_counter() - start < seconds  # noqa: E731
    drive(engine, executor, None, more, on_result=on_result, drain=False)
    return engine.frames - frames0, time.perf_counter() - start


class Batches(InlineExecutor):
    """Runs every queued task at the next poll, in this process: ask ``batch``, merge them all."""

    def poll(self, timeout: float | None = None) -> list:
        return [self.worker.run(self.queue.popleft()) for _ in range(len(self.queue))]


def until_success(config, budget: int, batch: int = 8) -> tuple[int | None, int, float]:
    """Explore ``config`` in this process until success or ``budget`` frames.

    Returns (frames to first success or None, cells found, best score).
    """
    from stepstone.archive import Archive
    from stepstone.selectors import make
    from stepstone.trajectories import TrajectoryTree
    from stepstone.worker import Worker

    worker = Worker.from_config(config)
    engine = Engine(Archive(), TrajectoryTree(), make(config.selector), seed=config.seed)
    engine.add_root(worker.root())
    drive(engine, Batches(lambda: worker), batch, lambda: engine.frames < budget,
          done=lambda: engine.success_frame is not None)  # fmt: skip
    a = engine.archive
    return engine.success_frame, len(a), float(a.score[: len(a)].max())
