"""The run directory: a commit round-trips exactly; what was not committed is not there."""

from __future__ import annotations

import json
import shutil
import sqlite3
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.engine import Found, Result
from stepstone.errors import RunDirError
from stepstone.selectors import CountBased
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree

CONFIG = ExploreConfig(env="CartPole-v1")


def explore_a_bit(engine, rounds: int, start: int = 0) -> None:
    rng = np.random.default_rng(start)
    for k in range(rounds):
        for task in engine.ask(2):
            cell = ("cell", int(rng.integers(6)))
            found = [Found(cell, float(rng.integers(3)), 2, f"snap{start}-{k}".encode())]
            engine.tell(
                Result(
                    task.task_id, rng.integers(0, 2, 3).astype(np.uint8), 3, found, seen=[task.cell]
                )
            )


def columns(archive) -> list:
    return [(c, e) for c, e in zip(archive.cells, archive, strict=True)]


def test_commit_round_trip(tmp_path):
    store = RunStore.create(tmp_path / "run", CONFIG)
    engine = store.load_engine(CountBased())
    engine.add_root(Found(("cell", 0), 0.0, 0, b"root"))
    explore_a_bit(engine, 10)
    store.commit(engine, {"iteration": 1, "frames": engine.frames})
    explore_a_bit(engine, 5, start=1)  # a second commit writes only what changed
    store.commit(engine, {"iteration": 2, "frames": engine.frames})
    snaps = {e.snap: engine.archive.snapshots[e.snap] for e in engine.archive}
    paths = {e.cell: engine.trajectories.actions(e.node, e.length).tolist() for e in engine.archive}
    store.close()

    again = RunStore.open(tmp_path / "run")
    assert again.config == CONFIG
    loaded = again.load_engine(CountBased())
    assert columns(loaded.archive) == columns(engine.archive)
    assert loaded.frames == engine.frames and loaded.next_task == engine.next_task
    assert loaded.rng.bit_generator.state == engine.rng.bit_generator.state
    tree = TrajectoryTree(again.nodes)
    for e in loaded.archive:
        assert again.snapshots[e.snap] == snaps[e.snap]
        assert tree.actions(e.node, e.length).tolist() == paths[e.cell]
    assert [m["iteration"] for m in again.metrics()] == [1, 2]


def test_uncommitted_work_is_not_visible(tmp_path):
    store = RunStore.create(tmp_path / "run", CONFIG)
    engine = store.load_engine(CountBased())
    engine.add_root(Found(("cell", 0), 0.0, 0, b"root"))
    explore_a_bit(engine, 3)
    store.commit(engine)
    committed = columns(store.load_archive())
    explore_a_bit(engine, 20, start=5)
    store.db.close()  # the process dies here
    again = RunStore.open(tmp_path / "run")
    assert columns(again.load_archive()) == committed


@pytest.mark.parametrize("make_dir", ["missing", "empty", "garbage", "foreign_sqlite"])
def test_open_refuses_what_is_not_a_run(tmp_path, make_dir):
    d = tmp_path / "d"
    if make_dir != "missing":
        d.mkdir()
    if make_dir == "garbage":
        (d / "run.sqlite").write_bytes(b"\x00garbage" * 500)
    if make_dir == "foreign_sqlite":
        db = sqlite3.connect(d / "run.sqlite")
        db.execute("CREATE TABLE t (x)")
        db.commit()
        db.close()
    with pytest.raises(RunDirError):
        RunStore.open(d)


def test_create_refuses_a_non_empty_directory(tmp_path):
    (tmp_path / "keep.txt").write_text("data")
    with pytest.raises(RunDirError, match="not empty"):
        RunStore.create(tmp_path, CONFIG)
    assert (tmp_path / "keep.txt").read_text() == "data"


