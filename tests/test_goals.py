"""Success only from a real goal: the environment's own, info["is_success"], or --goal."""

from __future__ import annotations

import json
import sqlite3
import sys
import textwrap

import gymnasium as gym
import numpy as np
import pytest

from stepstone.archive import Archive
from stepstone.cli import main
from stepstone.config import ExploreConfig
from stepstone.envs import Adapter, GymEnv
from stepstone.errors import ConfigError
from stepstone.goals import Goal
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree

# A walk on a line that never ends by itself (only the 60-step limit truncates it) and pays no
# reward; info["is_success"] says whether the walker stands at position 10 or beyond, the way
# Gymnasium-Robotics tasks report success.
SUCCESS_ENV_MODULE = textwrap.dedent(
    """
    import gymnasium as gym
    from gymnasium import spaces


    class Walk(gym.Env):
        def __init__(self, target=10, key="is_success"):
            self.target, self.key = target, key
            self.observation_space = spaces.Discrete(61)
            self.action_space = spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.pos = 0
            return self.pos, {self.key: False}

        def step(self, action):
            self.pos = max(0, self.pos + (1 if action == 1 else -1))
            return self.pos, 0.0, False, False, {self.key: self.pos >= self.target}


    gym.register("UserWalk-v0", entry_point=Walk, max_episode_steps=60)
    gym.register("UserWalkFar-v0", entry_point=Walk, kwargs={"target": 1000},
                 max_episode_steps=60)
    # Gymnasium-Robotics' mazes (PointMaze, AntMaze) say info["success"]
    gym.register("UserWalkMaze-v0", entry_point=Walk, kwargs={"key": "success"},
                 max_episode_steps=60)
    """
)


@pytest.fixture
def walk_module(tmp_path, monkeypatch) -> str:
    (tmp_path / "user_walk.py").write_text(SUCCESS_ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")
    return "user_walk"


def explore(run, *args: str, frames: str = "5k") -> None:
    argv = ["explore", *args, "--frames", frames, "--workers", "1", "--run-dir", str(run)]
    assert main([*argv, "--no-progress"]) == 0


def report(run, capsys) -> dict:
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


# -- --goal --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "text, threshold, strict",
    [("score>=200", 200.0, False), (" score > -5.5 ", -5.5, True), ("score>=1e3", 1000.0, False)],
)
def test_score_goals_parse(text, threshold, strict):
    g = Goal.parse(text)
    assert (g.threshold, g.strict) == (threshold, strict)
    assert g.reached(None, threshold, False) is (not strict)
    assert g.reached(None, threshold + 0.5, False) is True


def test_terminated_and_default_goals():
    assert Goal.parse("terminated").reached(None, -3.0, True) is True
    assert Goal.parse("terminated").reached(None, 10.0, False) is False
    assert Goal.parse(None).reached(Adapter(), 10.0, True) is None  # no goal anywhere


