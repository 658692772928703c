"""A Gymnasium environment stepstone has never seen, registered by the user's own module."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore


def random_successes(env_id: str, frames: int, seed: int = 0) -> int:
    """Plain random actions for the same number of steps: how often is the reward reached?"""
    env = gym.make(env_id)
    rng = np.random.default_rng(seed)
    env.reset(seed=seed)
    wins = 0
    for _ in range(frames):
        _, reward, term, trunc, _ = env.step(int(rng.integers(2)))
        wins += reward > 0
        if term or trunc:
            env.reset()
    return wins


@pytest.mark.parametrize("return_method", ["deepcopy", "replay"])
def test_reaches_sparse_reward_where_random_does_not(
    user_env_module, tmp_path, capsys, return_method
):
    run_dir = tmp_path / "run"
    code = main(
        [
            "explore",
            "UserCorridor-v0",
            "--import",
            user_env_module,
            "--frames",
            "20k",
            "--workers",
            "1",
            "--return",
            return_method,
            "--run-dir",
            str(run_dir),
            "--no-progress",
            "--goal",
            "terminated",  # the corridor's end; the environment names no goal itself
        ]
    )
    assert code == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["best_score"] == 1.0
    assert summary["success"] is True and summary["goal"] == "terminated"
    assert 0 < summary["frames_to_success"] <= 20_000
    assert summary["cells"] == 40  # every position of the corridor
    assert random_successes("UserCorridor-v0", 20_000) == 0

    store = RunStore.open(run_dir)
    best = store.load_archive().entry(store.load_archive().best())
    assert best.length == 39  # the shortest way: 39 steps right
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0


def test_a_picture_gets_dynamic_downscaling_by_default(user_env_module, tmp_path, capsys):
    """Issue 20: with every frame speckled anew, the observation as its own cell (auto before
    version 3) makes a cell of each new way to a place; downscaled frames a few a place."""
    run_dir = tmp_path / "run"
    args = ["explore", "UserPixelCorridor-v0", "--import", user_env_module, "--frames", "20k",
            "--workers", "1", "--run-dir", str(run_dir), "--no-progress",
            "--goal", "terminated"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    first = summary["cell_choices"][0]  # dynamic downscaling's first shape: chosen from
    assert first["frames"] <= 1_000 and first["samples"] >= 100  # ten explorations' steps
    assert summary["cells_resolved"] == "dynamic"  # what auto meant, named in the report
    assert "| cells | " in (report := (run_dir / "report.md").read_text())
    assert " (auto: dynamic) |" in report
    # At most two a position: where the walker straddles two blocks the speckles can tip a
    # block's average across a level (the frames as their own cells made 1,612 in 20k).
    assert 10 <= summary["cells"] <= 2 * 40
    assert summary["success"] is True  # the far end, as on UserCorridor-v0
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0


def test_a_picture_among_parts_is_downscaled_by_default(user_env_module, tmp_path, capsys):
    """Issue 20: the speckled corridor as one part of a dict. Auto before version 4 kept the
    picture exact, a cell a frame (1,612 cells in 20k frames, as --cells observation makes);
    now it is downscaled, its shape chosen among the parts'."""
    run_dir = tmp_path / "run"
    args = ["explore", "UserPartsPixelCorridor-v0", "--import", user_env_module, "--frames",
            "20k", "--workers", "1", "--run-dir", str(run_dir), "--no-progress",
            "--goal", "terminated"]  # fmt: skip
    assert main(args) == 0
    capsys.readouterr()
    assert main(["report", str(run_dir), "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert len(summary["cell_shape"]) == 3 and summary["cell_choices"]  # one picture, chosen
    # A few a position (98 at 21 x 6 x 32): the choice aims at an eighth of its 643 sampled
    # states while only part of the corridor has been seen, so speckles split some places.
    assert 10 <= summary["cells"] <= 3 * 40
    assert summary["success"] is True
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0
    # Frame cells on a dict: one line naming the fix, no run directory.
    args[args.index("--run-dir") + 1] = str(tmp_path / "dynamic")
    capsys.readouterr()
    assert main([*args, "--cells", "dynamic"]) == 2
    assert "this observation is a dict; --cells auto" in capsys.readouterr().err
    assert not (tmp_path / "dynamic").exists()


def test_process_pool_imports_user_module_in_workers(user_env_module, tmp_path, capsys):
    run_dir = tmp_path / "run"
    args = [
        "explore",
        "UserCorridor-v0",
        "--import",
        user_env_module,
        "--frames",
        "5k",
        "--workers",
        "2",
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]
    assert main(args) == 0
    assert main(["replay", str(run_dir), "--cell", "all"]) == 0
    assert len(RunStore.open(run_dir).load_archive()) > 5


def test_non_deterministic_environment_is_never_taken_for_replayable(user_env_module):
    """A random walk often ends where another ends; the whole path must agree, every time."""
    import importlib

    from stepstone.envs.generic import GymEnv
    from stepstone.errors import EnvironmentNotFound

    importlib.import_module(user_env_module)
    for seed in range(40):
        with pytest.raises(EnvironmentNotFound, match="not deterministic"):
            GymEnv(gym.make("UserUnreturnable-v0"), "auto", seed=seed)
    # A deterministic environment that cannot be pickled is still replayable.
    env = gym.make("UserCorridor-v0")
    env.unwrapped.lock = __import__("threading").Lock()
    assert GymEnv(env, "auto", seed=0).method == "replay"