def test_a_run_that_lost_its_configuration_is_refused(tmp_path):
    RunStore.create(tmp_path / "d", CONFIG).close()
    db = sqlite3.connect(tmp_path / "d" / "run.sqlite")
    with db:
        db.execute("DELETE FROM meta WHERE key = 'config'")
    db.close()
    with pytest.raises(RunDirError, match="no stored configuration"):
        _ = RunStore.open(tmp_path / "d").config


# -- run directories written before Engine.state() -------------------------------------------
# Written by stepstone at commit 20aca7f (run format 2), as tests/data/README.md says: each
# "start" explored to some frames, and "resumed" is that run resumed further by the same code.
WRITTEN_BEFORE = Path(__file__).parent / "data" / "run_v2"
COMPARED = "cell, idx, score, terminal, length, node, snap, found_frame, times_chosen, " \
    "times_chosen_since_new, times_seen, discoveries, goal"  # fmt: skip


def stored(run, query: str) -> list:
    with sqlite3.connect(run / "run.sqlite") as db:
        return db.execute(query).fetchall()


@pytest.mark.parametrize("name, frames", [("cartpole", 4_000), ("mountaincar", 6_000)])
def test_a_run_written_before_resumes_on_the_same_random_stream_and_replays(
    tmp_path, capsys, monkeypatch, name, frames
):
    """Resumed here, a run directory from the previous code reaches exactly the archive that
    code's own resume reached: the engine state (the generator's included) maps key for key."""
    if name == "mountaincar":  # novelty cells, written before the start kept the reset state
        from stepstone.cells.novelty import NoveltyRule

        today = NoveltyRule.key_for

        def as_written(self, cell, archive, goal=False):  # a state not novel joins its nearest
            key = today(self, cell, archive)
            return self.nearest([cell], archive)[0] if key is None else key

        monkeypatch.setattr(NoveltyRule, "key_for", as_written)
    run, expected = tmp_path / "run", tmp_path / "expected"
    shutil.copytree(WRITTEN_BEFORE / name / "start", run)
    shutil.copytree(WRITTEN_BEFORE / name / "resumed", expected)
    (text,) = stored(run, "SELECT value FROM meta WHERE key = 'engine'")[0]
    store = RunStore.open(run)
    assert store.load_engine(CountBased()).state() == json.loads(text)
    store.close()
    resume = f"resume {run} --frames {frames} --backend inline --no-progress"
    assert main(resume.split()) == 0
    for query in (
        f"SELECT {COMPARED} FROM entries ORDER BY idx",
        "SELECT * FROM nodes ORDER BY id",
        "SELECT * FROM snapshots ORDER BY id",
        "SELECT value FROM meta WHERE key = 'engine' OR key LIKE 'extra:%' ORDER BY key",
    ):
        assert stored(run, query) == stored(expected, query), query
    assert main(["replay", str(run), "--cell", "all"]) == 0


# The entries table as run format 2 wrote it before environment metrics were generic
# (stepstone 0.1.0): level and room as fixed columns, -1 where the environment knew none.
ENTRIES_0_1_0 = """CREATE TABLE entries (cell BLOB PRIMARY KEY, idx INTEGER NOT NULL,
    score REAL NOT NULL, terminal INTEGER NOT NULL,
    length INTEGER NOT NULL, node INTEGER NOT NULL, snap INTEGER NOT NULL,
    found_frame INTEGER NOT NULL, times_chosen INTEGER NOT NULL,
    times_chosen_since_new INTEGER NOT NULL, times_seen INTEGER NOT NULL,
    level INTEGER NOT NULL, room INTEGER NOT NULL, discoveries INTEGER NOT NULL,
    goal INTEGER NOT NULL)"""


def as_written_by_0_1_0(run_dir) -> None:
    """Rewrite a run directory's entries table as stepstone 0.1.0 laid it out."""
    with sqlite3.connect(run_dir / "run.sqlite") as db:
        have = {r[1] for r in db.execute("PRAGMA table_info(entries)")}
        level = "level" if "level" in have else "-1"
        room = "room" if "room" in have else "-1"
        db.execute("ALTER TABLE entries RENAME TO new_entries")
        db.execute(ENTRIES_0_1_0)
        db.execute(
            "INSERT INTO entries SELECT cell, idx, score, terminal, length, node, snap, "
            "found_frame, times_chosen, times_chosen_since_new, times_seen, "
            f"{level}, {room}, discoveries, goal FROM new_entries"
        )
        db.execute("DROP TABLE new_entries")