@pytest.mark.parametrize("text", ["win", "score=>1", "score>=", "score>=abc", "return>=1", ""])
def test_bad_goals_are_refused_in_one_line(text, tmp_path, capsys):
    with pytest.raises(ConfigError, match="--goal takes score>=NUMBER"):
        ExploreConfig("CartPole-v1", goal=text)
    run = tmp_path / "run"
    assert main(["explore", "CartPole-v1", "--goal", text, "--run-dir", str(run)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--goal takes" in err
    assert not run.exists()


def test_an_entry_reaching_the_goal_is_kept_over_better_scores_that_miss_it():
    a = Archive()
    assert a.offer("flag", -120.0, 120, 1, b"a", goal=True)
    assert not a.accepts("flag", 0.0, 5) and not a.offer("flag", 0.0, 5, 1, b"b")
    assert a.offer("flag", -90.0, 90, 1, b"c", goal=True)  # among goals, the usual rule
    assert a.offer("start", 0.0, 0, 0, b"d")
    e = a.get("flag")
    assert (e.goal, e.score, e.length) == (1, -90.0, 90)
    assert a.goal_entry() == a.index["flag"] and a.best() == a.index["start"]


# -- no goal: unknown, not "no" ----------------------------------------------------------------
def test_falling_over_is_not_success(tmp_path, capsys):
    """CartPole ends when the pole falls: the old rule called that success at frame 8."""
    run = tmp_path / "run"
    explore(run, "CartPole-v1", frames="3k")
    s = report(run, capsys)
    assert s["success"] is None and s["frames_to_success"] is None and s["goal"] is None
    assert s["best_score"] > 0
    assert main(["report", str(run)]) == 0
    assert "goal: no goal (give one with --goal" in capsys.readouterr().out  # the summary
    row = next(t for t in (run / "report.md").read_text().splitlines() if "| success |" in t)
    assert "no goal (give one with --goal" in row
    # its example is a goal one step past the best score found, and it parses
    example = row.split("--goal '")[1].split("'")[0]
    assert Goal.parse(example).threshold > s["best_score"]
    assert Goal.parse(example).threshold <= 2 * s["best_score"]


def test_where_every_step_costs_no_score_goal_is_offered(tmp_path, capsys):
    """Pendulum's rewards are all below 0: its report offered --goal 'score>=1', which no run
    can meet (the reset state's 0 is the best score there is)."""
    run = tmp_path / "run"
    explore(run, "Pendulum-v1", frames="1k")
    s = report(run, capsys)
    assert s["success"] is None and s["best_score"] == 0 and s["lowest_score"] < 0
    assert main(["report", str(run)]) == 0
    out = capsys.readouterr().out
    assert "goal: no goal (nothing found scores above the reset state's 0" in out
    assert "score>=" not in out
    # numbers with thousands separators: 12,345 cells, 12,554 frames/s
    from stepstone.report import brief, markdown

    big = {**s, "cells": 12_345, "frames_per_second": 12_554.5}
    assert "| cells | 12,345 (" in markdown(big) and "| frames/s | 12,554 |" in markdown(big)
    assert "(12,554 frames/s), 12,345 cells, best score" in brief(big)


def test_the_example_goal_is_a_round_number_past_the_best_score():
    from stepstone.report import past

    cases = {5_900: "6000", 21: "30", 0: "1", 0.514: "0.6", -183: "-100", 1_000: "2000",
             -0.5: "-0.4", 18_230: "20000", 200: "300"}  # fmt: skip
    assert {best: past(best) for best in cases} == cases


def test_stop_on_success_without_a_goal_says_so(tmp_path, capsys):
    explore(tmp_path / "run", "CartPole-v1", "--stop-on-success", frames="300")
    err = capsys.readouterr().err
    assert "has no goal stepstone knows" in err
    assert "unless it sets info['is_success'] or info['success']" in err


def test_hopper_falling_is_not_success(tmp_path, capsys):
    pytest.importorskip("mujoco")
    run = tmp_path / "run"
    explore(run, "Hopper-v5", frames="1k")
    s = report(run, capsys)
    assert s["success"] is None and s["frames_to_success"] is None


def test_user_goal_on_an_environment_without_one(tmp_path, capsys):
    run = tmp_path / "run"
    explore(run, "CartPole-v1", "--goal", "score>=30", frames="3k")
    s = report(run, capsys)
    assert s["goal"] == "score>=30" and s["success"] is True
    assert 0 < s["frames_to_success"] <= s["frames"] and s["goal_cell"]["score"] >= 30


def test_a_goal_the_reset_state_meets_is_said_to_be_one(tmp_path, capsys):
    """Where every step costs, score>=-20 holds before the first step: the run "reaches" it at
    0 frames with an empty trajectory, which the closing lines now explain."""
    run = tmp_path / "run"
    explore(run, "CliffWalking-v1", "--goal", "score>=-20", frames="1k")
    s = report(run, capsys)
    assert s["frames_to_success"] == 0 and s["goal_cell"]["length"] == 0
    assert main(["report", str(run)]) == 0
    assert "the reset state meets this goal" in capsys.readouterr().out
    other = tmp_path / "other"
    explore(other, "CliffWalking-v1", "--goal", "terminated", frames="5k")
    assert report(other, capsys)["goal_cell"]["length"] > 0  # reached, by steps
    assert main(["report", str(other)]) == 0
    assert "the reset state meets" not in capsys.readouterr().out


# -- the environment's own goal --------------------------------------------------------------
def test_mountain_car_flag_is_found_and_shown_with_its_negative_return(tmp_path, capsys):
    """Every step costs 1: the best return is the start's 0, the flag's is below it."""
    run = tmp_path / "run"
    explore(run, "MountainCar-v0", frames="30k")
    s = report(run, capsys)
    assert s["success"] is True and s["goal"] == "the environment's own"
    assert s["goal_words"] == "the flag"  # said in the summary's goal line (below)
    assert s["best_score"] == 0.0
    cell = s["goal_cell"]
    assert -200 < cell["score"] < 0 and cell["length"] == -cell["score"]
    assert s["frames_to_success"] <= cell["found_frame"] <= s["frames"]
    assert main(["report", str(run)]) == 0
    row = f"best goal trajectory: score {cell['score']:g}, {cell['length']} steps"
    out = capsys.readouterr().out
    assert row in out and "(goal: the environment's own: the flag);" in out
    assert "best score 0 (the reset state: no trajectory found scores above it)" in out
    # What to look at next is the flag's trajectory, not the best score's (the start).
    assert f"stepstone replay {run} --cell goal --gif {run}/goal.gif" in out
    # The goal cell's trajectory, replayed in a plain Gymnasium MountainCar, reaches the flag.
    store = RunStore.open(run)
    archive = store.load_archive()
    e = archive.entry(archive.goal_entry())
    env = gym.make("MountainCar-v0")
    env.reset(seed=0)
    ends = [env.step(int(a))[2] for a in TrajectoryTree(store.nodes).actions(e.node, e.length)]
    assert ends[-1] and not any(ends[:-1])
    assert main(["replay", str(run), "--cell", "all"]) == 0


def test_frozen_lake_goal_is_the_g_tile_not_a_hole():
    """Both end the episode; only G is the goal. Map SFFF/FHFH/FFFH/HFFG, not slippery."""
    adapter = GymEnv(gym.make("FrozenLake-v1", is_slippery=False), method="deepcopy")
    adapter.reset(0)
    assert adapter.goal() is False
    adapter.step(2)  # right, to (0, 1)
    _, term, _ = adapter.step(1)  # down, into the hole at (1, 1)
    assert term and adapter.goal() is False
    adapter.reset(0)
    for a in (1, 1, 2, 2, 1, 2):  # down, down, right, right, down, right
        _, term, _ = adapter.step(a)
    assert term and adapter.goal() is True
    adapter.close()


def test_cliff_walking_goal_is_the_far_corner_not_the_cliff():
    """cliffwalking.py: a fall costs -100 and sends the agent back without ending; only the
    square at (3, 11) terminates. Actions 0 up, 1 right, 2 down, 3 left; start (3, 0)."""
    adapter = GymEnv(gym.make("CliffWalking-v1"), method="deepcopy")
    adapter.reset(0)
    _, term, _ = adapter.step(1)  # right, into the cliff
    assert not term and adapter.goal() is False
    for a in (0, *[1] * 11, 2):  # up, along the top of the cliff, down onto the goal
        _, term, _ = adapter.step(a)
    assert term and adapter.goal() is True
    adapter.close()


def test_taxi_goal_is_the_dropoff_at_the_destination():
    """taxi.py ``_dropoff``: only a passenger dropped at the destination ends the episode."""
    adapter = GymEnv(gym.make("Taxi-v4"), method="deepcopy")
    adapter.reset(0)
    u = adapter.env.unwrapped
    row, col, _, dest = u.decode(u.s)
    wrong = next(i for i in range(4) if i != dest)
    u.s = u.encode(*u.locs[wrong], 4, dest)  # in the taxi, at another landmark
    _, term, _ = adapter.step(5)  # drop off there: the passenger waits at that landmark
    assert not term and adapter.goal() is False
    u.s = u.encode(*u.locs[dest], 4, dest)
    _, term, _ = adapter.step(5)
    assert term and adapter.goal() is True
    adapter.close()


def test_acrobot_goal_is_the_swing_up():
    """acrobot.py ``_terminal``: -cos(s0) - cos(s0 + s1) > 1, the free end above the bar."""
    adapter = GymEnv(gym.make("Acrobot-v1"), method="deepcopy")
    adapter.reset(0)
    _, term, _ = adapter.step(1)
    assert not term and adapter.goal() is False
    adapter.env.unwrapped.state = np.array([np.pi, 0.0, 0.0, 0.0])  # straight up
    _, term, _ = adapter.step(1)
    assert term and adapter.goal() is True
    adapter.close()


def test_frozen_lake_run_reaches_its_goal(tmp_path, capsys):
    run = tmp_path / "run"
    explore(run, "FrozenLake-v1", frames="10k")
    s = report(run, capsys)
    assert s["success"] is True and s["goal_cell"]["score"] == 1.0
    assert s["goal_words"] == "standing on the G tile"


def test_the_environments_own_goal_is_named_where_it_is_known():
    """The report said "goal: the environment's own" and left a new user to guess what it is
    (on Montezuma: level 1, which the RAM layout reads)."""
    from stepstone import envs

    named = {"montezuma": "level 1 completed", "ALE/Pong-v5": None, "game24": "24 made",
             "Acrobot-v1": "the free end above the bar", "CartPole-v1": None}  # fmt: skip
    for env_id, words in named.items():
        adapter = envs.make(envs.EnvSpec(env_id, 0))
        try:
            assert adapter.goal_words == words, env_id
        finally:
            adapter.close()


# -- Gymnasium's info["is_success"] --------------------------------------------------------
def test_info_is_success_is_the_goal(tmp_path, capsys, walk_module):
    run = tmp_path / "run"
    explore(run, "UserWalk-v0", "--import", walk_module, frames="5k")
    s = report(run, capsys)
    assert s["success"] is True and s["goal"] == "the environment's own"
    assert s["best_score"] == 0.0 and s["goal_cell"]["length"] == 10
    far = tmp_path / "far"
    explore(far, "UserWalkFar-v0", "--import", walk_module, frames="2k")
    s = report(far, capsys)
    assert s["success"] is False and s["frames_to_success"] is None and s["goal_cell"] is None
    assert main(["report", str(far)]) == 0
    said = 'not reached (goal: the environment\'s own: info["is_success"] true)'
    assert f"goal: {said}" in capsys.readouterr().out
    assert f"| success | {said} |" in (far / "report.md").read_text()
    maze = tmp_path / "maze"
    explore(maze, "UserWalkMaze-v0", "--import", walk_module, frames="5k")
    s = report(maze, capsys)
    assert s["success"] is True and s["goal_cell"]["length"] == 10
    # reset sets the key, so the report can name it
    assert s["goal_words"] == 'info["success"] true'
    assert (
        '(goal: the environment\'s own: info["success"] true)' in (maze / "report.md").read_text()
    )


# -- --stop-on-success -----------------------------------------------------------------------
def test_stop_on_success_stops_early_and_resume_keeps_the_answer(tmp_path, capsys, walk_module):
    run = tmp_path / "run"
    explore(run, "UserWalk-v0", "--import", walk_module, "--stop-on-success", frames="1M")
    assert "stopped: the goal was reached at" in capsys.readouterr().err
    s = report(run, capsys)
    assert s["success"] and s["stopped_on_success"] and s["frames"] < 20_000
    assert RunStore.open(run).config.stop_on_success
    capsys.readouterr()
    assert main(["resume", str(run), "--frames", "2M", "--no-progress"]) == 0
    said = capsys.readouterr()
    assert "resuming does not explore on" in said.err and "stepstone resume" not in said.out
    again = report(run, capsys)
    assert again["frames"] == s["frames"] and again["frames_to_success"] == s["frames_to_success"]


def test_a_run_resumed_before_its_goal_stops_on_it(tmp_path, capsys, user_env_module):
    run = tmp_path / "run"
    corridor = ["UserCorridor-v0", "--import", user_env_module, "--goal", "score>=1"]
    # 30 steps in all cannot reach the corridor's end, 39 steps away.
    explore(run, *corridor, "--stop-on-success", "--explore-steps", "5", frames="30")
    assert report(run, capsys)["success"] is False
    assert main(["resume", str(run), "--frames", "1M", "--no-progress"]) == 0
    s = report(run, capsys)
    assert s["success"] and s["stopped_on_success"] and s["frames"] < 100_000
    assert s["goal_cell"] == {
        "score": 1.0,
        "length": 39,
        "found_frame": s["goal_cell"]["found_frame"],
    }


# -- run directories written before goals were tracked ---------------------------------------
def test_a_run_written_before_goals_still_opens_and_resumes(tmp_path, capsys, user_env_module):
    run = tmp_path / "run"
    explore(run, "UserCorridor-v0", "--import", user_env_module, frames="2k")
    with sqlite3.connect(run / "run.sqlite") as db:  # as the previous version wrote it
        db.execute("ALTER TABLE entries DROP COLUMN goal")
        (state,) = db.execute("SELECT value FROM meta WHERE key = 'engine'").fetchone()
        state = json.loads(state)
        del state["goal_known"]
        db.execute("UPDATE meta SET value = ? WHERE key = 'engine'", (json.dumps(state),))
        (config,) = db.execute("SELECT value FROM meta WHERE key = 'config'").fetchone()
        config = json.loads(config)
        del config["goal"], config["stop_on_success"]
        db.execute("UPDATE meta SET value = ? WHERE key = 'config'", (json.dumps(config),))
    s = report(run, capsys)
    assert s["success"] is None and s["goal_cell"] is None
    assert main(["resume", str(run), "--frames", "3k", "--no-progress"]) == 0
    assert report(run, capsys)["frames"] >= 3_000
    assert np.all(RunStore.open(run).load_archive().goal == 0)
