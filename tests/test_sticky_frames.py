"""Sticky actions drawn per emulator frame, as ALE's protocol draws them (Machado et al. 2018).

The reference is ALE itself: with frame_skip 1 each ``act`` is one frame, so a step of 4
frames whose first k keep the previous action is k acts of it and 4 - k of the new one
(StellaEnvironment::act). ``step_frames`` must emulate exactly that, and ``frame_by_frame``
must not change what a noiseless step emulates.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from stepstone.envs.ale import AtariEnv


@pytest.mark.parametrize("game", ["montezuma_revenge", "breakout"])
def test_frame_by_frame_emulates_what_the_frame_skip_does(game):
    fast, looped = AtariEnv(game), AtariEnv(game)
    fast.reset(0)
    looped.reset(0)
    looped.frame_by_frame()
    rng = np.random.default_rng(3)
    for _ in range(1500):
        a = int(rng.integers(fast.action_space.n))
        assert fast.step(a) == looped.step(a)
        assert np.array_equal(fast.ram(), looped.ram())
    assert np.array_equal(fast.observe(), looped.observe())
    # A snapshot of one restores into the other.
    looped.restore(fast.snapshot())
    for a in rng.integers(fast.action_space.n, size=100):
        fast.step(int(a))
        looped.step(int(a))
    assert np.array_equal(fast.ram(), looped.ram())


@pytest.mark.parametrize("repeat", [(0, 0, 0, 0), (1, 0, 0, 0), (1, 1, 1, 0), (1, 1, 1, 1),
                                    (0, 1, 0, 1)])  # fmt: skip
def test_a_repeat_holds_one_frame(repeat):
    """Against single frames of ALE (frameskip 1): a repeated frame takes the previous
    frame's action, and once the new action is taken a repeat keeps it."""
    env, one_frame = AtariEnv("montezuma_revenge"), AtariEnv("montezuma_revenge", frameskip=1)
    rng = np.random.default_rng(7)
    for e in (env, one_frame):
        e.reset(0)
    prev = 0
    for _ in range(60):  # walk somewhere first, so that actions have effects
        a = int(rng.integers(env.action_space.n))
        env.step(a)
        for _ in range(4):
            one_frame.step(a)
        prev = a
    new = (prev + 3) % env.action_space.n
    reward, _, _, last = env.step_frames(new, prev, np.array(repeat, dtype=bool))
    expected, held = 0.0, prev
    for stick in repeat:
        held = held if stick else new
        expected += one_frame.step(held)[0]
    assert (reward, last) == (expected, held)
    assert np.array_equal(env.ram(), one_frame.ram())


def test_robustify_and_evaluate_say_and_keep_the_unit(tmp_path, capsys):
    pytest.importorskip("torch")
    from stepstone.cli import main
    from stepstone.learn.evaluate import load_policy

    run = tmp_path / "run"
    quiet = ["--workers", "1", "--no-progress"]
    explore = ["explore", "ALE/Breakout-v5", "--frames", "3k", "--run-dir", str(run)]
    assert main([*explore, *quiet]) == 0
    args = ["--frames", "512", "--baselines", "none", "--eval-episodes", "1", "--no-progress"]
    assert main(["robustify", str(run), *args]) == 0
    assert "(sticky actions 0.25 per frame)" in capsys.readouterr().out
    _, info = load_policy(run / "robustify" / "policy.pt")
    assert info["sticky_unit"] == "frame"
    assert json.loads((run / "robustify" / "policy.json").read_text())["sticky_unit"] == "frame"
    # evaluate: the training's unit by default, another when asked; a GIF drawn as it plays.
    gif = tmp_path / "first.gif"
    assert main(["evaluate", str(run), "--episodes", "2", "--gif", str(gif)]) == 0
    out = capsys.readouterr().out
    assert "2 episodes from reset, sticky actions 0.25 per frame" in out
    assert gif.stat().st_size > 0
    assert main(["evaluate", str(run), "--episodes", "1", "--sticky-unit", "action"]) == 0
    assert "sticky actions 0.25 per action" in capsys.readouterr().out
    # A training begun per frame is not continued per action without --fresh.
    assert main(["robustify", str(run), *args, "--sticky-unit", "action"]) == 2
    assert "--sticky-unit frame (now action)" in capsys.readouterr().err