@pytest.mark.parametrize(
    "env, cells, rooms", [("pitfall", "ram", 2), ("CartPole-v1", "auto", None)]
)
def test_a_run_directory_with_level_and_room_columns_reports_resumes_and_replays(
    tmp_path, capsys, env, cells, rooms
):
    import json

    from stepstone.cli import main

    def report() -> dict:
        capsys.readouterr()
        assert main(["report", str(run), "--json"]) == 0
        return json.loads(capsys.readouterr().out)

    run = tmp_path / "run"
    args = f"explore {env} --cells {cells} --frames 8k --workers 1 --run-dir {run} --no-progress"
    assert main(args.split()) == 0
    before = report()
    as_written_by_0_1_0(run)
    after = report()
    assert after == before
    if rooms is None:
        assert before["rooms"] is None and before["level"] is None
    else:
        assert before["rooms"] >= rooms and before["level"] == 0
        rows = RunStore.open(run).load_archive()
        assert rows.distinct(("level", "room")) == before["rooms"]
    assert main(["resume", str(run), "--frames", "16k", "--workers", "1", "--no-progress"]) == 0
    resumed = report()
    assert resumed["frames"] >= 16_000 and resumed["cells"] >= before["cells"]
    if rooms is not None:
        assert resumed["rooms"] >= before["rooms"]
        with sqlite3.connect(run / "run.sqlite") as db:  # the old columns are still the ones
            names = [r[1] for r in db.execute("PRAGMA table_info(entries)")]
        assert names.count("level") == names.count("room") == 1
    assert main(["replay", str(run), "--cell", "all"]) == 0


class Floors(gym.Env):
    """A tower of floors, ten positions each, that reports its floor as a metric of its own
    (the hook a Gymnasium environment may define; GymEnv forwards it)."""

    def __init__(self):
        self.observation_space = gym.spaces.Discrete(50)
        self.action_space = gym.spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos = 0
        return self.pos, {}

    def step(self, action):
        self.pos = max(0, min(49, self.pos + (1 if action == 1 else -1)))
        return self.pos, 0.0, False, False, {}

    def metrics(self):
        return {"floor": self.pos // 10}


gym.register("TestFloors-v0", entry_point=Floors, max_episode_steps=200)


def test_an_environments_own_metrics_are_stored_in_a_column_of_their_own(tmp_path):
    from stepstone.runner import RunOptions, open_run, run

    store = open_run(ExploreConfig(env="TestFloors-v0", explore_steps=50), tmp_path / "run")
    run(store, RunOptions(frames=6000, workers=1, backend="inline", progress=False))
    store.close()
    archive = RunStore.open(tmp_path / "run").load_archive()
    assert set(archive.metrics) == {"floor"}
    positions = [int(np.frombuffer(e.cell[2], e.cell[0])[0]) for e in archive]  # observations
    assert [e.metrics for e in archive] == [{"floor": p // 10} for p in positions]
    assert archive.highest("floor") == max(positions) // 10 >= 2
    with sqlite3.connect(tmp_path / "run" / "run.sqlite") as db:
        names = [r[1] for r in db.execute("PRAGMA table_info(entries)")]
    assert "floor" in names and "level" not in names and "room" not in names


def test_a_runs_own_lock_is_not_another_writer(tmp_path):
    """A run's own report at its end (lock held by this process) is not "in progress"."""
    from stepstone.store.lock import RunLock, writer

    assert writer(tmp_path) is None  # no lock file
    lock = RunLock(tmp_path).acquire()
    try:
        assert writer(tmp_path) is None
    finally:
        lock.release()
