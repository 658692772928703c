"""The driver loop: engine + executor + run directory + progress, until the frame budget is spent.

This is what ``stepstone explore`` and ``stepstone resume`` run. It keeps every worker busy
(twice as many tasks in flight as workers), merges results as they arrive, and commits one
iteration (``config.batch`` explorations) at a time, so a crash loses at most the iteration in
progress. Ctrl-C commits what has been merged and stops cleanly.
"""

from __future__ import annotations

import functools
import signal
import threading
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from . import selectors
from .cells.dynamic import RecentFrames
from .config import ExploreConfig
from .engine import Engine
from .errors import CommitFailed, RunDirError
from .executors import make as make_executor
from .goals import GOAL_REACHED
from .llm.client import BudgetExhausted, ModelUnavailable
from .progress import Progress
from .store.sqlite import RunStore
from .table import TableFeed
from .worker import Worker

LLM_CACHE = "llm_cache.sqlite"  # model replies and call ledger, in the run directory


@dataclass
class RunOptions:
    """How to run (may differ between a run and its resumption)."""

    frames: int
    workers: int | None = None
    backend: str = "processes"
    progress: bool = True
    address: str | None = None  # Ray cluster address (--backend ray)
    llm: Any = None  # llm.client.Settings: where the model is, its call budget (model runs)
    deterministic: bool = False  # merge results in task order (processes backend)
    trust_run_dir: bool = False  # allow restoring pickled snapshots (--return deepcopy)
    filter: bool = True  # workers ship only cells new or better by their archive table


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
        "rooms": a.rooms(),
        "level": a.max_level(),
        "success_frame": engine.success_frame,
        "goal_known": engine.goal_known,  # False: no goal to reach (the progress line says so)
    }


def open_run(config: ExploreConfig | None, run_dir: Path) -> RunStore:
    """A new run in ``run_dir`` (``config`` given) or the stored one (``config`` None).

    Giving a configuration for a directory that holds a run is allowed only when it is the
    same configuration; otherwise it is refused, never merged.
    """
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
    if getattr(local.env, "snapshot_format", "data") == "pickle":
        store.use_pickled_snapshots(options.trust_run_dir)
    model, settings, roles = model_roles(config, store, options, local)
    engine = store.load_engine(selectors.make(config.selector, **roles.get("selector", {})))
    engine.admit = roles.get("judge")
    engine.reset_on_update = config.reset_on_update
    adaptive = Adaptive(local, engine, store) if local.adaptive else None
    if hasattr(local.cell_fn, "rule"):  # cells decided in the driver: their state is the run's
        engine.rule = local.cell_fn.rule(store.extra("cell_rule"))
    if len(engine.archive) == 0:
        engine.seed(local.root())
        store.commit(engine)
    engine.archive.snapshots[int(engine.archive.snap[0])]  # a foreign or damaged one: said now
    history = store.metrics()
    iteration = history[-1]["iteration"] if history else 0
    seconds = history[-1]["seconds"] if history else 0.0
    last = history[-1] if history else metrics_row(engine, 0, 0.0, 0)
    last.pop("stopped", None)  # why the previous session stopped: not this one's
    if engine.frames >= options.frames:
        return last
    if reached_goal(config, engine):  # stopped on success before: its answer stands
        return {**last, "stopped": GOAL_REACHED}

    factory = functools.partial(Worker.from_config, config, llm=settings)
    # Cells decided in the driver (novelty, learned) are not keys a worker could look up.
    feed = TableFeed(engine.archive) if options.filter and engine.rule is None else None
    executor = make_executor(
        options.backend, factory, options.workers, options.address, options.deterministic, feed
    )
    # Tasks in flight: two a worker keeps each busy. In task order (--deterministic) finished
    # results wait for the slowest one before them, so twice as many keep the workers fed.
    capacity = (4 if options.deterministic else 2) * executor.workers
    progress = Progress(config.env, options.frames, executor.workers, enabled=options.progress)
    progress.update(last)
    started = time.perf_counter() - seconds
    done_in_iteration = new_in_iteration = tasks_failed = 0
    faults0 = [last.get(k, 0) for k in ("reissued", "workers_replaced", "tasks_failed")]
    stopped: str | None = None
    interrupted = False
    failed_commit: Exception | None = None

    def commit_iteration() -> dict:
        nonlocal iteration, done_in_iteration, new_in_iteration
        iteration += 1
        row = metrics_row(engine, iteration, time.perf_counter() - started, new_in_iteration)
        row["workers"] = executor.alive
        # Worker faults over the whole run: this session's counts on top of the previous ones.
        row["reissued"] = faults0[0] + getattr(executor, "reissued", 0)
        row["workers_replaced"] = faults0[1] + getattr(executor, "replaced", 0)
        row["tasks_failed"] = faults0[2] + tasks_failed
        extra = adaptive.extra() if adaptive else {}
        if engine.rule is not None:
            engine.rule.adapt(new_in_iteration, engine.archive)
            if (state := engine.rule.state()) is not None:  # None: unchanged since the last
                extra["cell_rule"] = state
            row.update(engine.rule.metrics())
        if model is not None:
            row.update(llm_metrics(model))
        if stopped:
            row["stopped"] = stopped
        store.commit(engine, row, extra or None)
        done_in_iteration = new_in_iteration = 0
        return row

    restore_sigterm = _stop_on_sigterm()
    observe = getattr(engine.selector, "observe", None)
    failure: ModelUnavailable | None = None
    try:
        while engine.frames < options.frames or executor.in_flight:
            submitting = engine.frames < options.frames
            if not submitting and model is not None and not model.halted():
                model.halt()  # the run is over: its model roles, in every process, ask no more
            want = capacity - executor.in_flight
            if want > 0 and submitting:
                for task in engine.ask(want):
                    executor.submit(task)
            results = executor.poll(timeout=1.0)
            for task, why in _drain(getattr(executor, "failed", None)):
                engine.abandon(task.task_id)
                tasks_failed += 1
                progress.note(f"gave up one exploration from cell {task.cell!r}: {why}")
            while results:  # merged in batches that end where an iteration does
                batch = results[: config.batch - done_in_iteration]
                results = results[len(batch) :]
                asked = [engine.pending.get(r.task_id) for r in batch]
                for result, was, stats in zip(batch, asked, engine.tell_many(batch), strict=True):
                    if was is not None and observe is not None:
                        observe(was, result)  # the ige selector notes the actions tried
                    new_in_iteration += stats.new_cells
                    if adaptive:
                        adaptive.recent.extend(result.samples)
                done_in_iteration += len(batch)
                if done_in_iteration >= config.batch:
                    if adaptive and adaptive.maybe_update():
                        progress.note(f"cells re-chosen: {adaptive.describe()}")
                    last = commit_iteration()
                    progress.update(last)
            if reached_goal(config, engine):
                stopped = GOAL_REACHED
                progress.note(f"goal reached at {engine.success_frame:,} frames; stopping")
                for task_id in list(engine.pending):  # results still running are not needed
                    engine.abandon(task_id)
                break
    except KeyboardInterrupt:
        interrupted = True
        for task_id in list(engine.pending):
            engine.abandon(task_id)
    except CommitFailed as e:
        failed_commit = e  # the store kept its last commit and its queue: stop, do not retry
    except BudgetExhausted as e:
        stopped = str(e)
        progress.note(f"{e}: stepstone resume {store.path} --llm-budget N continues the run")
        for task_id in list(engine.pending):
            engine.abandon(task_id)
        last = {**last, "stopped": stopped}  # commit below even if nothing was merged
    except ModelUnavailable as e:  # committed below; past the frame budget, nothing is lost
        for task_id in list(engine.pending):
            engine.abandon(task_id)
        if engine.frames < options.frames:
            failure = e
            stopped = f"{e}; continue with: stepstone resume {store.path}"
            last = {**last, "stopped": stopped}
    finally:
        try:
            if failed_commit is None and (
                done_in_iteration or engine.frames != last["frames"] or stopped
            ):
                last = commit_iteration()
        finally:
            executor.close()
            if model is not None:
                model.halt(False)  # the switch is for this run's processes, now ended
            local.close()
            progress.close(last)
            restore_sigterm()
    if failed_commit is not None:
        raise failed_commit
    if failure is not None:
        raise ModelUnavailable(stopped)  # committed: the CLI says it in one line, exit 2
    if interrupted:
        last = {**last, "interrupted": True}
    return last


