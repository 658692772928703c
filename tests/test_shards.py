"""Archive shards (--shards K): every cell in exactly one shard, trajectories that replay across
shards, resume, refusals, readers of a sharded run directory, and results merged at most once."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from dataclasses import dataclass

import pytest

from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.errors import ConfigError, RunDirError, StepstoneError
from stepstone.shards import SHARDS_DIR, Parts, ShardedEngine, ShardFeed, ShardTables, shard_of
from stepstone.store.sqlite import RunStore, decode_cell
from stepstone.worker import Worker

CORRIDOR = "UserCorridor-v0"


@dataclass
class _Task:
    """What ShardFeed.attach needs of a task."""

    table: object = None


def explore(module: str, run_dir, frames: str = "6k", *extra: str, how: str = "replay") -> int:
    return main([
        "explore", CORRIDOR, "--import", module, "--frames", frames, "--workers", "1",
        "--return", how, "--goal", "terminated", "--run-dir", str(run_dir),
        "--no-progress", "--shards", "2", *extra,
    ])  # fmt: skip


def shard_cells(run_dir, k: int) -> list[dict]:
    """Each shard store's committed cell -> (score, length)."""
    out = []
    for i in range(k):
        with sqlite3.connect(run_dir / SHARDS_DIR / str(i) / "run.sqlite") as db:
            rows = db.execute("SELECT cell, score, length FROM entries").fetchall()
        out.append({decode_cell(c): (s, n) for c, s, n in rows})
    return out


def shard_counters(run_dir, k: int) -> tuple[int, int]:
    """The committed ``discoveries`` and ``new_finds`` summed over every shard's cells."""
    sums = [0, 0]
    for i in range(k):
        with sqlite3.connect(run_dir / SHARDS_DIR / str(i) / "run.sqlite") as db:
            row = db.execute("SELECT sum(discoveries), sum(new_finds) FROM entries").fetchone()
        sums = [sums[0] + (row[0] or 0), sums[1] + (row[1] or 0)]
    return sums[0], sums[1]


def summary(capsys, run_dir) -> dict:
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_shard_of_is_the_same_in_every_process_and_spreads_cells():
    cells = [(0, 1, i) for i in range(200)] + [f"room {i}" for i in range(100)]
    here = [shard_of(c, 3) for c in cells]
    code = f"from stepstone.shards import shard_of; print([shard_of(c, 3) for c in {cells!r}])"
    env = {**os.environ, "PYTHONHASHSEED": "123"}  # Python's own hash() would change
    there = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                           text=True, check=True).stdout  # fmt: skip
    assert eval(there) == here
    assert all(here.count(i) > 60 for i in range(3))


def test_a_sharded_run_keeps_each_cell_in_one_shard_and_replays_across_shards(
    user_env_module, tmp_path, capsys
):
    run = tmp_path / "run"
    assert explore(user_env_module, run, "20k") == 0
    parts = shard_cells(run, 2)
    assert not set(parts[0]) & set(parts[1])
    for i, part in enumerate(parts):
        assert part and all(shard_of(c, 2) == i for c in part)
    s = summary(capsys, run)
    # The corridor's end is reached only through cells of both shards: trajectories cross.
    assert s["cells"] == len(parts[0]) + len(parts[1]) == 40
    assert s["best_score"] == 1.0 and s["success"] is True
    assert main(["replay", str(run), "--cell", "all"]) == 0  # every cell: its cell and score
    assert "40 trajectories replayed" in capsys.readouterr().out
    # A run directory without shards is as it was: no shards field, no shards directory.
    assert explore(user_env_module, tmp_path / "one", "1k", "--shards", "1") == 0
    store = RunStore.open(tmp_path / "one")
    assert "shards" not in json.loads(store.meta("config"))
    assert not (tmp_path / "one" / SHARDS_DIR).exists()
    store.close()


