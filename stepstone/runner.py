"""The driver loop: engine + executor + run directory + progress, until the frame budget is spent.

This is what ``stepstone explore`` and ``stepstone resume`` run. It keeps every worker busy
(as many tasks in flight as the executor asks for: two a worker, more when a call to a Ray
actor carries several), merges results as they arrive, and commits one iteration
(``config.batch`` explorations) at a time, so a crash loses at most the iteration in progress.
Ctrl-C commits what has been merged and stops cleanly.
"""

from __future__ import annotations

import contextlib
import functools
import signal
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from . import selectors
from .cells import DriverDecidedCells
from .cells.dynamic import DynamicDownscale, DynamicSchedule
from .cells.schedule import Schedule
from .config import ExploreConfig, RunOptions
from .engine import Engine, Result, Task, TellStats
from .errors import CommitFailed, RunDirError
from .executors import Executor
from .executors import make as make_executor
from .goals import GOAL_REACHED
from .llm.errors import BudgetExhausted, ModelUnavailable
from .loop import drive
from .progress import Progress
from .report import places
from .store.sqlite import RunStore
from .table import TableFeed
from .worker import Worker

LLM_CACHE = "llm_cache.sqlite"  # model replies and call ledger, in the run directory


def metrics_row(engine: Engine, iteration: int, seconds: float, new_cells: int) -> dict:
    """One row of the per-iteration metrics table (what report.py plots)."""
    a = engine.archive
    best = a.best() if len(a) else None
    return {
        "iteration": iteration,
        "frames": engine.frames,
        "seconds": round(seconds, 3),
        "explorations": engine.explorations,
        "cells": len(a),
        "new_cells": new_cells,
        "best_score": float(a.score[best]) if best is not None else 0.0,
        **places(a),
        "success_frame": engine.success_frame,
        "goal_known": engine.goal_known,  # False: no goal to reach (the progress line says so)
        # Returns that did not reach their cell (by replay, or by --from-policy): none, no key.
        **({"returns_missed": engine.missed_returns} if engine.missed_returns else {}),
    }


def open_run(config: ExploreConfig | None, run_dir: str | Path) -> RunStore:
    """A new run in ``run_dir`` (``config`` given) or the stored one (``config`` None).

    Giving a configuration for a directory that holds a run is allowed only when it is the
    same configuration; otherwise it is refused, never merged.
    """
    run_dir = Path(run_dir)
    db = run_dir / "run.sqlite"
    if config is None or db.exists():
        store = RunStore.open(run_dir, write=True)
        if config is not None and store.config != config:
            stored = store.config
            diffs = [
                f"{k}: stored {getattr(stored, k)!r}, given {getattr(config, k)!r}"
                for k in config.__dataclass_fields__
                if getattr(stored, k) != getattr(config, k)
            ]
            store.close()
            raise RunDirError(
                f"{run_dir} holds a run with a different configuration ({'; '.join(diffs)}); "
                f"continue it with 'stepstone resume {run_dir}' or choose a new --run-dir"
            )
        store.upgrade()
        return store
    return RunStore.create(run_dir, config)


