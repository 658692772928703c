"""Phase 2: the backward algorithm walks its start state back to reset and holds under noise."""

from __future__ import annotations

import json
import pickle
import re

import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore
from stepstone.trajectories import TrajectoryTree

pytest.importorskip("torch")


def test_backward_algorithm_reaches_reset_and_succeeds_with_sticky_actions(
    tmp_path, user_env_module, capsys
):
    from stepstone.learn.robustify import RobustifyConfig, robustify

    run = tmp_path / "run"
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 20k --workers 1"
    argv += " --goal terminated"
    assert main([*argv.split(), "--run-dir", str(run), "--no-progress"]) == 0
    cfg = RobustifyConfig(frames=8_000, step=5, window=10, eval_episodes=20)
    result = robustify(RunStore.open(run), cfg, baselines=())
    assert result["demo_length"] == 39 and result["demo_return"] == 1.0
    assert result["success_criterion"] == "goal"
    assert result["sticky_unit"] is None  # frames and actions are one thing off Atari
    starts = [m["start"] for m in result["start_moves"]]
    assert starts == sorted(starts, reverse=True) and starts[-1] == 0  # moved back to reset
    assert result["reached_reset"] and result["success_backward"] >= 0.9
    assert (run / "robustify" / "policy.pt").exists()

    # stepstone evaluate runs the saved policy again, under the same sticky actions.
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "10"]) == 0
    out = capsys.readouterr().out
    m = re.search(r"10 episodes from reset, sticky actions 0.25: success ([\d.]+) \(goal\), "
                  r"mean score ([\d.]+)", out)  # fmt: skip
    assert m and float(m[1]) >= 0.8 and float(m[2]) == float(m[1])  # reward 1 at the goal only
    assert main(["evaluate", str(run), "--episodes", "0"]) == 2
    assert main(["evaluate", str(run), "--gif", str(tmp_path / "c.gif")]) == 2  # cannot draw
    assert "cannot draw frames" in capsys.readouterr().err


