"""The Phase 2 methods of the papers' code: a window of start points, self-imitation, more
entropy after the start point, several demonstrations."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from stepstone.cli import main
from stepstone.learn.robustify import RobustifyConfig
from stepstone.learn.starts import FORWARD, SPREAD, Starts
from stepstone.store.sqlite import RunStore

torch = pytest.importorskip("torch")


def corridor(tmp_path, user_env_module):
    """A corridor explored to its end: the demonstration these tests train from."""
    run = tmp_path / "run"
    argv = f"explore UserCorridor-v0 --import {user_env_module} --frames 20k --workers 1"
    assert (
        main([*argv.split(), "--goal", "terminated", "--run-dir", str(run), "--no-progress"]) == 0
    )
    return run


def longest_episode(done: np.ndarray) -> int:
    """The most actions any environment took in one training episode (``done``: [T, N])."""
    ends = [np.flatnonzero(done[:, e]) for e in range(done.shape[1])]
    return max(int(np.diff(np.concatenate([[-1], x])).max()) for x in ends)


def test_one_start_point_moves_back_a_step_once_enough_recent_episodes_match():
    s = Starts(length=100, step=10, rate=0.5, judge=4)
    assert s.start == 90 and s.sample(np.random.default_rng(0)) == 90
    assert not any(s.record(90, m) for m in (True, False, False))
    assert s.record(90, True) and s.start == 80  # 2 of the last 4
    assert not s.record(90, True) and s.recent == []  # an episode from the old point: ignored


def test_a_window_spreads_starts_behind_the_start_point_and_a_fifth_beyond():
    s = Starts(length=100, step=1, rate=0.1, judge=20, span=10)
    assert s.start == 99
    points = np.array([s.sample(np.random.default_rng(i)) for i in range(2000)])
    assert points.min() == 90 and points.max() == 99  # the window [start - span + 1, start]
    s.start = 50
    points = np.array([s.sample(np.random.default_rng(i)) for i in range(2000)])
    behind = (points >= 41) & (points <= 50)
    assert points.min() == 41 and points.max() > 90
    assert abs((~behind).mean() - SPREAD * 0.9) < 0.05  # beyond the window: SPREAD, less overlap


def test_a_window_moves_to_where_the_summed_success_reaches_the_rate():
    s = Starts(length=100, step=1, rate=0.2, judge=20, span=10)
    s.start = 60
    for p in range(51, 61):  # success 0.5 at every point of the window
        s.record(p, True)
        s.record(p, False)
    # Summed from the start of the demonstration, 0.5 a point reaches 0.2 * 10 at point 54.
    assert s.update() and s.start == 54
    assert s.success[60] == 0.5 and s.wins == {}
    # Nothing more succeeds anywhere: the old rates still hold the window where it is.
    assert not s.update() and s.start == 54
    # Failure everywhere measured: the window moves forward, as far as the end at most.
    for p in range(51, 61):
        s.record(p, False)
    assert s.update() and s.start == min(54 + FORWARD, 99)
    # Near the reset state the window is cut there, and its width with it.
    s.start, s.success = 3, {}
    s.record(0, True)
    s.record(0, False)
    assert s.update() and s.start == 0  # 0.5 over a width of 1
    state = s.state()
    again = Starts(length=100, step=1, rate=0.2, judge=20, span=10)
    again.restore(state)
    assert again == s


def test_self_imitation_learns_demonstrated_actions_only_where_their_return_beats_the_value():
    from stepstone.learn.ppo import Imitation, policy_network, sil_loss

    cfg = RobustifyConfig()
    obs = np.eye(4, dtype=np.float32)
    demo = Imitation(obs, np.array([2, 2, 0, 1]), np.array([1.0, 1.0, 1.0, 1.0], np.float32))
    model = policy_network(4, 3, seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    rng = np.random.default_rng(0)
    for _ in range(300):
        loss = sil_loss(model, demo, rng.integers(4, size=8), cfg)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = torch.softmax(model(torch.as_tensor(obs))[0], -1).numpy()
    assert (p[np.arange(4), demo.actions] > 0.9).all()

    # A return below what the value already predicts: no imitation (relu(R - V) = 0).
    low = Imitation(obs, demo.actions, np.full(4, -100.0, np.float32))
    model = policy_network(4, 3, seed=0)
    loss = sil_loss(model, low, np.arange(4), replace(cfg, sil_entropy=0.0))
    model.zero_grad()
    loss.backward()
    assert float(model.pi.weight.grad.abs().sum()) == 0.0


def test_entropy_boost_halves_the_logits_for_the_first_actions_past_the_start(
    tmp_path, user_env_module, monkeypatch
):
    from stepstone.learn import robustify as rb
    from stepstone.learn.ppo import act, policy_network

    model = policy_network(3, 4, seed=0)
    with torch.no_grad():
        model.pi.weight.mul_(50)  # a sharp policy
    x = np.ones(3, np.float32)
    logits = model(torch.as_tensor(x).unsqueeze(0))[0][0].detach()
    plain = torch.distributions.Categorical(logits=logits)
    halved = torch.distributions.Categorical(logits=logits / 2)
    a, logp, _ = act(model, x, boost=True)
    assert halved.entropy() > plain.entropy() and logp == pytest.approx(float(halved.log_prob(
        torch.tensor(a))), abs=1e-5)  # fmt: skip

    run = corridor(tmp_path, user_env_module)
    seen: list[dict] = []
    monkeypatch.setattr(rb, "update", lambda model, opt, buf, *a: seen.append(buf))
    store = RunStore.open(run)
    cfg = rb.RobustifyConfig(frames=512, step=5, entropy_boost=3, eval_episodes=1, envs=4)
    rb.robustify(store, cfg, baselines=())
    boost, done = np.asarray(seen[0]["boost"]), np.asarray(seen[0]["done"])
    assert boost.shape == done.shape == (128, 4)  # 128 steps of each of 4 environments
    # From the start point (34 of 39 actions), episodes of up to 5 actions: the first 3 boosted,
    # counted in each environment's own episodes.
    for e in range(4):
        ends = np.flatnonzero(done[:, e])
        for f, last in zip([0, *(ends[:-1] + 1)], ends, strict=True):
            assert list(boost[f : last + 1, e]) == [j < 3 for j in range(last - f + 1)]


def test_max_steps_bounds_every_training_episode(tmp_path, user_env_module, monkeypatch):
    """--max-steps caps episodes from any start point, not only from reset: a win past the
    task's own limit would teach the policy nothing its evaluation can use."""
    from stepstone.learn import robustify as rb

    run = corridor(tmp_path, user_env_module)
    seen: list[dict] = []
    monkeypatch.setattr(rb, "update", lambda model, opt, buf, *a: seen.append(buf))
    longest = {}
    for cap in (0, 3):  # from 34 of 39 actions: up to 2 * 5 + 20 = 30 actions uncapped
        seen.clear()
        cfg = rb.RobustifyConfig(frames=1_024, step=5, max_steps=cap, eval_episodes=1, envs=2)
        rb.robustify(RunStore.open(run), cfg, baselines=(), fresh=True)
        done = np.concatenate([np.asarray(b["done"]) for b in seen])
        longest[cap] = longest_episode(done)
    assert longest[3] == 3 < longest[0]


