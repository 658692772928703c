"""Workers filtering their findings by a copy of the archive table: fewer bytes, same run."""

from __future__ import annotations

import pickle
import sqlite3
import subprocess

import numpy as np
import pytest
from runs import cli

from stepstone.archive import Archive, better
from stepstone.config import ExploreConfig
from stepstone.engine import Engine, Found, Result
from stepstone.executors import InlineExecutor
from stepstone.selectors import CountBased
from stepstone.table import CellTable, TableFeed
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker

MONTEZUMA = ExploreConfig(env="ALE/MontezumaRevenge-v5", cells="ram", seed=3)


def explore(worker: Worker, tasks: int, lag: int | None) -> tuple[Engine, int]:
    """Run ``tasks`` explorations inline; the worker's table is brought up to date every
    ``lag`` tasks (None: never, the worker keeps an empty table). Returns the engine and the
    bytes of all results."""
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=7)
    engine.add_root(worker.root())
    worker.table = CellTable()
    feed = TableFeed(engine.archive)
    known = None
    size = done = 0
    while done < tasks:
        for task in engine.ask(4):
            if lag is not None and done % lag == 0:
                task, known = feed.attach(task, known)
            result = worker.run(task)
            size += len(pickle.dumps(result, protocol=5))
            engine.tell(result)
            done += 1
    return engine, size


def state(engine: Engine) -> tuple:
    a = engine.archive
    n = len(a)
    columns = {k: v for k, v in vars(a).items() if isinstance(v, np.ndarray)}
    return (
        list(a.cells),
        {k: v[:n].tolist() for k, v in columns.items()},
        sorted(a.snapshots),  # (their bytes hold the emulator's RNG, which runs on)
        engine.frames,
        {k: repr(v) for k, v in engine.trajectories.nodes.items()},
    )


@pytest.fixture(scope="module")
def worker() -> Worker:
    w = Worker.from_config(MONTEZUMA)
    yield w
    w.close()


def test_a_filtered_run_equals_an_unfiltered_one_with_fresh_stale_or_empty_tables(worker):
    plain, plain_bytes = explore(worker, 120, None)
    fresh, fresh_bytes = explore(worker, 120, 1)
    stale, stale_bytes = explore(worker, 120, 7)
    assert state(fresh) == state(plain)  # entries, counters (times_seen too), trajectories
    assert state(stale) == state(plain)
    assert len(plain.archive) > 10
    # The point of it: most found cells are known already, and their snapshots stay home.
    assert fresh_bytes < plain_bytes / 3
    assert fresh_bytes <= stale_bytes < plain_bytes


def test_deltas_carry_only_changed_entries_and_a_rekeying_resends_everything():
    a = Archive()
    for c in "abc":
        a.offer(c, 1.0, 5, 0, b"s", source=c.encode())
    feed = TableFeed(a, every=1)
    full = feed.delta(None)
    assert full is not None and full.unpack()[0] == ["a", "b", "c"] and full.since == 0
    held = (full.epoch, full.version)
    assert feed.delta(held) is None  # nothing changed
    a.offer("b", 2.0, 9, 0, b"s", source=b"b")  # improved
    a.offer("c", 0.0, 1, 0, b"s", source=b"c")  # rejected: no change
    a.offer("d", 0.0, 1, 0, b"s", source=b"d")  # new
    d = feed.delta(held)
    assert d is not None and d.unpack()[0] == ["b", "d"] and d.unpack()[1].tolist() == [2.0, 0.0]
    assert feed.delta(held) is d  # built once for every worker as far behind
    table = CellTable()
    table.apply(full)
    table.apply(d)
    assert table.entries == {
        "a": (1.0, 5, False), "b": (2.0, 9, False), "c": (1.0, 5, False), "d": (0.0, 1, False)
    }  # fmt: skip
    a.rekey(lambda source: "x")  # every entry merges into one cell: a new key space
    d = feed.delta((d.epoch, d.version))
    assert d is not None and d.since == 0 and d.unpack()[0] == ["x"] and d.epoch == full.epoch + 1
    table.apply(d)
    assert table.entries == {"x": (2.0, 9, False)}


def test_dropped_cells_still_tell_the_engine_that_a_goal_applies_and_was_reached():
    table = CellTable()
    table.entries = {"a": (10.0, 1, False), "b": (10.0, 1, True), "c": (10.0, 1, False)}
    found = [
        Found("a", 0.0, 3, b"A", success=False),
        Found("b", 0.0, 3, b"B", success=True),
        Found("c", 0.0, 3, b"C", success=False),
        Found("new", 0.0, 3, b"N", success=False),
    ]
    kept = table.filter(found, 0.0, 0)
    assert [(f.cell, f.snapshot) for f in kept] == [("new", b"N"), ("b", b"")]
    for told in (found, kept):
        e = Engine(Archive(), TrajectoryTree(), CountBased())
        e.add_root(Found("root", 0.0, 0, b"R"))
        (task,) = e.ask(1)
        for cell, (score, length, goal) in table.entries.items():
            e.archive.offer(cell, score, length, 0, b"old", goal=goal)
        e.tell(Result(task.task_id, np.zeros(3, np.uint8), 3, list(told)))
        assert (e.goal_known, e.success_frame, len(e.archive)) == (True, 3, 5)


@pytest.mark.parametrize("every", [1, 16])
def test_the_inline_executor_keeps_the_worker_table_current(worker, every):
    """Current to the last ``every`` changes, and never ahead of the archive."""
    engine = Engine(Archive(), TrajectoryTree(), CountBased(), seed=1)
    engine.add_root(worker.root())
    ex = InlineExecutor(lambda: worker, TableFeed(engine.archive, every))
    for _ in range(10):
        for task in engine.ask(2):
            ex.submit(task)
        while ex.in_flight:
            for r in ex.poll():
                engine.tell(r)
    ex.submit(engine.ask(1)[0])
    ex.poll()  # the table is brought up to date as the task is sent
    a = engine.archive
    held = worker.table.entries
    lagging = 0
    for cell, i in a.index.items():
        now = (float(a.score[i]), int(a.length[i]), bool(a.goal[i]))
        if held.get(cell) != now:
            lagging += 1
            assert cell not in held or better(*now[:2], *held[cell][:2], now[2], held[cell][2])
    assert len(held) > 5 and lagging < every


def test_two_worker_processes_filtering_give_the_run_they_give_without(tmp_path):
    """--deterministic at 2 workers: the process executor's per-worker tables change nothing
    the run directory holds (entries, counters, trajectories), only the bytes sent."""
    dbs = []
    for flag in ("", "--no-filter"):
        run = tmp_path / (flag or "filtered")
        cmd = cli(f"explore montezuma --cells ram --frames 20k --workers 2 --deterministic "
                  f"--run-dir {run} --no-progress {flag}")  # fmt: skip
        assert subprocess.run(cmd, capture_output=True, timeout=300).returncode == 0
        with sqlite3.connect(run / "run.sqlite") as db:
            entries = db.execute("SELECT * FROM entries ORDER BY idx").fetchall()
            nodes = db.execute("SELECT * FROM nodes").fetchall()
        dbs.append((entries, sorted(nodes)))
    assert dbs[0] == dbs[1] and len(dbs[0][0]) > 10