def test_robustify_refuses_a_run_without_reward(tmp_path, user_env_module, capsys):
    run = tmp_path / "run"
    # 30 steps in all cannot reach the corridor's end, 39 steps away.
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 30 --explore-steps 5"
    assert main([*argv.split(), "--workers", "1", "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["robustify", str(run), "--frames", "1k"]) == 2
    assert "no return to reproduce" in capsys.readouterr().err
    assert main(["robustify", str(run), "--sticky", "1.5"]) == 2
    assert main(["robustify", str(run), "--demo-score", "1"]) == 2
    assert "no trajectory in the archive scores 1" in capsys.readouterr().err
    assert main(["robustify", str(run), "--baselines", "dqn"]) == 2
    assert main(["robustify", str(run), "--advance-rate", "0"]) == 2
    assert main(["robustify", str(run), "--step-back", "-1"]) == 2
    assert main(["robustify", str(run), "--gamma", "1.5"]) == 2
    assert "--gamma is a discount in (0, 1], not 1.5" in capsys.readouterr().err
    assert not (run / "robustify" / "result.json").exists()


def test_atari_policies_see_the_ram(tmp_path):
    from stepstone.config import ExploreConfig
    from stepstone.learn.robustify import RobustifyConfig, Runner

    store = RunStore.create(tmp_path / "run", ExploreConfig("montezuma", cells="ram"))
    runner = Runner(store, RobustifyConfig())
    runner.env.reset(0)
    obs = runner.obs()
    assert obs.shape == (1024,) and obs.dtype == np.float32 and set(np.unique(obs)) <= {0.0, 1.0}
    assert np.array_equal(np.packbits(obs.astype(np.uint8)), runner.env.ram())


def test_ram_bits_and_score_show_the_episodes_return_from_reset(tmp_path):
    """--ram bits+score: the bits, then log10(1 + score), the score being the return from
    reset, also where an episode begins at a demonstration's point (its return there) and
    after no-ops; 0 again from reset."""
    from stepstone.config import ExploreConfig
    from stepstone.learn.robustify import RobustifyConfig, Runner

    store = RunStore.create(tmp_path / "bo", ExploreConfig("ALE/Breakout-v5"))
    runner = Runner(store, RobustifyConfig(ram="bits+score", sticky=0.0))
    demo = runner.demo(np.random.default_rng(1).integers(4, size=1000))  # seed 1: 2 bricks
    assert demo.returns[-1] == 2
    ends = [np.log10(1 + r) for r in demo.returns]
    assert np.allclose([o[-1] for o in demo.observations], ends)
    assert all(np.packbits(o[:-1].astype(np.uint8)).size == 128 for o in demo.observations)
    t = int(np.argmax(np.asarray(demo.returns) >= 1))  # the step of the first brick
    runner.start(demo, t, noops=False)
    assert np.array_equal(runner.obs(), demo.observations[t])
    before = runner.score
    for a in demo.actions[t:]:
        runner.step(int(a))
    assert runner.score == before + demo.returns[-1] - demo.returns[t]
    assert runner.obs()[-1] == pytest.approx(np.log10(1 + runner.score))
    runner.from_reset()
    assert runner.obs()[-1] == 0.0 and runner.obs().shape == (1025,)
    runner.worker.close()


def test_ram_bits_and_bytes_are_the_bits_then_each_byte_scaled(tmp_path):
    """--ram bits+bytes: the bits, then each byte scaled to [0, 1]."""
    from stepstone.config import ExploreConfig
    from stepstone.learn.robustify import RobustifyConfig, Runner

    store = RunStore.create(tmp_path / "mz", ExploreConfig("montezuma", cells="ram"))
    runner = Runner(store, RobustifyConfig(ram="bits+bytes"))
    runner.env.reset(0)
    obs, ram = runner.obs(), runner.env.ram()
    assert obs.shape == (1152,) and np.array_equal(np.packbits(obs[:1024].astype(np.uint8)), ram)
    assert np.allclose(obs[1024:] * 255, ram)
    runner.worker.close()


@pytest.mark.parametrize("ram, inputs", [("bits+bytes", 1152), ("bits+score", 1025)])
def test_ram_features_reach_the_policy_and_everything_that_runs_it(tmp_path, capsys, ram, inputs):
    """The saved policy says what it reads, and `evaluate` and `explore --from-policy` feed
    it the same inputs."""
    run = tmp_path / "run"
    quiet = ["--workers", "1", "--no-progress"]
    explore = ["explore", "ALE/Breakout-v5", "--frames", "3k", "--run-dir", str(run)]
    assert main([*explore, *quiet]) == 0
    args = ["--frames", "512", "--baselines", "none", "--eval-episodes", "1", "--no-progress"]
    assert main(["robustify", str(run), "--ram", ram, *args]) == 0
    info = json.loads((run / "robustify" / "policy.json").read_text())
    assert (info["inputs"], info["features"]) == (inputs, f"ram-{ram}")
    capsys.readouterr()
    assert main(["evaluate", str(run), "--episodes", "1"]) == 0
    assert "1 episodes from reset" in capsys.readouterr().out
    again = tmp_path / "again"
    argv = ["explore", "ALE/Breakout-v5", "--from-policy", str(run), "--sticky", "0.25"]
    assert main([*argv, "--frames", "1k", "--run-dir", str(again), *quiet]) == 0
    assert RunStore.open(again).state()["frames"] >= 1_000


def test_success_is_the_goal_not_the_demonstrations_return(tmp_path):
    """MiniGrid pays 1 - 0.9 * steps / max_steps at the goal: a slower way there earns less
    than the demonstration and still reaches the goal."""
    pytest.importorskip("minigrid")
    from stepstone.learn.robustify import RobustifyConfig, Runner, demonstration

    run = tmp_path / "run"
    argv = f"explore MiniGrid-Empty-5x5-v0 --frames 5k --workers 1 --run-dir {run}"
    assert main([*argv.split(), "--no-progress"]) == 0
    store = RunStore.open(run)
    archive = store.load_archive()
    i = demonstration(archive, None)
    assert i == archive.goal_entry()
    runner = Runner(store, RobustifyConfig(sticky=0.0))
    demo = runner.demo(
        TrajectoryTree(store.nodes).actions(int(archive.node[i]), int(archive.length[i]))
    )
    assert demo.reaches_goal
    success = demo.success(runner)
    runner.from_reset()
    total = sum(runner.step(a)[0] for a in [0, 1, *demo.actions])  # turn left and back first
    assert total < demo.returns[-1] and success(total)
    runner.from_reset()
    total = sum(runner.step(a)[0] for a in demo.actions[:-1])  # one step short
    assert not success(total)
    runner.worker.close()


def test_a_goal_with_negative_return_is_robustified_and_evaluated_with_a_gif(tmp_path, capsys):
    """MountainCar: -1 a step, so the flag's return is negative; the old rule refused it."""
    pytest.importorskip("pygame")  # MountainCar draws its frames with pygame
    run = tmp_path / "run"
    argv = f"explore MountainCar-v0 --frames 30k --workers 1 --run-dir {run} --no-progress"
    assert main(argv.split()) == 0
    args = ["--frames", "1k", "--baselines", "none", "--eval-episodes", "2"]
    assert main(["robustify", str(run), *args]) == 0
    result = json.loads((run / "robustify" / "result.json").read_text())
    assert result["success_criterion"] == "goal" and result["demo_return"] < 0
    capsys.readouterr()
    gif = tmp_path / "policy.gif"
    assert main(["evaluate", str(run), "--episodes", "1", "--gif", str(gif)]) == 0
    out = capsys.readouterr().out
    frames = int(re.search(r"written: .* \((\d+) frames", out)[1])
    from PIL import Image

    with Image.open(gif) as im:
        assert im.n_frames <= frames and im.size[0] > 100  # drawn, not the 2-number observation


def test_evaluate_never_unpickles_what_it_finds(tmp_path, capsys, user_env_module):
    run = tmp_path / "run"
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 100 --workers 1"
    assert main([*argv.split(), "--run-dir", str(run), "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(run)]) == 2
    assert "has no policy: run 'stepstone robustify" in capsys.readouterr().err
    marker = tmp_path / "executed"

    class Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    (run / "robustify").mkdir()
    (run / "robustify" / "policy.pt").write_bytes(pickle.dumps({"body.0.weight": Payload()}))
    info = {"inputs": 40, "actions": 2, "demo_length": 39, "demo_return": 1.0, "goal": False,
            "sticky": 0.25}  # fmt: skip
    (run / "robustify" / "policy.json").write_text(json.dumps(info))
    assert main(["evaluate", str(run)]) == 2
    err = capsys.readouterr().err
    assert "is not a policy saved by stepstone robustify" in err and err.count("\n") == 1
    assert not marker.exists()