def test_lag_bounds_a_training_episode_by_the_demonstration_left(
    tmp_path, user_env_module, monkeypatch
):
    """--lag ends an episode once its score lags the demonstration's: where the only reward is
    at the goal, once it has taken about that many actions more than the demonstration from
    its start point; tighter near the goal, where a fixed --max-steps is loose."""
    from stepstone.learn import robustify as rb

    run = corridor(tmp_path, user_env_module)
    seen: list[dict] = []
    monkeypatch.setattr(rb, "update", lambda model, opt, buf, *a: seen.append(buf))
    # Until the start point first moves, every episode starts at 34 of 39 actions: 5 left.
    # The reference (atari_reset/wrappers.py, ReplayResetEnv.step) ends an episode at
    # action_nr a > 2 once its score is below min(returns[a - 2 : a + 2]), its returns array
    # of 39 holding 1 only at index 38: first at a = 40, 6 actions from 34. None: 2 * 5 + 20.
    longest = {}
    for lag in (0, 2):
        seen.clear()
        cfg = rb.RobustifyConfig(frames=1_024, step=5, lag=lag, eval_episodes=1, envs=2)
        result = rb.robustify(RunStore.open(run), cfg, baselines=(), fresh=True)
        first = result["start_moves"][0]["frames"] if result["start_moves"] else cfg.frames
        done = np.concatenate([np.asarray(b["done"]) for b in seen])[: first // 2]
        longest[lag] = longest_episode(done)
    assert longest[2] == 6 < longest[0]


def test_from_reset_spends_its_share_of_steps_from_reset_outside_the_window_and_the_lag(
    tmp_path, user_env_module, monkeypatch
):
    """--from-reset 0.5, Go-Explore's --test_from_start: about half the training steps in
    episodes from reset, drawn against the others by their mean length; those episodes play
    on past --lag, boost their own first actions, and never move the start point."""
    from stepstone.learn import robustify as rb

    run = corridor(tmp_path, user_env_module)
    seen: list[dict] = []
    monkeypatch.setattr(rb, "update", lambda model, opt, buf, *a: seen.append(buf))
    points: list[int] = []
    start = rb.Runner.start
    monkeypatch.setattr(rb.Runner, "start", lambda self, demo, t, noops: (
        points.append(t), start(self, demo, t, noops))[1])  # fmt: skip
    judged: list[int] = []
    record = Starts.record
    monkeypatch.setattr(Starts, "record", lambda self, point, matched: (
        judged.append(point), record(self, point, matched))[1])  # fmt: skip
    shares = {}
    for share in (0.0, 0.5):
        seen.clear(), points.clear(), judged.clear()
        # One environment, a start point that never moves from 34 of 39 (--window 10**6),
        # so that an episode from reset is one that begins at 0; --lag 2 ends the others
        # within 6 actions (the test above).
        cfg = rb.RobustifyConfig(frames=8_192, step=5, window=10**6, lag=2, entropy_boost=3,
                                 from_reset=share, eval_episodes=1, envs=1)  # fmt: skip
        result = rb.robustify(RunStore.open(run), cfg, baselines=(), fresh=True)
        assert result["start_moves"] == []
        done = np.concatenate([np.asarray(b["done"]) for b in seen])[:, 0]
        boost = np.concatenate([np.asarray(b["boost"]) for b in seen])[:, 0]
        ends = np.flatnonzero(done)
        firsts = np.concatenate([[0], ends[:-1] + 1])
        fresh = np.array(points[: len(ends)]) == 0  # the episodes that ended, in order
        lengths = ends - firsts + 1
        shares[share] = lengths[fresh].sum() / lengths.sum()
        assert len(judged) == (~fresh).sum() and 0 not in judged
        assert lengths[~fresh].max() <= 6
        for f, n in zip(firsts[fresh], lengths[fresh], strict=True):
            assert list(boost[f : f + n]) == [j < 3 for j in range(n)]
        if share:  # --lag 2 would end one from reset 40 actions in (the goal is 39 away)
            assert lengths[fresh].max() > 40
    assert shares[0.0] == 0 and 0.35 < shares[0.5] < 0.65


def test_lag_is_the_reference_score_rule():
    """Cases worked by hand through Go-Explore's rule (atari_reset/wrappers.py,
    ReplayResetEnv.step: after action_nr a > lag, done when the score is below
    min(returns[a - lag : a + lag]), a clipped to the last index; its returns[i] is the return
    after i + 1 actions). Rewards 0, 100, 0, 0, 300: its returns are 0, 100, 100, 100, 400."""
    from stepstone.learn.robustify import lags

    ours = [0.0, 0.0, 100.0, 100.0, 100.0, 400.0]  # after 0..5 actions
    assert not lags(ours, 1, 0.0, 1)  # a = 1 is not past the lag: not checked
    assert lags(ours, 2, 0.0, 1)  # min(100, 100): the key is late
    assert not lags(ours, 2, 100.0, 1)
    assert not lags(ours, 4, 100.0, 1)  # min(returns[3:5]) = min(100, 400)
    assert lags(ours, 5, 100.0, 1)  # returns[4:6] = [400]
    assert lags(ours, 9, 100.0, 1) and not lags(ours, 9, 400.0, 1)  # index clipped to 4
    assert not lags(ours, 50, 0.0, 50) and lags(ours, 51, 0.0, 50)  # min(returns[1:101]) = 100
    # A cost each step (MountainCar): cut once past the demonstration's length, not before.
    costs = [0.0, -1.0, -2.0, -3.0]
    assert not lags(costs, 3, -3.0, 1) and lags(costs, 4, -4.0, 1)


def test_scaled_rewards_are_the_reference_autoscale():
    """Worked by hand through atari-reset's train_atari.py (get_mean_reward with
    --autoscale_fn=mean --autoscale_value, then scale_rewards = 1 / (mean / --autoscale)):
    rewards 0, 100, 0, 300 at gamma 0.5 give discounted returns 87.5, 175, 150, 300, whose
    mean is 178.125; each reward is multiplied by 10 / 178.125."""
    from stepstone.learn.robustify import Demo, RobustifyConfig, rewards, scale

    demo = Demo([], [0.0, 0.0, 100.0, 100.0, 400.0], [], np.zeros(4, dtype=np.int64), [])
    cfg = RobustifyConfig(rewards="scaled", gamma=0.5)
    assert scale([demo], 0.5) == pytest.approx(10 / 178.125)
    assert rewards([demo], True, cfg)(300.0) == pytest.approx(300 * 10 / 178.125)
    # Two demonstrations: the mean over all their steps (the reference globs a directory).
    other = Demo([], [0.0, 10.0], [], np.zeros(1, dtype=np.int64), [])
    assert scale([demo, other], 0.5) == pytest.approx(10 / ((87.5 + 175 + 150 + 300 + 10) / 5))
    assert scale([Demo([], [0.0, 0.0], [], np.zeros(1, dtype=np.int64), [])], 0.5) == 1.0
    auto = replace(cfg, rewards="auto")
    assert rewards([demo], True, auto)(300.0) == 1.0  # the sign on Atari
    assert rewards([demo], False, auto)(-0.5) == -0.5  # raw elsewhere


def test_several_demonstrations_train_together(tmp_path):
    pytest.importorskip("minigrid")
    from stepstone.learn.robustify import RobustifyConfig, robustify

    run = tmp_path / "run"
    argv = f"explore MiniGrid-Empty-5x5-v0 --frames 5k --workers 1 --run-dir {run}"
    assert main([*argv.split(), "--no-progress"]) == 0
    store = RunStore.open(run)
    archive = store.load_archive()
    goals = np.flatnonzero(archive.goal[: len(archive)] > 0)
    assert len(goals) >= 2  # two ways into the goal square
    cfg = RobustifyConfig(frames=2_048, demos=3, sil=0.1, start_window=5, eval_episodes=2)
    result = robustify(store, cfg, baselines=("bc",))
    lengths = sorted(int(archive.length[i]) for i in goals)[: len(result["demos"])]
    assert len(result["demos"]) == min(3, len(goals))
    assert sorted(d["length"] for d in result["demos"]) == lengths
    best = archive.goal_entry()
    assert result["demo_length"] == archive.length[best]  # the first is the best one
    assert all("demo" in m for m in result["start_moves"])
    assert {m["demo"] for m in result["start_moves"]} <= set(range(len(result["demos"])))


def test_each_demonstration_stops_where_it_first_reaches_the_goal(tmp_path):
    """Where reaching the goal does not end the episode (a score, as Montezuma's score>=400),
    the cells past it hold the same path with steps added: --demos K must give K ways to the
    goal, not one way and its extensions."""
    from stepstone.learn import robustify as rb
    from stepstone.trajectories import TrajectoryTree

    run = tmp_path / "run"
    argv = f"explore CartPole-v1 --frames 3k --workers 1 --goal score>=15 --run-dir {run}"
    assert main([*argv.split(), "--no-progress"]) == 0
    store = RunStore.open(run)
    archive = store.load_archive()
    assert (archive.length[np.flatnonzero(archive.goal[: len(archive)] > 0)] > 15).any()
    cfg = rb.RobustifyConfig(demos=8)
    runner = rb.Runner(store, cfg)
    best = rb.demonstration(archive, None)
    demos = rb.demonstrations(runner, archive, TrajectoryTree(store.nodes), best, cfg)
    runner.worker.close()
    assert len(demos) >= 2  # CartPole's reward is 1 a step: the goal is the 15th action
    assert all(len(d.actions) == 15 and d.goals[-1] and not any(d.goals[:-1]) for d in demos)
    assert len({d.actions.tobytes() for d in demos}) == len(demos)


def test_a_window_of_start_points_walks_the_corridor_back_to_reset(tmp_path, user_env_module):
    from stepstone.learn.robustify import RobustifyConfig, robustify

    run = corridor(tmp_path, user_env_module)
    cfg = RobustifyConfig(frames=8_000, start_window=10, advance_rate=0.2, eval_episodes=20)
    result = robustify(RunStore.open(run), cfg, baselines=())
    assert result["reached_reset"] and result["success_backward"] >= 0.9


def test_gamma_discounts_the_demonstrations_return_and_a_checkpoint_keeps_it(
    tmp_path, user_env_module, capsys
):
    """--gamma (Go-Explore used 0.999 on Atari) sets how much of a reward far ahead reaches
    self-imitation and PPO; a training continues only with the discount it began with."""
    from stepstone.learn import robustify as rb
    from stepstone.trajectories import TrajectoryTree

    run = corridor(tmp_path, user_env_module)
    store = RunStore.open(run)
    archive = store.load_archive()
    for gamma in (0.99, 0.999):
        cfg = rb.RobustifyConfig(gamma=gamma)
        runner = rb.Runner(store, cfg)
        best = rb.demonstration(archive, None)
        demos = rb.demonstrations(runner, archive, TrajectoryTree(store.nodes), best, cfg)
        returns = rb.imitation(demos, runner, cfg).returns
        assert len(returns) == 39 and returns[-1] == 1.0  # the reward at the corridor's end
        assert returns[0] == pytest.approx(gamma**38)
        runner.worker.close()
    args = ["robustify", str(run), "--baselines", "none", "--eval-episodes", "1", "--no-progress"]
    assert main([*args, "--frames", "512", "--gamma", "0.999"]) == 0
    capsys.readouterr()
    assert main([*args, "--frames", "1k", "--gamma", "0.9"]) == 2
    assert "--gamma 0.999 (now 0.9)" in capsys.readouterr().err
    assert main([*args, "--frames", "1k"]) == 0  # not given: the checkpoint's
    assert "begun with: --gamma 0.999 (add --fresh" in capsys.readouterr().err


def test_self_imitation_looks_where_go_explores_phase_2_looks():
    """--sil-sample window: 30% of the imitated steps from reset up to 32 past the start point,
    the rest from 10 before the window to 32 past its start; the loss weighs 2/34 of --sil
    (the reference's 2 imitation environments beside 32, its loss a mean over the batch)."""
    from types import SimpleNamespace

    from stepstone.learn.robustify import Demo, RobustifyConfig, self_imitation
    from stepstone.learn.starts import Starts

    def demo(n: int) -> Demo:
        obs = [np.zeros(3, np.float32)] * (n + 1)
        return Demo(
            [b""] * (n + 1), [0.0] * n + [1.0], obs, np.zeros(n, np.int64), [None] * (n + 1)
        )

    demos = [demo(200), demo(100)]
    starts = [
        Starts(200, 1, 0.1, 20, span=40, start=120),
        Starts(100, 1, 0.1, 20, span=40, start=99),
    ]
    runner = SimpleNamespace(atari=False)
    cfg = RobustifyConfig(sil=0.1, sil_sample="window")
    sil = self_imitation(demos, runner, cfg, starts, np.random.default_rng(0))
    assert sil.weight == pytest.approx(0.1 * 2 / 34)
    picks = sil.pick(40_000)
    first, second = picks[picks < 200], picks[picks >= 200] - 200
    assert abs(len(first) / len(picks) - 0.5) < 0.02
    assert first.max() == 120 + 32 - 1 and second.max() == 99
    # Demonstration 0: [71, 152) near its window; below 71 only the 30% drawn from reset.
    assert abs(np.mean(first >= 71) - (0.7 + 0.3 * 81 / 152)) < 0.02
    assert abs(np.mean(second >= 50) - (0.7 + 0.3 * 50 / 100)) < 0.02
    starts[0].start = 10  # the window moved: so does imitation
    moved = sil.pick(20_000)
    assert moved[moved < 200].max() == 41
    # --sil-sample all (the default): every step alike, the whole weight.
    flat = self_imitation(demos, runner, replace(cfg, sil_sample="all"), starts,
                          np.random.default_rng(0))  # fmt: skip
    assert flat.weight == 0.1
    assert abs(np.mean(flat.pick(40_000) < 200) - 200 / 300) < 0.02


def test_hidden_sets_the_policy_layers_and_evaluate_rebuilds_them(tmp_path, user_env_module):
    """--hidden 16,8: the saved policy has those layers, `stepstone evaluate` rebuilds them
    from policy.pt, and a width list that is not one is refused by name."""
    import torch

    run = corridor(tmp_path, user_env_module)
    argv = ["robustify", str(run), "--frames", "1k", "--baselines", "none", "--no-progress"]
    assert main([*argv, "--hidden", "16,8", "--eval-episodes", "1"]) == 0
    state = torch.load(run / "robustify" / "policy.pt", weights_only=True)["state_dict"]
    assert state["body.0.weight"].shape[0] == 16 and state["body.2.weight"].shape == (8, 16)
    assert state["pi.weight"].shape[1] == state["v.weight"].shape[1] == 8
    assert main(["evaluate", str(run), "--episodes", "1"]) == 0
    assert main([*argv, "--hidden", "32,32"]) == 2  # a training of other layers: refused
    for bad in ("wide", "0,8", ""):
        assert main([*argv, "--fresh", "--hidden", bad]) == 2


def test_life_loss_continue_keeps_a_training_episode_past_a_lost_life(tmp_path, monkeypatch):
    """Atari: by default, Go-Explore's Phase 2 rule (phase2_atari.sh
    --no_game_over_on_life_loss), a training episode goes on past a lost life; with
    --life-loss end (DQN's rule, stepstone's before) the lost life ends it."""
    from stepstone.learn import robustify as rb

    run = tmp_path / "run"
    # fixed cells: dynamic ones spend the 3k frames choosing a first shape from the start
    explore = ["explore", "ALE/Breakout-v5", "--frames", "3k", "--run-dir", str(run), "--cells",
               "downscale"]  # fmt: skip
    assert main([*explore, "--workers", "1", "--no-progress"]) == 0
    seen: list[dict] = []
    lost: list[bool] = []
    monkeypatch.setattr(rb, "update", lambda model, opt, buf, *a: seen.append(buf))
    step = rb.Runner.step

    def step_and_note(self, action):
        out = step(self, action)
        lost.append(self.life_lost)
        return out

    monkeypatch.setattr(rb.Runner, "step", step_and_note)
    assert rb.RobustifyConfig().life_loss == "continue"
    for rule in ("end", "continue"):
        seen.clear()
        lost.clear()
        cfg = rb.RobustifyConfig(frames=2_048, eval_episodes=1, envs=2, life_loss=rule)
        rb.robustify(RunStore.open(run), cfg, baselines=(), fresh=True)
        done = np.concatenate([np.asarray(b["done"]) for b in seen]).ravel()
        died = np.asarray(lost[: done.size])  # the evaluation's steps come after training's
        assert died.sum() >= 2, "a barely trained Breakout policy loses lives"
        if rule == "end":
            assert done[died].all()
        else:  # (the last life's loss is the game's end, which ends any episode)
            assert (~done[died]).sum() >= 2


def test_anneal_linear_shrinks_step_size_and_clipping_as_ppos_atari_setting(
    tmp_path, user_env_module, monkeypatch
):
    """--anneal linear: Adam's step size and the clipping range times alpha, which falls
    linearly from 1 to 0 over --frames (Schulman et al. 2017, table 5: "2.5e-4 x alpha",
    "0.1 x alpha"; baselines ppo2 takes alpha = 1 - (update - 1) / updates, here the steps done
    before each rollout over --frames). Without it both stay as given."""
    from stepstone.learn import robustify as rb

    run = corridor(tmp_path, user_env_module)
    seen: dict[str, list] = {}

    def record(model, opt, buf, last_obs, cfg, sil=None):
        seen[cfg.anneal].append((opt.param_groups[0]["lr"], cfg.clip))

    monkeypatch.setattr(rb, "update", record)
    for anneal in ("none", "linear"):
        seen[anneal] = []
        cfg = rb.RobustifyConfig(frames=2_048, step=5, eval_episodes=1, anneal=anneal)
        rb.robustify(RunStore.open(run), cfg, baselines=(), fresh=True)
    # Four rollouts of 512 steps, begun at 0, 512, 1,024 and 1,536 steps of 2,048.
    assert seen["none"] == [(2.5e-4, 0.2)] * 4
    lrs, clips = zip(*seen["linear"], strict=True)
    assert lrs == pytest.approx([2.5e-4, 1.875e-4, 1.25e-4, 0.625e-4])
    assert clips == pytest.approx([0.2, 0.15, 0.1, 0.05])
    with pytest.raises(SystemExit) as refused:  # argparse names the choices
        main(["robustify", str(run), "--anneal", "cosine"])
    assert refused.value.code == 2


def test_life_loss_end_is_refused_where_there_are_no_lives(tmp_path, user_env_module):
    """--life-loss end would change nothing outside Atari: refused, naming the fix. A training
    from before the option (its checkpoint reads as 'end') still continues."""
    import json

    from stepstone.errors import ConfigError
    from stepstone.learn import robustify as rb
    from stepstone.learn.checkpoint import load, save

    run = corridor(tmp_path, user_env_module)
    store = RunStore.open(run)
    with pytest.raises(ConfigError, match="--life-loss acts on Atari's lives and "
                       "UserCorridor-v0 has none: leave it out"):  # fmt: skip
        rb.robustify(store, rb.RobustifyConfig(frames=512, life_loss="end"), baselines=())
    cfg = rb.RobustifyConfig(frames=512, step=5, eval_episodes=1)
    rb.robustify(store, cfg, baselines=(), fresh=True)
    ckpt = run / "robustify" / "checkpoint-backward.pt"
    saved = load(ckpt)
    settings = json.loads(saved["settings"])
    del settings["life_loss"]  # as written before the option existed
    save(ckpt, {**saved, "settings": json.dumps(settings)})
    notes: list[str] = []
    again = rb.robustify(store, rb.RobustifyConfig(frames=1_024), baselines=(), log=notes.append)
    assert again["config"]["life_loss"] == "end" and again["frames_backward"] == 1_024
    assert any("continued from its checkpoint at 512 steps" in n for n in notes)
    store.close()


def test_preset_go_explore_is_the_measured_montezuma_setting_and_given_options_stay():
    """--preset go-explore sets what bench/phase2_montezuma.sh ran for the mz-refan seeds (the
    runs that held Montezuma's first room), read from the script itself."""
    from stepstone.cli import build_parser
    from stepstone.learn.robustify import with_preset
    from stepstone.options import build

    script = (Path(__file__).parents[1] / "bench" / "phase2_montezuma.sh").read_text()
    ge = re.search(r'^GE="([^"]+)"', script, re.M).group(1)
    extra = re.search(r'mz-refan-s0\) seed=0 extra="([^"]+)"', script).group(1)

    def config(argv: str) -> RobustifyConfig:
        args = build_parser().parse_args(["robustify", "D", *argv.split()])
        return with_preset(build(RobustifyConfig, args), args.preset)

    assert config("--preset go-explore") == config(f"{ge} {extra}")
    assert config("--preset go-explore") != config("")
    given = config("--preset go-explore --entropy 0.05 --hidden 64,32")
    assert (given.entropy, given.hidden, given.lag) == (0.05, "64,32", 50)
    with pytest.raises(SystemExit):
        config("--preset go-explorer")
