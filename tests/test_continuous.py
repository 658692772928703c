"""Continuous state spaces: MuJoCo's own state vector as the snapshot, novelty cells."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from stepstone.archive import Archive
from stepstone.cells.novelty import NoveltyCells, NoveltyRule
from stepstone.cli import main
from stepstone.engine import Engine, Found, Result
from stepstone.envs import EnvSpec, GymEnv, make
from stepstone.selectors import Uniform
from stepstone.trajectories import TrajectoryTree

pytest.importorskip("scipy")


def test_mujoco_snapshot_restores_the_physics_exactly():
    pytest.importorskip("mujoco")
    env = make(EnvSpec("HalfCheetah-v5"))
    assert env.method == "physics"  # pickling would give a fresh environment, not this state
    rng = np.random.default_rng(0)
    for a in rng.uniform(-1, 1, size=(30, 6)):
        env.step(a.astype(np.float32))
    snap = env.snapshot()
    actions = rng.uniform(-1, 1, size=(50, 6)).astype(np.float32)
    first = [env.step(a) for a in actions], env.observe().copy(), env.descriptor()
    env.restore(snap)
    second = [env.step(a) for a in actions], env.observe().copy(), env.descriptor()
    assert first[0] == second[0]
    assert np.array_equal(first[1], second[1]) and np.array_equal(first[2], second[2])


def test_a_picture_beside_the_state_is_kept_compressed_in_snapshots():
    """AddRenderObservation(render_only=False) gives {"state", "pixels"}: the picture made a
    Hopper snapshot 103 kB. Here a picture drawn from the state (no GL needed) stands in."""
    pytest.importorskip("mujoco")
    from stepstone import codec
    from stepstone.envs.mujoco import MujocoEnv

    class Drawn(gym.ObservationWrapper):
        def __init__(self, env):
            super().__init__(env)
            self.observation_space = gym.spaces.Dict({
                "state": env.observation_space,
                "pixels": gym.spaces.Box(0, 255, (96, 96, 3), np.uint8)})  # fmt: skip

        def observation(self, obs):
            pixels = np.zeros((96, 96, 3), np.uint8)
            pixels[:, : int(40 + 20 * np.tanh(obs[0]))] = 200  # moves with the state
            pixels[::8, :, 1] = np.uint8(np.clip(100 + 50 * obs[1], 0, 255))
            return {"state": obs, "pixels": pixels}

    env = MujocoEnv(Drawn(gym.make("HalfCheetah-v5")))
    env.reset(0)
    rng = np.random.default_rng(0)
    for a in rng.uniform(-1, 1, size=(20, 6)):
        env.step(a.astype(np.float32))
    before = env.observe()
    snap = env.snapshot()
    assert len(codec.pack(before)) > 36_000 and len(snap) < 6_000
    actions = rng.uniform(-1, 1, size=(30, 6)).astype(np.float32)
    first = [env.step(a) for a in actions], env.observe()
    env.restore(snap)
    assert codec.pack(env.observe()) == codec.pack(before)
    second = [env.step(a) for a in actions], env.observe()
    assert first[0] == second[0] and codec.pack(first[1]) == codec.pack(second[1])


def test_environments_that_pickle_as_fresh_copies_are_not_deep_copied():
    """MuJoCo environments pickle their constructor arguments only (EzPickle): a pickled copy
    loses the state, so the generic adapter must not choose deepcopy for them."""
    pytest.importorskip("mujoco")
    assert GymEnv(gym.make("HalfCheetah-v5")).method == "replay"
    assert make(EnvSpec("Pendulum-v1")).method == "deepcopy"  # a real copy of the state


def rule_with(cells, threshold=0.5, k=1) -> tuple[NoveltyRule, Archive]:
    a = Archive()
    for c in cells:
        a.offer(c, 0.0, 0, 0, b"")
    return NoveltyRule(threshold, k, target=5), a


def test_a_state_is_new_only_beyond_the_threshold():
    rule, a = rule_with([(0.0, 0.0), (1.0, 0.0)])
    assert rule.key_for((0.9, 0.3), a) == (1.0, 0.0)  # 0.32 from its nearest: joins it
    assert rule.key_for((0.5, 0.8), a) == (0.5, 0.8)  # 0.94 from both: a new cell
    # ... which the next state is measured against even before the tree is rebuilt.
    assert rule.key_for((0.5, 0.9), a) == (0.5, 0.8)
    assert rule.nearest([(0.1, 0.0), (0.6, 0.7)], a) == [(0.0, 0.0), (0.5, 0.8)]
    # Near the start's cell (the archive's first): not archived, but its visit counts there.
    assert rule.key_for((0.2, 0.1), a) is None
    assert rule.nearest([(0.2, 0.1)], a) == [(0.0, 0.0)]
    assert rule.key_for((0.1, 0.1), a, goal=True) == (0.1, 0.1)  # a goal is always kept


def test_sparseness_is_the_mean_distance_to_k_nearest():
    rule, a = rule_with([(0.0,), (1.0,), (3.0,)], threshold=1.4, k=2)
    # from 2.0: nearest 1.0 and 3.0, mean 1.0 <= 1.4: joins 1.0 (the first of the ties)
    assert rule.key_for((2.0,), a) in ((1.0,), (3.0,))
    # from -1.5: 1.5 and 2.5, mean 2.0 > 1.4: new
    assert rule.key_for((-1.5,), a) == (-1.5,)


def test_the_start_keeps_the_reset_state():
    """Hopper-v5 (seed 0, 10k frames, before this rule): the start cell's entry, the reset
    state, was taken by the state 19 steps on at about the same height and x, whose alive
    bonus made it the better score; it fell a step later, and so did every exploration from
    it: 2 cells and 0.00 of distance after 50k frames."""
    rule = NoveltyRule(0.1, 5, target=5)
    e = Engine(Archive(), TrajectoryTree(), Uniform(), seed=0, rule=rule)
    e.add_root(e.set_start(Found((0.0, 1.25), 0.0, 0, b"reset", source=b"0.0,1.25")))
    (task,) = e.ask(1)
    near = Found((0.0, 1.2), 18.8, 19, b"about to fall")  # 0.05 from the start's key
    same = Found((0.0, 1.25), 2.4, 3, b"tilted")  # the start's own key, rounded
    far = Found((0.3, 1.0), 20.0, 20, b"elsewhere")  # 0.39 from it: a new cell
    seen = [(0.0, 1.25), (0.0, 1.2), (0.3, 1.0)]
    found = [same, near, far]
    e.tell(Result(task.task_id, np.zeros(20, dtype=np.uint8), 20, found, seen=seen))
    start, new = e.archive.get((0.0, 1.25)), e.archive.get((0.3, 1.0))
    assert sorted(e.archive.cells) == [(0.0, 1.25), (0.3, 1.0)]
    assert (start.score, start.length, e.archive.snapshot(e.archive.index[(0.0, 1.25)])) == (
        0.0, 0, b"reset")  # fmt: skip
    assert (new.score, new.length) == (20.0, 20)
    assert start.times_seen == 1  # the near state's visit counts for the start's cell


def test_threshold_follows_the_archive_growth():
    rule = NoveltyRule(1.0, 1, target=5)
    rule.adapt(11)
    assert rule.threshold == pytest.approx(1.2)
    rule.adapt(0)
    assert rule.threshold == pytest.approx(1.2 * 0.95)
    rule.adapt(5)
    assert rule.threshold == pytest.approx(1.2 * 0.95)


def test_novelty_cells_solve_mountain_car_replay_and_resume(tmp_path, capsys):
    """Sparse reward at the hill top; cells from (position, velocity) by novelty."""
    run = tmp_path / "run"
    args = ["MountainCarContinuous-v0", "--cells", "novelty", "--frames", "60k", "--workers", "1"]
    assert main(["explore", *args, "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    first = json.loads(capsys.readouterr().out)
    assert first["success"] is True and first["best_score"] > 90
    assert main(["replay", str(run), "--cell", "all"]) == 0
    assert main(["resume", str(run), "--frames", "80k", "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["report", str(run), "--json"]) == 0
    second = json.loads(capsys.readouterr().out)
    assert second["cells"] >= first["cells"] and second["frames"] >= 80_000
    assert main(["replay", str(run), "--cell", "all"]) == 0
    assert NoveltyCells().state_key(NoveltyRule.source((0.1, -0.25))) == (0.1, -0.25)
