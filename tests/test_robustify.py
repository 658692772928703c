"""Phase 2: the backward algorithm walks its start state back to reset and holds under noise."""

from __future__ import annotations

import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore

pytest.importorskip("torch")


def test_backward_algorithm_reaches_reset_and_succeeds_with_sticky_actions(
    tmp_path, user_env_module, capsys
):
    from stepstone.learn.robustify import RobustifyConfig, robustify

    run = tmp_path / "run"
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 20k --workers 1"
    assert main([*argv.split(), "--run-dir", str(run), "--no-progress"]) == 0
    cfg = RobustifyConfig(frames=8_000, step=5, window=10, eval_episodes=20)
    result = robustify(RunStore.open(run), cfg, baselines=())
    assert result["demo_length"] == 39 and result["demo_return"] == 1.0
    starts = [m["start"] for m in result["start_moves"]]
    assert starts == sorted(starts, reverse=True) and starts[-1] == 0  # moved back to reset
    assert result["reached_reset"] and result["success_backward"] >= 0.9
    assert (run / "robustify" / "policy.pt").exists()


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
