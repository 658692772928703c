"""The worker's inner loop: what an exploration reports back to the engine."""

from __future__ import annotations

import importlib

import gymnasium as gym
import pytest
from gymnasium import spaces

from stepstone.archive import Archive
from stepstone.config import ExploreConfig
from stepstone.engine import Engine
from stepstone.errors import ConfigError
from stepstone.selectors import Uniform
from stepstone.trajectories import TrajectoryTree
from stepstone.worker import Worker


class Ledge(gym.Env):
    """A line of squares; stepping right past square 5 is fatal, but the life is taken only
    three steps later (squares 6-8 are the 'death animation'), as Atari games do."""

    def __init__(self):
        self.observation_space = spaces.Discrete(20)
        self.action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.lives = 0, 3
        return self.pos, {"lives": self.lives}

    def step(self, action):
        if self.pos > 5:  # falling: no control
            self.pos += 1
        else:
            self.pos = max(0, self.pos + (1 if action == 1 else -1))
        if self.pos == 9:
            self.pos, self.lives = 0, self.lives - 1
        return self.pos, 0.0, self.lives == 0, False, {"lives": self.lives}


gym.register("TestLedge-v0", entry_point=Ledge)


def explored(config: ExploreConfig) -> tuple[Worker, Engine]:
    """A worker and the engine it explored with for 20,000 frames, in this process."""
    worker = Worker.from_config(config)
    engine = Engine(Archive(), TrajectoryTree(), Uniform())
    engine.add_root(worker.root())
    while engine.frames < 20_000:
        for task in engine.ask(4):
            engine.tell(worker.run(task))
    return worker, engine


def explore(death_window: int) -> set:
    config = ExploreConfig("TestLedge-v0", death_window=death_window, explore_steps=1000)
    _, engine = explored(config)
    return {int.from_bytes(c[2], "little") for c in engine.archive.cells}


def test_cells_reached_while_dying_are_not_kept():
    assert explore(death_window=0) == set(range(9))  # the dying squares 6-8 got in
    assert explore(death_window=3) == set(range(6))


def test_a_time_limit_is_not_the_goal_terminated(user_env_module):
    """Gymnasium's ``truncated`` (a time limit) is not ``terminated``: --goal terminated was
    reached by every truncation (a corridor "solved" at 60 frames, its end first reached at
    106), its states then winning every cell as goal states, all terminal. Here the
    corridor's end (terminated) is 39 steps away and its time limit 10."""
    importlib.import_module(user_env_module)
    corridor = gym.spec("UserCorridor-v0").entry_point
    gym.register("UserShortCorridor-v0", entry_point=corridor, max_episode_steps=10)
    config = ExploreConfig("UserShortCorridor-v0", goal="terminated", explore_steps=50)
    _, engine = explored(config)
    a = engine.archive
    assert engine.success_frame is None and not a.goal[: len(a)].any()
    ended = a.terminal[: len(a)]
    assert ended.any() and not ended.all()  # the time limit's states end episodes, no more
    assert sorted(int.from_bytes(c[2], "little") for c in a.cells) == list(range(11))


class OneShot(gym.Env):
    """One step an episode, paying 1 for action 1; the screen never changes. Its one cell's
    best state is soon the terminal one, so every entry ends an episode."""

    def __init__(self):
        self.observation_space = spaces.Discrete(1)
        self.action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        return 0, {}

    def step(self, action):
        return 0, float(action), True, False, {}  # stepped again, it would pay again


gym.register("TestOneShot-v0", entry_point=OneShot)


def test_when_every_entry_ends_an_episode_explorations_start_from_reset():
    """Exploring on from a terminal state steps past the episode's end: drawn among terminal
    entries, the one cell's score climbed 1, 2, 3... with trajectories no episode can take."""
    worker, engine = explored(ExploreConfig("TestOneShot-v0", explore_steps=5))
    a = engine.archive
    assert len(a) == 1 and a.terminal[0]
    assert (a.score[0], a.length[0]) == (1.0, 1)  # one step, paid once: all an episode holds
    assert engine.explorations > 1_000  # explored on, from reset


def test_a_resumed_run_starts_from_reset_too(tmp_path):
    from stepstone.cli import main
    from stepstone.store.sqlite import RunStore

    run = str(tmp_path / "run")
    common = ["--workers", "1", "--backend", "inline", "--no-progress"]
    assert main(["explore", "TestOneShot-v0", "--frames", "500", "--run-dir", run, *common]) == 0
    assert main(["resume", run, "--frames", "2k", *common]) == 0
    a = RunStore.open(run).load_archive()
    assert len(a) == 1 and (a.score[0], a.length[0]) == (1.0, 1)


def test_negative_death_window_is_refused():
    with pytest.raises(ConfigError, match="--death-window"):
        ExploreConfig("TestLedge-v0", death_window=-1)


def test_a_snapshot_that_cannot_be_restored_names_both_causes():
    """Garbled bytes or an environment failing while it replays look the same to the worker:
    the error names both and what to do for each, not only 'restore a backup'."""
    import dataclasses

    from stepstone.errors import RunDirError

    worker = Worker.from_config(ExploreConfig("TestLedge-v0"))
    engine = Engine(Archive(), TrajectoryTree(), Uniform())
    engine.add_root(worker.root())
    (task,) = engine.ask(1)
    with pytest.raises(RunDirError, match="environment failed while returning.*resume.*damaged"):
        worker.run(dataclasses.replace(task, snapshot=b"\xff not a snapshot"))