def _drain(items: list | None) -> list:
    """Take everything out of an executor's list (tasks it gave up)."""
    if not items:
        return []
    out = items[:]
    items.clear()
    return out


def reached_goal(config: ExploreConfig, engine: Engine) -> bool:
    """Whether a run that stops on success (``--stop-on-success``) has reached its goal."""
    return config.stop_on_success and engine.success_frame is not None


def _stop_on_sigterm():
    """Make SIGTERM (``kill``, a batch scheduler's stop) end the run as Ctrl-C does, with what
    was merged committed; return what puts the previous handler back."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    return lambda: signal.signal(signal.SIGTERM, previous)


def model_roles(config: ExploreConfig, store: RunStore, options: RunOptions, local: Worker):
    """The run's model client, the settings workers connect with, and the roles built on it:
    {"selector": keyword arguments of a model selector, "judge": the archive filter}."""
    if not config.uses_model:
        return None, None, {}
    from .llm.client import Settings
    from .llm.judge import Judge
    from .llm.memory import Memory
    from .llm.prompts import Prompts
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
    if config.selector in selectors.MODEL_SELECTORS:
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


class Adaptive:
    """Re-chooses the parameters of an adaptive cell function (dynamic downscaling) in a run."""

    def __init__(self, worker: Worker, engine: Engine, store: RunStore):
        self.cells = worker.cell_fn
        self.engine = engine
        if engine.cell_shape is None:
            engine.cell_shape = self.cells.shape
        self.cells.set_shape(engine.cell_shape)
        self.last_update = store.extra("cell_update_frame")
        self.recent = RecentFrames(self.cells.max_samples, seed=store.config.seed)

    def maybe_update(self) -> bool:
        e = self.engine
        if not self.cells.due(e.frames, self.last_update, len(e.archive)):
            return False
        rng = np.random.default_rng([e.frames, len(e.archive)])
        shape = self.cells.choose(self.recent.decoded(), rng)
        self.cells.set_shape(shape)
        e.rekey(shape, self.cells.key_from_source)
        self.last_update = e.frames
        self.recent.items.clear()
        return True

    def describe(self) -> str:
        assert self.engine.cell_shape is not None  # set in __init__
        w, h, d = self.engine.cell_shape
        return f"{w}x{h} with {d} levels, {len(self.engine.archive)} cells"

    def extra(self) -> dict:
        return {"cell_update_frame": self.last_update}