def run(store: RunStore, options: RunOptions) -> dict:
    """Explore until ``options.frames`` in total; return the last metrics row."""
    config = store.config
    local = Worker.from_config(config)  # validates env and cells before any process starts
    local.policy_return()  # and a --from-policy policy (resume: it may have moved since)
    if local.env.snapshot_format == "pickle":
        store.use_pickled_snapshots(options.trust_run_dir)
    if local.cells_kind != config.cells and store.meta("cells_resolved") is None:
        store.set_meta("cells_resolved", local.cells_kind)  # the report names it
    words = getattr(local.env, "goal_words", None)  # what "the environment's own" goal is
    if config.goal is None and words and store.meta("goal_words") is None:
        store.set_meta("goal_words", words)
    if config.shards > 1:
        return run_sharded(store, options, local)
    model, settings, roles = model_roles(config, store, options, local)
    cells, adaptive_cells = local.cell_fn, local.adaptive
    rule = None
    if isinstance(cells, DriverDecidedCells):  # their rule's state is the run's, kept with commits
        rule = cells.rule(store.extra("cell_rule"))
    engine = store.load_engine(
        selectors.make(config.selector, **config.selector_params, **roles.get("selector", {})),
        admit=roles.get("judge"),
        rule=rule,
        reset_on_update=config.reset_on_update,
        # A new run's shape of adaptive cells; a resumed run keeps its stored one.
        cell_shape=adaptive_cells.shape if adaptive_cells is not None else None,
    )
    adaptive: Schedule | None = None
    if adaptive_cells is not None:  # re-chosen in this process
        kind = DynamicSchedule if isinstance(adaptive_cells, DynamicDownscale) else Schedule
        adaptive = kind.load(adaptive_cells, engine, store)
    chose_first = False
    # made before the executor (its worker count is set once that exists): the first choice
    # takes seconds, said as it starts
    progress = Progress(config.env, options.frames, options.workers or 1, enabled=options.progress)
    if len(engine.archive) == 0:
        engine.add_root(local.root())
        row, extra = None, None
        # (the driver's worker has no model: an LLM explorer's run keeps its starting shape)
        if adaptive is not None and adaptive.cells.first_sample and config.explorer == "random":
            progress.note(
                f"choosing the first cells from up to {adaptive.cells.first_sample:,} steps "
                "of play from the start"
            )
            started = time.perf_counter()
            first_choice(engine, adaptive, local, options.frames)
            row = metrics_row(engine, 1, time.perf_counter() - started, len(engine.archive) - 1)
            extra, chose_first = adaptive.extra(), True
        store.commit(engine, row, extra)
    else:
        engine.set_start(local.root())
    engine.archive.snapshots[int(engine.archive.snap[0])]  # a foreign or damaged one: said now
    history = store.metrics()
    last = history[-1] if history else metrics_row(engine, 0, 0.0, 0)
    last.pop("stopped", None)  # why the previous session stopped: not this one's
    if engine.frames >= options.frames:
        return last
    if reached_goal(config, engine):  # stopped on success before: its answer stands
        return {**last, "stopped": GOAL_REACHED}

    factory = functools.partial(Worker.from_config, config, llm=settings)
    # Cells decided in the driver (novelty, learned) are not keys a worker could look up.
    feed = TableFeed(engine.archive) if options.filter and engine.rule is None else None
    executor = make_executor(options.backend, factory, options.workers, options.address,
                             options.deterministic, feed, options.tasks_per_call)  # fmt: skip
    progress.workers = executor.workers
    if chose_first and adaptive is not None:
        progress.note(f"cells chosen: {adaptive.describe()}")
    progress.update(last)
    book = Iterations(store, engine, executor, adaptive, model, progress, last)

    def more() -> bool:
        if engine.frames < options.frames:
            return True
        if model is not None and not model.halted():
            model.halt()  # the run is over: its model roles, in every process, ask no more
        return False

    def goal() -> bool:
        return reached_goal(config, engine)

    stop = _Stop()
    failure: Exception | None = None  # raised once what was merged is committed
    try:
        if drive(engine, executor, None, more, done=goal,
                 on_result=book.on_result, on_failed=book.on_failed,
                 chunk=book.room, guard=stop.merging):  # fmt: skip
            book.stopped = GOAL_REACHED
            progress.note(f"goal reached at {engine.success_frame:,} frames; stopping")
    except KeyboardInterrupt:  # Ctrl-C or SIGTERM (_Stop)
        book.interrupted = True
        engine.abandon_all()
    except CommitFailed as e:
        failure = e  # the store kept its last commit and its queue: stop, do not retry
    except BudgetExhausted as e:
        book.stopped = str(e)
        progress.note(f"{e}: stepstone resume {store.path} --llm-budget N continues the run")
        engine.abandon_all()
    except ModelUnavailable as e:  # committed below; past the frame budget, nothing is lost
        engine.abandon_all()
        if engine.frames < options.frames:
            book.stopped = f"{e}; continue with: stepstone resume {store.path}"
            failure = ModelUnavailable(book.stopped)  # the CLI says it in one line, exit 2
    finally:
        try:
            if not isinstance(failure, CommitFailed) and book.unsaved():
                book.commit()
        finally:
            executor.close()
            if model is not None:
                model.halt(False)  # the switch is for this run's processes, now ended
            local.close()
            progress.close(book.last)
            stop.restore()
    if failure is not None:
        raise failure
    return {**book.last, "interrupted": True} if book.interrupted else book.last


