"""``evaluate``'s account of an evaluation: how each failed episode ended, checked against a
replay of its actions in a fresh emulator, and --greedy's actions against the network's argmax.
"""

from __future__ import annotations

import numpy as np
import pytest

from stepstone.cli import main
from stepstone.store.sqlite import RunStore
from stepstone.worker import Worker


@pytest.fixture()
def breakout(tmp_path):
    run = tmp_path / "run"
    argv = ["explore", "ALE/Breakout-v5", "--frames", "1k", "--run-dir", str(run)]
    assert main([*argv, "--workers", "1", "--no-progress"]) == 0
    store = RunStore.open(run)
    yield store
    store.close()


def test_each_failure_ends_and_loses_its_first_life_where_a_replay_does(breakout):
    pytest.importorskip("torch")
    from stepstone.learn.ppo import policy_network
    from stepstone.learn.robustify import RobustifyConfig, Runner, evaluate

    # Repeats drawn per action and no no-ops: the actions taken replay the episode.
    cfg = RobustifyConfig(sticky=0.25, sticky_unit="action", seed=3, max_noops=0)
    runner = Runner(breakout, cfg)
    runner.env.reset(breakout.config.seed)
    model = policy_network(len(runner.obs()), runner.n_actions, 0, (16,))
    taken: list[list[int]] = []
    failures: list[dict] = []
    limit = 300
    rate, _ = evaluate(runner, model, 6, limit, lambda total: False,
                       on_episode=lambda a, _: taken.append(a), failures=failures)  # fmt: skip
    runner.worker.close()
    assert rate == 0 and len(failures) == 6
    env = Worker.from_config(breakout.config).env
    for actions, failure in zip(taken, failures, strict=True):
        env.reset(breakout.config.seed)
        lives, first, ended = env.lives(), None, False
        for i, a in enumerate(actions, start=1):
            _, term, trunc = env.step(a)
            if env.lives() < lives and first is None:
                first = i
            lives = env.lives()
            ended = term or trunc
        assert failure == {"ended": ended, "first_life_lost": first}
        assert ended or len(actions) == limit
    # A random network loses lives in Breakout within 300 actions: the check above saw some.
    assert sum(f["first_life_lost"] is not None for f in failures) >= 3


def test_greedy_takes_the_most_probable_action(breakout):
    torch = pytest.importorskip("torch")
    from stepstone.learn.ppo import policy_network
    from stepstone.learn.robustify import RobustifyConfig, Runner, evaluate

    cfg = RobustifyConfig(sticky=0.0, seed=3, max_noops=0)
    runner, check = Runner(breakout, cfg), Runner(breakout, cfg)
    runner.env.reset(breakout.config.seed)
    model = policy_network(len(runner.obs()), runner.n_actions, 0, (16,))
    taken: list[list[int]] = []
    evaluate(runner, model, 1, 100, lambda total: False,
             on_episode=lambda a, _: taken.append(a), greedy=True)  # fmt: skip
    check.from_reset()
    with torch.no_grad():
        for a in taken[0]:
            logits, _ = model(torch.as_tensor(check.obs()[None]))
            assert a == int(logits.argmax(-1)[0])
            check.step(a)
    for r in (runner, check):
        r.worker.close()
    # Sampled, the same network takes other actions than its argmax on the same path.
    sampled: list[list[int]] = []
    runner = Runner(breakout, cfg)
    evaluate(runner, model, 1, 100, lambda total: False,
             on_episode=lambda a, _: sampled.append(a))  # fmt: skip
    runner.worker.close()
    assert sampled[0] != taken[0]


def test_evaluate_prints_how_the_failures_ended(tmp_path, capsys):
    pytest.importorskip("torch")
    run = tmp_path / "run"
    explore = ["explore", "ALE/Breakout-v5", "--frames", "3k", "--run-dir", str(run)]
    assert main([*explore, "--workers", "1", "--no-progress"]) == 0
    args = ["--frames", "512", "--baselines", "none", "--eval-episodes", "1", "--no-progress"]
    assert main(["robustify", str(run), *args]) == 0
    capsys.readouterr()
    # One action cannot score what exploring did: both episodes fail at the step limit.
    assert main(["evaluate", str(run), "--episodes", "2", "--max-steps", "1", "--greedy"]) == 0
    out = capsys.readouterr().out
    assert "sticky actions 0.25 per frame, the most probable actions: success 0.00" in out
    assert "failed 2: 2 at the 1-action limit, 0 ended by the environment" in out
    assert np.isfinite(float(out.split("mean score ")[1].split()[0]))