class Drifting(gym.Env):
    """A line whose step size changes between episodes (a page that does not load the same
    way twice): replaying an episode's actions lands elsewhere."""

    episodes = 0

    def __init__(self):
        self.observation_space = spaces.Discrete(100)
        self.action_space = spaces.Discrete(2)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        Drifting.episodes += 1
        self.pos, self.stride = 0, 1 + Drifting.episodes % 2
        return self.pos, {}

    def step(self, action):
        self.pos = min(99, self.pos + self.stride * action)
        return self.pos, float(action), False, False, {}


gym.register("TestDrifting-v0", entry_point=Drifting)


def test_a_return_by_replay_that_lands_elsewhere_is_not_explored_from():
    """Exploring from the wrong state would credit what it finds with the chosen cell's score
    and length: the worker reports the miss instead, and the engine counts it."""
    worker = Worker.from_config(ExploreConfig("TestDrifting-v0", return_method="replay"))
    engine = Engine(Archive(), TrajectoryTree(), Uniform())
    engine.add_root(worker.root())
    missed = 0
    for _ in range(30):
        for task in engine.ask(2):
            result = worker.run(task)
            if result.missed:
                assert result.found == [] and result.frames == task.length
            missed += result.missed
            engine.tell(result)
    assert missed > 0 and engine.missed_returns == missed
    assert engine.state()["missed_returns"] == missed
    again = Engine.from_state(engine.state(), engine.archive, engine.trajectories, Uniform())
    assert again.missed_returns == missed
    root_only = Engine(Archive(), TrajectoryTree(), Uniform())
    assert "missed_returns" not in root_only.state()  # states without misses stay as they were


def test_worker_process_uses_one_blas_thread():
    """A worker is one process on one core: numpy's BLAS threads, in every worker at once,
    oversubscribe the cores (a dynamic 4 x 30 shape ran 7x slower with 2 workers on 2 cores)."""
    import os
    import subprocess
    import sys

    code = (
        "import numpy\n"
        "from threadpoolctl import threadpool_info\n"
        "before = max(i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas')\n"
        "from stepstone.config import ExploreConfig\n"
        "from stepstone.worker import Worker\n"
        "Worker.from_config(ExploreConfig(env='CartPole-v1'))\n"
        "after = [i['num_threads'] for i in threadpool_info() if i['user_api'] == 'blas']\n"
        "print(before, max(after))\n"
    )
    env = {k: v for k, v in os.environ.items() if not k.endswith("_NUM_THREADS")}
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         check=True).stdout.split()  # fmt: skip
    before, after = int(out[0]), int(out[1])
    if before == 1:
        pytest.skip("numpy's BLAS has one thread here already (one core)")
    assert after == 1


class Coin(gym.Env):
    """Ten squares and a coin at square 3, taken with action 2 (reward 1, once). The
    observation is the square only: with or without the coin, square 7 looks the same."""

    def __init__(self):
        self.observation_space = spaces.Discrete(10)
        self.action_space = spaces.Discrete(3)

    def reset(self, seed=None, options=None):
        super().reset(seed=seed)
        self.pos, self.coin = 0, False
        return self.pos, {}

    def step(self, action):
        reward = 0.0
        if action == 2 and self.pos == 3 and not self.coin:
            self.coin, reward = True, 1.0
        elif action < 2:
            self.pos = max(0, min(9, self.pos + (1 if action == 1 else -1)))
        return self.pos, reward, False, False, {}


gym.register("TestCoin-v0", entry_point=Coin, max_episode_steps=200)


def coin_archive(score_cells: bool) -> tuple[Worker, Engine]:
    return explored(ExploreConfig("TestCoin-v0", score_cells=score_cells, explore_steps=30))


def test_score_cells_keep_each_square_with_and_without_the_coin():
    """Without the score a square holds its best entry only, the one with the coin; with it
    each square is two cells, and every entry replays from reset to its cell and score."""
    from stepstone.replay import check

    worker, plain = coin_archive(False)
    assert len(plain.archive) == 10
    assert set(plain.archive.score[:10].tolist()) == {1.0}  # the coin's entries took them all
    worker, scored = coin_archive(True)
    squares = {(int.from_bytes(c[2], "little"), s) for c, s in scored.archive.cells}
    assert squares == {(p, s) for p in range(10) for s in (0.0, 1.0)}
    scores = scored.archive.score[: len(scored.archive)]
    assert all(c[1] == s for c, s in zip(scored.archive.cells, scores, strict=True))
    replayed = list(check(worker, 0, scored.trajectories, scored.archive))
    assert len(replayed) == 20 and all(r.ok for r in replayed)


def test_score_cells_are_kept_with_the_run_reported_resumed_and_replayed(tmp_path, capsys):
    """On Montezuma (downscaled frames, the clustered selector measuring them): --score-cells
    is stored, named in the report, kept by resume, and every entry replays to its cell;
    a run without it stores its configuration as before."""
    from stepstone.cli import main
    from stepstone.store.sqlite import RunStore

    assert "score_cells" not in ExploreConfig("montezuma").to_json()
    run_dir = tmp_path / "run"
    args = ["--workers", "1", "--backend", "inline", "--no-progress"]
    assert main(["explore", "montezuma", "--cells", "downscale", "--frames", "3k",
                 "--score-cells", "--run-dir", str(run_dir), *args]) == 0  # fmt: skip
    assert "(downscale + score) |" in (run_dir / "report.md").read_text()
    assert main(["resume", str(run_dir), "--frames", "6k", *args]) == 0
    store = RunStore.open(run_dir)
    assert store.config.score_cells and store.config.selector == "clustered"
    assert all(isinstance(c[0], bytes) and c[1] == 0.0 for c in store.load_archive().cells)
    store.close()
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0
    assert "replayed to their cells and scores" in capsys.readouterr().out