@pytest.mark.parametrize("how", ["replay", "deepcopy"])  # deepcopy: signed pickled snapshots
def test_a_sharded_run_resumes_keeping_every_cell(user_env_module, tmp_path, capsys, how):
    run = tmp_path / "run"
    assert explore(user_env_module, run, "2k", how=how) == 0
    before = shard_cells(run, 2)
    first = summary(capsys, run)
    assert main(["resume", str(run), "--frames", "6k", "--no-progress"]) == 0
    after = shard_cells(run, 2)
    for b, a in zip(before, after, strict=True):
        assert set(b) <= set(a)  # nothing lost; entries only improve
        assert all(a[c][0] >= b[c][0] for c in b)
    s = summary(capsys, run)
    assert s["frames"] >= 6000 > first["frames"] and s["iterations"] > first["iterations"]
    assert s["cells"] == sum(map(len, after))
    assert main(["replay", str(run), "--cell", "all"]) == 0


def test_another_sharding_or_a_damaged_shard_is_refused_in_one_line(
    user_env_module, tmp_path, capsys
):
    run = tmp_path / "run"
    assert explore(user_env_module, run, "1k") == 0
    capsys.readouterr()
    assert explore(user_env_module, run, "2k", "--shards", "3") == 2
    err = capsys.readouterr().err
    assert "shards: stored 2, given 3" in err and f"stepstone resume {run}" in err
    assert len(err.strip().splitlines()) == 1
    # A shard's store that says it belongs to another sharding.
    with sqlite3.connect(run / SHARDS_DIR / "1" / "run.sqlite") as db:
        db.execute("UPDATE meta SET value = '1/3' WHERE key = 'shard'")
    assert main(["resume", str(run), "--frames", "2k", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "another sharding" in err and "restore it from a backup" in err
    # A shard store gone.
    (run / SHARDS_DIR / "1" / "run.sqlite").rename(tmp_path / "moved")
    assert main(["resume", str(run), "--frames", "2k", "--no-progress"]) == 2
    assert "damaged" in capsys.readouterr().err
    with pytest.raises(RunDirError, match="shards"):
        RunStore.open(run).load_archive()


@pytest.mark.parametrize(
    "option, value", [("selector", "knapsack"), ("selector", "novelty"), ("cells", "dynamic")]
)
def test_what_sharding_would_silently_change_is_refused(option, value):
    with pytest.raises(ConfigError, match="drop --shards"):
        ExploreConfig(env="CartPole-v1", shards=2, **{option: value})
    with pytest.raises(ConfigError, match="--shards must be >= 1"):
        ExploreConfig(env="CartPole-v1", shards=0)


@pytest.mark.parametrize("selector", ["count", "seen", "uniform"])
def test_selectors_whose_weight_is_a_cells_own_are_sharded(selector):
    assert ExploreConfig(env="CartPole-v1", cells="observation", shards=2, selector=selector)


def test_a_result_is_merged_once_and_a_killed_shard_resumes_from_its_store(
    user_env_module, tmp_path
):
    run = tmp_path / "run"
    assert explore(user_env_module, run, "200", "--explore-steps", "5") == 0  # cells left
    store = RunStore.open(run, write=True)
    config = store.config
    worker = Worker.from_config(config)
    engine = ShardedEngine(run, config, store.state())
    try:
        before = shard_counters(run, 2)
        tasks = engine.ask(6)
        results = [worker.run(t) for t in tasks]
        assert all(isinstance(r, Parts) for r in results)  # split by the worker
        explorations, frames = engine.explorations, engine.frames
        stats = engine.tell_many(results)
        assert not any(s.duplicate for s in stats)
        cells = engine.cells
        again = engine.tell_many(results)  # a re-issued task's second answer
        assert all(s.duplicate for s in again)
        assert (engine.cells, engine.explorations) == (cells, explorations + 6)
        assert engine.frames == frames + sum(r.frames for r in results)
        engine.commit_shards()
        committed = shard_cells(run, 2)
        # Each exploration counted once against the cell it started from, whichever shards
        # took what it found (the others learn it by credits, delivered at the commit).
        found = sum(bool(s.new_cells or s.improved) for s in stats)
        added = sum(bool(s.new_cells) for s in stats)
        assert shard_counters(run, 2) == (before[0] + found, before[1] + added) and added > 0
        engine.procs[1].kill()
        engine.procs[1].join()
        with pytest.raises(StepstoneError, match="shard 1 stopped.*stepstone resume"):
            engine.tell_many([worker.run(t) for t in engine.ask(8)])
    finally:
        engine.close()
    again_engine = ShardedEngine(run, config, store.state())
    try:
        assert again_engine.cells == sum(map(len, committed))
        again_engine.tell_many([worker.run(t) for t in again_engine.ask(4)])
    finally:
        again_engine.close()
        worker.close()
        store.close()


def test_workers_filter_by_each_shards_table():
    """A worker holding the shards' tables ships only cells new or better by them."""
    from stepstone.archive import Archive
    from stepstone.engine import Found
    from stepstone.table import TableFeed

    cells = [(0, i) for i in range(40)]
    archives = [Archive(), Archive()]
    for c in cells:
        archives[shard_of(c, 2)].offer(c, 5.0, 10, 0, b"s", 0)
    feed = ShardFeed(2)
    for i, a in enumerate(archives):
        feed.log[i].append(TableFeed(a).delta(None))
    task, known = feed.attach(_Task(), None)
    assert known == (1, 1)
    assert feed.attach(task, known) == (task, known)  # up to date: nothing more sent
    table = ShardTables(2)
    table.apply(task.table)
    found = [Found(c, r, 1, b"x") for c in cells[:4] for r in (1.0, 9.0)] + [
        Found((9, 9), 0.0, 1, b"x")
    ]
    kept = table.filter(found, 0.0, 0)
    assert {(f.cell, f.reward) for f in kept} == {(c, 9.0) for c in cells[:4]} | {((9, 9), 0.0)}


def test_ctrl_c_to_the_whole_process_group_commits_and_the_run_resumes(
    user_env_module, tmp_path, capsys
):
    """A terminal's Ctrl-C reaches the shard processes too: they leave the stopping to the
    coordinator, which commits through them."""
    from runs import cli, ctrl_c_default, iterations, wait_for

    run = tmp_path / "run"
    args = (f"explore {CORRIDOR} --import {user_env_module} --frames 5M --workers 1 --return "
            f"replay --run-dir {run} --no-progress --shards 2")  # fmt: skip
    proc = subprocess.Popen(cli(args), start_new_session=True, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True,
                            preexec_fn=ctrl_c_default)  # fmt: skip
    try:
        wait_for(lambda: iterations(run) >= 2, 60)
        os.killpg(proc.pid, 2)  # SIGINT to the group, as a terminal sends it
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "everything merged is committed" in err, err
    stopped = summary(capsys, run)
    assert 0 < stopped["frames"] < 5_000_000
    assert stopped["cells"] == sum(map(len, shard_cells(run, 2)))
    frames = stopped["frames"] + 2_000
    assert main(["resume", str(run), "--frames", str(frames), "--no-progress"]) == 0
    assert summary(capsys, run)["frames"] >= frames


def test_adaptive_cells_with_shards_are_refused_before_the_run_directory_is_written(
    tmp_path, capsys
):
    run = tmp_path / "run"
    argv = ["explore", "CartPole-v1", "--cells", "bins", "--frames", "1k", "--run-dir", str(run),
            "--no-progress", "--shards", "2"]  # fmt: skip
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "--cells bins are re-chosen" in err and "drop --shards" in err
    assert len(err.strip().splitlines()) == 1
    assert not run.exists()  # nothing written: the same command without --shards starts anew
    assert main(argv[:-2]) == 0


def test_a_sharded_run_whose_entries_all_end_episodes_explores_from_reset(
    user_env_module, tmp_path
):
    """As unsharded runs do (engine.py, Engine.ask), fresh and resumed: drawn among terminal
    entries, explorations step finished episodes and scores climb past 1."""
    run = tmp_path / "run"
    common = ["--workers", "1", "--no-progress"]
    assert main(["explore", "UserSquares-v0", "--import", user_env_module, "--frames", "500",
                 "--shards", "2", "--run-dir", str(run), *common]) == 0  # fmt: skip
    for resumed in (False, True):
        if resumed:
            assert main(["resume", str(run), "--frames", "3k", *common]) == 0
        shards = [list(s.values()) for s in shard_cells(run, 2)]
        assert all(shards) and sum(shards, []) == [(1.0, 1)] * 6  # each square in one step
