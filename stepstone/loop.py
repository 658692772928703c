"""The ask/submit/poll/tell loop, written once: an engine driven through an executor.

The engine decides (pure), the executor runs tasks (processes, Ray, this process); this module
only moves tasks and results between them. What a caller does with each result (commit an
iteration, update adaptive cells, show progress) it passes in as hooks, so the CLI's runner and
the bench scripts share the loop and differ only in those. Not here: files, signals, models.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from .engine import Engine, Result, Task, TellStats
from .executors.base import Executor

OnResult = Callable[[Result, TellStats], None]
OnFailed = Callable[[Task, str], None]


def drive(
    engine: Engine,
    executor: Executor,
    capacity: int | None,
    more: Callable[[], bool],
    *,
    done: Callable[[], bool] | None = None,
    on_result: OnResult | None = None,
    on_failed: OnFailed | None = None,
    drain: bool = True,
    chunk: Callable[[], int] | None = None,
    guard: Callable[[], contextlib.AbstractContextManager] = contextlib.nullcontext,
) -> bool:
    """Keep up to ``capacity`` tasks in flight while ``more()`` says so, merging results.

    Args:
        engine: asked for tasks and told every result.
        executor: runs tasks (``submit``, ``poll``, ``in_flight``; tasks it gave up, if any,
            ``given_up()``: the tasks it gave up, with why).
        capacity: tasks in flight at most; None: what the executor asks for
            (``executor.capacity``, read each round: a Ray executor's grows with its batch).
        more: whether to ask for more tasks; checked once a round.
        done: checked after each round's results; True stops at once, forgetting the tasks
            still in flight (e.g. the run's goal is reached).
        on_result: called with each result and what merging it did.
        on_failed: called with each task the executor gave up, and why.
        chunk: how many results to merge before the next is handed to ``on_result`` (e.g.
            what is left of an iteration, so a commit holds exactly one); None: a whole poll.
        guard: the context each batch is merged in (the runner's keeps a Ctrl-C or SIGTERM
            from landing mid-merge).
        drain: once ``more()`` is False, wait for the tasks in flight (False: leave them
            to a later call, as a bench measuring for a fixed time does).

    Returns:
        True when ``done()`` stopped the loop.

    Exceptions from the executor, the engine or the hooks stop the loop and propagate, with
    the tasks in flight left pending in the engine (``engine.abandon_all()`` forgets them).
    """
    while True:
        submitting = more()
        if not submitting and not (drain and executor.in_flight):
            return False
        want = (executor.capacity if capacity is None else capacity) - executor.in_flight
        if submitting and want > 0:
            for task in engine.ask(want):
                executor.submit(task)
        results = executor.poll(timeout=1.0)
        for task, why in executor.given_up():
            engine.abandon(task.task_id)
            if on_failed is not None:
                on_failed(task, why)
        while results:  # merged in batches (Engine.tell_many), cut where ``chunk()`` says
            n = len(results) if chunk is None else max(1, chunk())
            batch, results = results[:n], results[n:]
            asked = [engine.pending.get(r.task_id) for r in batch]
            with guard():
                told = engine.tell_many(batch)
            for result, was, stats in zip(batch, asked, told, strict=True):
                if was is not None:
                    engine.selector.observe(was, result)  # ige notes the actions tried
                if on_result is not None:
                    on_result(result, stats)
        if done is not None and done():
            engine.abandon_all()  # results still running are not needed
            return True