def first_choice(engine: Engine, schedule: Schedule, worker: Worker, frames: int) -> None:
    """Choose a new run's first shape from explorations from its start, every step sampled.

    A shape fixed in advance can put every state in one cell: Centipede's near-black frames
    under 11 x 8 x 8 did, and that cell then kept its best-scoring state, two steps before a
    lost life, so that every later exploration (and sample) was two steps long and the run
    stayed at one cell (bench/README.md, "Atari's default cells on fourteen games"). Random
    play from the start is a fair sample of what the run meets first. The explorations are
    ordinary ones, run here before any worker starts and merged as theirs are; the start
    is offered again under the shape chosen, as its cell may have gone to a better state.
    They stop early at the run's budget of ``frames``."""
    cells = schedule.cells
    # asked together, before any is told: every one starts from the start, the one cell
    tasks = engine.ask(-(-cells.first_sample // worker.config.explore_steps))
    prob, cells.sample_prob = cells.sample_prob, 1.0
    try:
        for task in tasks:
            if engine.frames >= frames:
                engine.abandon(task.task_id)
                continue
            result = worker.run(task)
            assert isinstance(result, Result)  # one archive: adaptive cells are never sharded
            engine.tell(result)
            engine.selector.observe(task, result)
            schedule.recent.extend(result.samples)
    finally:
        cells.sample_prob = prob
    schedule.update()
    assert engine.start is not None
    engine.add_root(engine.start)  # its cell, re-keyed, may be its own again (or not: taken)
    schedule.choices[-1]["cells"] = len(engine.archive)  # the record counts it


class Iterations:
    """Counts merged results and commits one iteration (``config.batch`` explorations) at a
    time with its metrics row, so a crash loses at most the iteration in progress."""

    def __init__(
        self,
        store: RunStore,
        engine: Engine,
        executor: Executor,
        adaptive: Schedule | None,
        model: Any,
        progress: Progress,
        last: dict,
    ):
        self.store, self.engine, self.executor = store, engine, executor
        self.batch = store.config.batch  # (store.config parses the stored JSON each time)
        self.adaptive, self.model, self.progress = adaptive, model, progress
        self.last = last  # the last committed row
        self.iteration = last.get("iteration", 0)
        self.started = time.perf_counter() - last.get("seconds", 0.0)
        self.done = self.new = self.tasks_failed = 0  # in the iteration under way
        # Worker faults of the previous sessions: this session's counts go on top.
        self.faults0 = [last.get(k, 0) for k in ("reissued", "workers_replaced", "tasks_failed")]
        self.stopped: str | None = None  # why the run stops, said in its last row
        self.interrupted = False

    def on_result(self, result: Result, stats: TellStats) -> None:
        self.done += 1
        self.new += stats.new_cells
        if self.adaptive:
            self.adaptive.recent.extend(result.samples)
        if self.done >= self.batch:
            if self.adaptive and self.adaptive.maybe_update():
                self.progress.note(f"cells re-chosen: {self.adaptive.describe()}")
            self.progress.update(self.commit())

    def room(self) -> int:
        """Results the iteration under way still takes before its commit."""
        return self.batch - self.done

    def on_failed(self, task: Task, why: str) -> None:
        self.tasks_failed += 1
        self.progress.note(f"gave up one exploration from cell {task.cell!r}: {why}")

    def unsaved(self) -> bool:
        """Whether anything was merged since the last commit, or the run must say why it stops."""
        return bool(self.done or self.engine.frames != self.last["frames"] or self.stopped)

    def commit(self) -> dict:
        engine, executor = self.engine, self.executor
        self.iteration += 1
        elapsed = time.perf_counter() - self.started
        row = metrics_row(engine, self.iteration, elapsed, self.new)
        row["workers"] = executor.alive
        row["reissued"] = self.faults0[0] + executor.reissued
        row["workers_replaced"] = self.faults0[1] + executor.replaced
        row["tasks_failed"] = self.faults0[2] + self.tasks_failed
        extra = self.adaptive.extra() if self.adaptive else {}
        if engine.rule is not None:
            engine.rule.adapt(self.new, engine.archive)
            if (state := engine.rule.state()) is not None:  # None: unchanged since the last
                extra["cell_rule"] = state
            row.update(engine.rule.metrics())
        if self.model is not None:
            row.update(llm_metrics(self.model))
        if self.stopped:
            row["stopped"] = self.stopped
        self.store.commit(engine, row, extra or None)
        self.done = self.new = 0
        self.last = row
        return row


def reached_goal(config: ExploreConfig, engine: Engine) -> bool:
    """Whether a run that stops on success (``--stop-on-success``) has reached its goal."""
    return config.stop_on_success and engine.success_frame is not None


class _Stop:
    """Ctrl-C and SIGTERM (``kill``, a batch scheduler's stop) end the run with what was merged
    committed, but never inside a merge: Python raises KeyboardInterrupt between any two
    bytecodes, and one that landed inside Engine.tell_many left half a result's counters
    appended and the run ended on a ValueError, uncommitted (a 53M-frame Montezuma run, bench/
    README.md, issue 20, 2026-12-05). A signal during ``merging()`` stops the run as the merge
    ends."""

    def __init__(self) -> None:
        self.inside = False
        self.asked = False
        self.previous: dict[int, Any] = {}
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self._handle)

    def _handle(self, signum, frame) -> None:
        if not self.inside:
            raise KeyboardInterrupt
        self.asked = True

    @contextlib.contextmanager
    def merging(self):
        self.inside = True
        try:
            yield
        finally:
            self.inside = False
        if self.asked:
            raise KeyboardInterrupt

    def restore(self) -> None:
        """Put the previous handlers back."""
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def model_roles(config: ExploreConfig, store: RunStore, options: RunOptions, local: Worker):
    """The run's model client, the settings workers connect with, and the roles built on it:
    {"selector": keyword arguments of a model selector, "judge": the archive filter}."""
    if not config.uses_model:
        return None, None, {}
    from .llm.judge import Judge
    from .llm.memory import Memory
    from .llm.prompts import Prompts
    from .llm.settings import Settings
    from .llm.view import Describer, goal

    settings = replace(
        options.llm or Settings(), model=config.llm_model, cache=store.path / LLM_CACHE
    )
    model = settings.connect()
    model.halt(False)  # a resumed run asks again
    prompts = Prompts(config.llm_prompts)
    task = goal(local.env)
    describe = Describer(local.env)  # restores snapshots in the driver's own environment
    memory = Memory()  # one history for the driver's roles, as IGE keeps one
    roles: dict[str, Any] = {}
    if selectors.uses_model(config.selector):
        roles["selector"] = {"model": model, "goal": task, "prompts": prompts, "describe": describe}
        if config.selector == "ige":
            roles["selector"]["memory"] = memory
    if config.llm_judge:
        roles["judge"] = Judge(model, task, prompts, describe=describe, memory=memory)
    return model, settings, roles


LLM_KEYS = ("llm_calls", "llm_cached", "llm_prompt_tokens", "llm_completion_tokens")


def llm_metrics(model: Any) -> dict:
    """Model calls, tokens and role fallbacks of the whole run so far (all processes)."""
    totals = model.totals()
    row = {k: totals.get(k, 0) for k in LLM_KEYS}
    row["llm_tokens"] = row["llm_prompt_tokens"] + row["llm_completion_tokens"]
    row.update({k: v for k, v in totals.items() if k not in row})
    return row


def run_sharded(store: RunStore, options: RunOptions, local: Worker) -> dict:
    """``run`` with the archive in ``config.shards`` shard processes (shards.py): the same
    loop, iterations, commits and stopping, the coordinator holding per-shard totals only."""
    from .shards import ShardedEngine, check_shardable

    config = store.config
    try:
        check_shardable(config, local)
        pickled = local.env.snapshot_format == "pickle"  # (``run`` signs the coordinator's)
        engine = ShardedEngine(store.path, config, store.state(), pickled, options.trust_run_dir)
    except BaseException:
        local.close()
        raise
    executor = None
    stop: _Stop | None = None
    book: ShardedIterations | None = None
    try:
        if engine.cells == 0:
            engine.add_root(local.root())
            engine.commit_shards()
            store.commit(engine)  # type: ignore[arg-type]
        else:
            engine.set_start(local.root())
        history = store.metrics()
        last = history[-1] if history else sharded_row(engine, 0, 0.0, 0)
        last.pop("stopped", None)
        if engine.frames >= options.frames:
            return last
        if config.stop_on_success and engine.success_frame is not None:
            return {**last, "stopped": GOAL_REACHED}
        factory = functools.partial(Worker.from_config, config)
        feed = engine.feed if options.filter else None
        executor = make_executor(options.backend, factory, options.workers, options.address,
                                 options.deterministic, feed, options.tasks_per_call)  # fmt: skip
        progress = Progress(config.env, options.frames, executor.workers, enabled=options.progress)
        progress.update(last)
        book = ShardedIterations(store, engine, executor, progress, last)  # type: ignore[arg-type]
        stop = _Stop()
        try:
            if drive(engine, executor, None, lambda: engine.frames < options.frames,  # type: ignore[arg-type]
                     done=lambda: config.stop_on_success and engine.success_frame is not None,
                     on_result=book.on_result, on_failed=book.on_failed,
                     chunk=book.room, guard=stop.merging):  # fmt: skip
                book.stopped = GOAL_REACHED
        except KeyboardInterrupt:
            book.interrupted = True
            engine.abandon_all()
        if book.unsaved():
            book.commit()
    finally:
        if book is not None:
            book.progress.close(book.last)
        if stop is not None:
            stop.restore()
        if executor is not None:
            executor.close()
        engine.close()
        local.close()
    return {**book.last, "interrupted": True} if book.interrupted else book.last


def sharded_row(engine: Any, iteration: int, seconds: float, new_cells: int) -> dict:
    """``metrics_row`` of a sharded run, from the shards' totals."""
    return {
        "iteration": iteration,
        "frames": engine.frames,
        "seconds": round(seconds, 3),
        "explorations": engine.explorations,
        "cells": engine.cells,
        "new_cells": new_cells,
        "best_score": engine.best_score(),
        **(engine.places or {"rooms": None, "level": None}),
        "success_frame": engine.success_frame,
        "goal_known": engine.goal_known,
        "shards": engine.k,
    }


class ShardedIterations(Iterations):
    """``Iterations`` whose commit first commits every shard, then the coordinator's store."""

    def __init__(self, store: RunStore, engine: Any, executor: Executor, progress: Progress,
                 last: dict):  # fmt: skip
        super().__init__(store, engine, executor, None, None, progress, last)

    def commit(self) -> dict:
        engine, executor = self.engine, self.executor
        engine.commit_shards()  # type: ignore[attr-defined]
        self.iteration += 1
        row = sharded_row(engine, self.iteration, time.perf_counter() - self.started, self.new)
        row["workers"] = executor.alive
        row["reissued"] = self.faults0[0] + executor.reissued
        row["workers_replaced"] = self.faults0[1] + executor.replaced
        row["tasks_failed"] = self.faults0[2] + self.tasks_failed
        if self.stopped:
            row["stopped"] = self.stopped
        self.store.commit(engine, row)
        self.done = self.new = 0
        self.last = row
        return row
