"""Helpers shared by the bench scripts: drive an engine through an executor for a while."""

from __future__ import annotations

import time

from stepstone.engine import Engine


def pump(engine: Engine, executor, seconds: float, on_result=None) -> tuple[int, float]:
    """Keep 2 tasks per worker in flight for ``seconds``; return (frames, elapsed)."""
    frames0, start = engine.frames, time.perf_counter()
    while time.perf_counter() - start < seconds:
        want = 2 * executor.workers - executor.in_flight
        if want > 0:
            for task in engine.ask(want):
                executor.submit(task)
        for result in executor.poll(timeout=1.0):
            stats = engine.tell(result)
            if on_result is not None:
                on_result(result, stats)
    return engine.frames - frames0, time.perf_counter() - start


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
    while engine.frames < budget and engine.success_frame is None:
        for task in engine.ask(batch):
            engine.tell(worker.run(task))
    a = engine.archive
    return engine.success_frame, len(a), float(a.score[: len(a)].max())
