"""RLVR parts against hand-computed values: allocators, state, advantages, losses, batches."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from stepstone.errors import ConfigError, StepstoneError
from stepstone.rlvr import (
    XRPO,
    BudgetError,
    EmptyGroupError,
    Knapsack,
    PromptStats,
    PromptStore,
    RewardError,
    Uniform,
    Visit,
    knapsack_value,
    make_allocator,
)
from stepstone.rlvr.advantages import group_advantages, recalibrate, sharpen_novelty
from stepstone.rlvr.batches import Group, RoRecomp, SelfImitationBuffer, dynamic_sampling
from stepstone.rlvr.losses import overlong_penalty, policy_loss

# ---------------------------------------------------------------- a package apart


def test_rlvr_imports_without_the_exploration_engine():
    """``import stepstone.rlvr`` loads of stepstone only its errors, and neither gymnasium nor
    the Atari emulator; the engine's public names still import from ``stepstone``."""
    code = (
        "import sys, stepstone.rlvr; print(sorted(m for m in sys.modules if m.split('.')[0] in "
        "('stepstone', 'gymnasium', 'ale_py') and not m.startswith('stepstone.rlvr')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['stepstone', 'stepstone.errors']"
    code = "from stepstone import Engine, Worker; print(Engine.__module__, Worker.__module__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["stepstone.engine", "stepstone.worker"]


# ---------------------------------------------------------------- allocators


def test_knapsack_value_hand_computed():
    # p = 0.5, N = 4: (1 - 1/16 - 1/16) * 0.5 * 0.25 = 0.875 * 0.125
    assert knapsack_value(0.5, 4) == pytest.approx(0.109375)
    # p = 0.2, N = 2: (1 - 0.04 - 0.64) * 0.2 * 0.64 = 0.32 * 0.128
    assert knapsack_value(0.2, 2) == pytest.approx(0.04096)
    assert knapsack_value(0.0, 8) == 0 and knapsack_value(1.0, 8) == 0


def test_knapsack_issue_example_spare_goes_to_unsolved_prompts():
    # liziniu/KnapsackRL exploration_utils.sampling_budget_by_knapsack worked by hand:
    # 4 unsolved, 8 at p = .25, 4 solved; budget 128, min 2, max 32. Everyone starts at 2
    # (32), 96 left. Each p = .25 prompt needs int(log(.1) / log(.75)) = int(8.0039) = 8, so 64
    # in all < 96: the spare 32 goes to the 4 unsolved prompts, 8 each -> 10. The DP splits 64
    # over 8 equal prompts, 8 each -> 10. Solved prompts keep 2.
    stats = PromptStats.from_rates([0.0] * 4 + [0.25] * 8 + [1.0] * 4)
    got = Knapsack().allocate(stats, 128, 2, 32).tolist()
    assert got == [10] * 4 + [10] * 8 + [2] * 4


def test_knapsack_dp_counts_an_untouched_prompt_as_zero():
    # p = .5 and .1 at min 2, budget 6 (2 left; needs 3 and min(8, 21.85) = 8 -> no spare).
    # Their DP values k > 0 extra at knapsack_value(p, 2 + k), k = 0 at 0:
    #   (2, 0): V(.5, 4) = .875 * .125 = .109375
    #   (1, 1): V(.5, 3) + V(.1, 3) = .75 * .125 + .27 * .081 = .09375 + .02187 = .11562
    #   (0, 2): V(.1, 4) = (1 - .0001 - .6561) * .081 = .027853
    # so [3, 3], where maximising the plain sum of values would give [4, 2].
    stats = PromptStats.from_rates([0.5, 0.1])
    assert Knapsack().allocate(stats, 6, 2, 8).tolist() == [3, 3]


def test_knapsack_all_unsolved_or_solved():
    # No partly solved prompt: everything left goes to the unsolved ones (2 + 12 / 2 = 8).
    stats = PromptStats.from_rates([0.0, 1.0, 0.0, 1.0])
    assert Knapsack().allocate(stats, 20, 2, 16).tolist() == [8, 2, 8, 2]
    # All solved: the authors fall back to the uniform split.
    assert Knapsack().allocate(PromptStats.from_rates([1.0] * 4), 20, 2, 16).tolist() == [5] * 4


def test_knapsack_prompts_seen_too_little_get_the_uniform_share():
    # min_buffer_length = 8: a prompt with fewer rollouts gets n = budget // prompts; as in
    # their code it counts as unsolved, so it also shares the spare with the p = 0 prompt.
    # [8 (unseen), 2 (p=.5), 2 (p=0)] = 12, 12 left; p=.5 needs int(3.32) = 3 -> spare 9 over
    # prompts 0 and 2 (5 and 4), DP gives p=.5 its 3: [13, 5, 6].
    stats = PromptStats.from_rates([float("nan"), 0.5, 0.0])
    assert Knapsack().allocate(stats, 24, 2, 32).tolist() == [13, 5, 6]
    assert Knapsack().allocate(PromptStats.unseen(list("abcd")), 32, 2, 32).tolist() == [8] * 4


def test_knapsack_max_per_prompt_holds():
    # The issue's example with budget 100 and max 8: 32 at the minimum, 68 left; the p = .25
    # prompts need min(8, 8.0039) = 8 each, 64 < 68, so the spare 4 goes to the unsolved ones
    # (3 each). The DP can place only 8 x 6 = 48 of the 64 (all p = .25 prompts reach 8).
    # The authors spread the other 16 over the p = .25 prompts beyond max_n (10 each); with
    # the maximum held, they go round-robin to the prompts with room: 2 each to the 8 unsolved
    # and solved ones.
    stats = PromptStats.from_rates([0.0] * 4 + [0.25] * 8 + [1.0] * 4)
    got = Knapsack().allocate(stats, 100, 2, 8).tolist()
    assert got == [5] * 4 + [8] * 8 + [4] * 4


def test_uniform_and_registry():
    stats = PromptStats.unseen(["a", "b", "c"])
    assert Uniform().allocate(stats, 10, 2).tolist() == [4, 3, 3]
    assert isinstance(make_allocator("knapsack"), Knapsack)
    with pytest.raises(ConfigError, match="choose one of uniform, knapsack, xrpo"):
        make_allocator("thompson")


def test_xrpo_half_width_and_priority_hand_computed():
    x = XRPO(alpha=0.05, lam=0.1)
    # t_{0.975, 1} = 12.7062; h(2) = 12.7062 * 0.5 / sqrt(2) = 4.4923
    assert x.half_width(0.5, 2) == pytest.approx(12.7062047 * 0.5 / math.sqrt(2), rel=1e-6)
    # s = 0: no uncertainty to reduce, only the bonus 0.1 * sqrt(ln 4 / 2) = 0.083255
    assert x.priority(0.0, 2, 4) == pytest.approx(0.1 * math.sqrt(math.log(4) / 2))
    # With no bonus every extra rollout goes to the uncertain prompt.
    stats = PromptStats.from_rates([0.5, 0.0])  # std 0.5 and 0
    assert XRPO(lam=0.0).allocate(stats, 7, 2, 7).tolist() == [5, 2]


def test_xrpo_uses_the_sample_std_of_the_t_interval():
    # Rewards [1, 0] (n = 2): population std 0.5, sample std 0.5 * sqrt(2 / 1) = 0.70711;
    # [1, 0, 1, 0, 1, 0, 1, 0] (n = 8): 0.5 * sqrt(8 / 7) = 0.53452.
    got = XRPO.sample_std(np.array([0.5, 0.5, 0.0]), np.array([2, 8, 1]))
    assert np.allclose(got, [0.70711, 0.53452, 0.0], atol=1e-5)
    # Same population std, but the prompt seen twice is less certain: its interval is wider
    # (0.70711 vs 0.53452 per unit of t / sqrt(n)), so the one extra rollout goes to it.
    stats = PromptStats.from_rates([0.5, 0.5], n=[8, 2])
    assert XRPO(lam=0.0).allocate(stats, 5, 2, 5).tolist() == [2, 3]


def test_xrpo_prefers_uncertain_prompts():
    stats = PromptStats.from_rates([0.5, 0.1, 0.0, 1.0])
    c = XRPO().allocate(stats, 40, 2, 20)
    # s = 0 for p in {0, 1}: those get rollouts from the exploration bonus only, equally.
    assert c[0] > c[1] > max(c[2], c[3]) and abs(c[2] - c[3]) <= 1


@settings(max_examples=60, deadline=None)
@given(
    rates=st.lists(st.one_of(st.floats(0, 1), st.just(float("nan"))), min_size=1, max_size=12),
    lo=st.integers(1, 4),
    hi_extra=st.integers(0, 12),
    frac=st.floats(0, 1),
    name=st.sampled_from(["uniform", "knapsack", "xrpo"]),
)
def test_allocations_sum_to_budget_within_bounds(rates, lo, hi_extra, frac, name):
    hi = lo + hi_extra
    k = len(rates)
    budget = k * lo + int(frac * k * (hi - lo))
    stats = PromptStats.from_rates(rates)
    counts = make_allocator(name).allocate(stats, budget, lo, hi)
    assert counts.sum() == budget and counts.min() >= lo and counts.max() <= hi


def test_budget_errors_name_the_fix():
    stats = PromptStats.unseen(["a", "b", "c"])
    with pytest.raises(BudgetError, match=r"3 prompts x min_per_prompt 4 = 12; raise the budget"):
        Knapsack().allocate(stats, 8, 4)
    with pytest.raises(BudgetError, match="raise max_per_prompt"):
        Uniform().allocate(stats, 30, 2, 4)
    with pytest.raises(BudgetError, match="min_per_prompt >= 1"):
        Uniform().allocate(stats, 3, 0)
    assert issubclass(BudgetError, ConfigError)


# ---------------------------------------------------------------- state


def test_store_keeps_latest_visit_and_totals(tmp_path):
    with PromptStore(tmp_path) as s:
        s.record([Visit.from_group("a", 0, [1, 0, 0, 0], [3, 4, 5, 4])])
        s.record([Visit.from_group("a", 5, [1, 1, 0, 1]), Visit.from_group("b", 5, [0, 0])])
    with PromptStore(tmp_path) as s:  # reopened from disk
        st_ = s.stats(["a", "b", "never"])
        assert st_.rate[:2].tolist() == [0.75, 0.0] and math.isnan(st_.rate[2])
        assert st_.n.tolist() == [4, 2, 0] and st_.last_step.tolist() == [5, 5, -1]
        assert s.totals("a") == (2, 8, 4) and s.last_step() == 5
        assert s.history("a")[0].length_mean == 4.0


def test_store_pools_the_last_16_rewards_as_knapsack_rl_does():
    # rl_dataset.update_sample_state: a visit of fewer than 16 rollouts is pooled with earlier
    # ones, newest first, up to 16. Visits (oldest first): 8 with 8 successes, 8 with 0, then
    # 4 with 2: the last 16 are 4 (2 wins) + 8 (0) + 4 of the first 8 (4 wins) = 6 / 16.
    with PromptStore(None) as s:
        s.record([Visit.from_group("a", 0, [1] * 8)])
        s.record([Visit.from_group("a", 1, [0] * 8)])
        s.record([Visit.from_group("a", 2, [1, 1, 0, 0])])
        s.record([Visit.from_group("b", 2, [1] * 12 + [0] * 8)])  # >= 16: its own rate
        got = s.stats(["a", "b"])
        assert got.pooled.tolist() == [6 / 16, 12 / 20] and got.seen.tolist() == [20, 20]
        assert got.rate.tolist() == [0.5, 0.6]


def test_failed_step_writes_nothing(tmp_path):
    with PromptStore(tmp_path) as s:
        s.record([Visit.from_group("a", 0, [1, 0])])
        bad = [Visit.from_group("a", 1, [1, 1]), "not a visit"]
        with pytest.raises(AttributeError):
            s.record(bad)  # type: ignore[list-item]
        assert s.last_step() == 0 and s.totals("a") == (1, 2, 1)


def test_killed_run_loses_no_committed_step(tmp_path):
    script = textwrap.dedent(
        f"""
        from stepstone.rlvr import PromptStore, Visit
        s = PromptStore({str(tmp_path)!r})
        step = 0
        while True:
            s.record([Visit.from_group(f"p{{i}}", step, [1, 0, 1]) for i in range(20)])
            print(step, flush=True)
            step += 1
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    for _ in range(30):
        last_printed = int(proc.stdout.readline())
    proc.kill()
    proc.wait()
    with PromptStore(tmp_path) as s:
        last = s.last_step()
        assert last >= last_printed
        # Every committed step is whole: all 20 prompts, never a half-written step.
        for i in range(20):
            assert s.totals(f"p{i}") == (last + 1, 3 * (last + 1), 2 * (last + 1))


def test_reward_errors_name_the_fix():
    with pytest.raises(RewardError, match=r"returned 'yes' \(str\) at position 1; return one"):
        Visit.from_group("a", 0, [1.0, "yes"])
    with pytest.raises(RewardError, match="finite"):
        group_advantages([[1.0, float("nan")]])
    with pytest.raises(EmptyGroupError, match="min_per_prompt >= 1"):
        group_advantages([[1.0, 0.0], []])
    assert issubclass(RewardError, StepstoneError)


# ---------------------------------------------------------------- advantages


def test_group_advantages_unequal_sizes_hand_computed():
    a = group_advantages([[1, 0, 0, 1], [1, 0, 0], [1, 1], [0.5]])
    # verl / TRL: unbiased std. mean .5, std sqrt(1/3) = .57735 -> +-.86603
    assert np.allclose(a[0], [0.86603, -0.86603, -0.86603, 0.86603], atol=1e-5)
    # mean 1/3, std sqrt(1/3): (2/3)/.57735 = 1.15470, (-1/3)/.57735 = -.57735
    assert np.allclose(a[1], [1.15470, -0.57735, -0.57735], atol=1e-4)
    # population std (ddof=0): sqrt(2/9) = .4714 -> 1.41421, -.70711
    assert np.allclose(group_advantages([[1, 0, 0]], ddof=0)[0], [1.41421, -0.70711, -0.70711])
    assert a[2].tolist() == [0, 0] and a[3].tolist() == [0]
    # Dr. GRPO style: mean subtraction only
    assert np.allclose(group_advantages([[1, 0, 0]], scale=False)[0], [2 / 3, -1 / 3, -1 / 3])


def test_advantage_clip_of_the_knapsack_authors():
    # 32 rollouts, one success: mean 1/32, unbiased std sqrt(1/32) = .176777 ->
    # (31/32) / .176777 = 5.4801; clipped at their adv_clip_value 5. Failures: -.17678.
    r = [1.0] + [0.0] * 31
    assert group_advantages([r])[0][0] == pytest.approx(5.4801, abs=1e-4)
    a = group_advantages([r], clip=5.0)[0]
    assert a[0] == 5.0 and a[1] == pytest.approx(-0.176777, abs=1e-5)


def test_novelty_sharpening_hand_computed():
    a = [0.70711, 0.70711, -1.41421]
    r = [1, 1, 0]
    s = [-1.0, -2.0, -1.5]  # mean -1.5
    # eta = exp(s - mean) = [e^.5, e^-.5 = 0.60653, (wrong: unchanged)]
    # 1 - eta = [< 0 -> no bonus, 0.39347]
    # lam=1, kappa=.5: bonus_1 = min(0.39347, 0.5 * 0.70711 = 0.35355) = 0.35355
    assert np.allclose(sharpen_novelty(a, r, s, 1.0, 0.5), [0.70711, 1.06066, -1.41421])
    # lam=.5: bonus_1 = min(0.19673, 0.35355) = 0.19673
    assert np.allclose(sharpen_novelty(a, r, s, 0.5, 0.5), [0.70711, 0.90384, -1.41421], atol=1e-5)


def test_recalibrate_hand_computed():
    # SPEAR: recent groups [1,0,0,0], [1,0,1,0], [1,1,1,0] have means .25, .5, .75 and
    # population stds .43301, .5, .43301; medians .5 and .43301.
    # (1 - .5) / .43301 = 1.15470, (.5 - .5) / .43301 = 0; unscaled (Dr.BoT): .5 and 0.
    means, stds = [0.25, 0.5, 0.75], [0.4330127, 0.5, 0.4330127]
    assert np.allclose(recalibrate([1, 0.5], means, stds), [1.15470, 0.0], atol=1e-5)
    assert np.allclose(recalibrate([1, 0.5], means, stds, scale=False), [0.5, 0.0])


# ---------------------------------------------------------------- losses


def loss_and_grad(ratio, adv, **kw):
    logp = torch.tensor([[math.log(ratio)]], requires_grad=True)
    loss = policy_loss(logp, torch.zeros(1, 1), torch.tensor([adv]), torch.ones(1, 1), **kw)
    loss.backward()
    return loss.item(), logp.grad.item()


def test_clipping_variants_hand_computed():
    # PPO, ratio 1.5, A = 1: min(1.5, clip 1.2) = 1.2 -> loss -1.2, no gradient
    assert loss_and_grad(1.5, 1.0) == pytest.approx((-1.2, 0.0))
    # DAPO clip-higher eps_high .28: ratio 1.25 is inside -> loss -1.25, d/dlogp = -ratio
    assert loss_and_grad(1.25, 1.0, eps_high=0.28) == pytest.approx((-1.25, -1.25))
    assert loss_and_grad(1.25, 1.0) == pytest.approx((-1.2, 0.0))
    # GPPO keeps a gradient on clipped tokens: value -1.2, gradient -(1 + eps_high) * A = -1.2
    assert loss_and_grad(1.5, 1.0, mode="gppo") == pytest.approx((-1.2, -1.2))
    # A = -1, ratio .5: PPO min(-.5, -.8) = -.8 -> loss .8, no gradient; GPPO gradient .8
    assert loss_and_grad(0.5, -1.0) == pytest.approx((0.8, 0.0))
    assert loss_and_grad(0.5, -1.0, mode="gppo") == pytest.approx((0.8, 0.8))
    with pytest.raises(ConfigError, match="choose one of ppo, gppo"):
        loss_and_grad(1.0, 1.0, mode="trpo")


def test_dual_clip_hand_computed():
    # Klear-Reasoner compute_gppo_loss / verl compute_policy_loss, A = -1, clip_ratio_c = 3:
    # ratio 4: max(-A r, -A clip) = max(4, 1.28) = 4 > -c A = 3 -> loss 3, no gradient.
    assert loss_and_grad(4.0, -1.0, mode="gppo", eps_high=0.28) == pytest.approx((4.0, 4.0))
    got = loss_and_grad(4.0, -1.0, mode="gppo", eps_high=0.28, dual_clip=3.0)
    assert got == pytest.approx((3.0, 0.0))
    # ratio 2: loss 2 < 3, left as it is (gradient -A r = 2); A > 0 is never dual-clipped.
    assert loss_and_grad(2.0, -1.0, dual_clip=3.0) == pytest.approx((2.0, 2.0))
    assert loss_and_grad(4.0, 1.0, mode="gppo", dual_clip=3.0) == pytest.approx((-1.2, -1.2))
    with pytest.raises(ConfigError, match="must be above 1"):
        loss_and_grad(1.0, -1.0, dual_clip=0.5)


def test_token_mean_vs_seq_mean_hand_computed():
    logp = torch.zeros(2, 3)
    mask = torch.tensor([[1.0, 0, 0], [1, 1, 1]])
    adv = torch.tensor([-1.0, 1.0])  # per-token losses: +1 (1 token), -1 (3 tokens)
    # token mean (DAPO): (1 - 3) / 4 = -0.5; sequence mean (GRPO): (1 + -1) / 2 = 0
    assert policy_loss(logp, logp, adv, mask).item() == pytest.approx(-0.5)
    assert policy_loss(logp, logp, adv, mask, aggregation="seq_mean").item() == pytest.approx(0)
    # A micro-batch of a larger step: its token sum over the step's 8 tokens, -2 / 8.
    assert policy_loss(logp, logp, adv, mask, normalizer=8.0).item() == pytest.approx(-0.25)


def test_overlong_penalty_hand_computed():
    # max 20, cache 4: free up to 16, then (16 - L) / 4, -1 beyond 20
    got = overlong_penalty([10, 16, 18, 20, 25], 20, 4)
    assert got.tolist() == [0, 0, -0.5, -1, -1]
    with pytest.raises(ConfigError, match="max_length // 4"):
        overlong_penalty([1], 20, 0)


# ---------------------------------------------------------------- batches


def test_dynamic_sampling_drops_all_same_groups_and_refills():
    made = itertools.count()

    def sample(k):
        out = []
        for _ in range(k):
            i = next(made)
            out.append(Group(f"q{i}", ["x", "y"], [1, 0] if i % 3 == 0 else [1, 1]))
        return out

    groups, info = dynamic_sampling(sample, target_groups=3)
    assert [g.prompt for g in groups] == ["q0", "q3", "q6"]
    assert all(g.informative for g in groups)
    assert info["dropped"] == info["sampled"] - 3 and info["rounds"] > 1


def test_rorecomp_split_hand_computed():
    g = Group("q", list("abcdefg"), [1, 1, 1, 0, 0, 0, 0], lengths=[5, 3, 9, 2, 8, 6, 7])
    # correct 0,1,2: round(.5 * 3) = 2 shortest -> 1 (3), 0 (5)
    # wrong 3,4,5,6: 2 longest -> 4 (8), 6 (7)
    pri, rest = RoRecomp(priority_fraction=0.5).split(g)
    assert pri.tolist() == [0, 1, 4, 6] and rest.tolist() == [2, 3, 5]


def test_rorecomp_compensation_batches_come_from_the_buffer():
    r = RoRecomp(compensation_size=4, compensation_every=2)
    g = Group("q", list("abcdef"), [1, 1, 0, 0, 1, 0], lengths=[1, 2, 3, 4, 5, 6])
    _, comp1 = r.step([g])
    assert comp1 == [] and len(r.buffer) == 2
    _, comp2 = r.step([g])  # due, but only 4 buffered after this step's split -> taken
    assert len(comp2) == 4 and len(r.buffer) == 0
    r.step([g])
    _, comp4 = r.step([g])
    assert len(comp4) == 4 and all(item[0] is g for item in comp4)


def test_self_imitation_buffer_recalibrates_and_forgets():
    buf = SelfImitationBuffer()
    g = Group("q", ["win", "l1", "l2", "l3"], [1, 0, 0, 0])
    assert buf.add(g, group_advantages([g.rewards])[0], step=0) == 1
    buf.observe([0, 0, 0, 1])  # median mean .25, std .43301: (1 - .25) / .43301 = 1.73205
    [(item, adv)] = buf.sample(4, step=1)
    assert item.rollout == "win" and adv == pytest.approx(1.73205, abs=1e-5)
    # Above 50% success the win still counts: groups of [1, 1, 1, 0] (mean .75, std .43301)
    # give (1 - .75) / .43301 = .57735 (a baseline from single rewards, median 1, gave 0).
    for _ in range(10):
        buf.observe([1, 1, 1, 0])
    [(item, adv)] = buf.sample(4, step=2)
    assert adv == pytest.approx(0.57735, abs=1e-5)
    for _ in range(20):  # the policy now always wins: median mean 1, std 0 -> 0, still kept
        buf.observe([1, 1, 1, 1])
    assert buf.sample(4, step=3)[0][1] == 0.0
    buf.add(Group("r", ["half"], [0.5]), [1.0], step=3)
    assert [it.rollout for it, _ in buf.sample(4, step=3)] == ["win"]  # .5 - 1 < 0: dropped
    assert buf.sample(4, step=12) == []  # older than their 10 tolerated steps


def test_group_with_mismatched_rewards_is_refused():
    with pytest.raises(EmptyGroupError, match="exactly one reward per rollout"):
        Group("q", ["a", "b"], [1.0])


def test_chain_task_checks_the_final_total_only():
    from stepstone.rlvr.tasks import ChainTask

    task = ChainTask(terms=4)
    assert task.answer("3+5+2+7=") == "8,10,17" and task.max_new_tokens == 10
    assert task.reward("3+5+2+7=", "8,10,17") == 1.0
    assert task.reward("3+5+2+7=", "9,11,17") == 1.0  # the trace is free, the total is checked
    assert task.reward("3+5+2+7=", "8,10,16") == 0.0 and task.reward("3+5+2+7=", "") == 0.0
    assert all(len(p) == 8 for p in task.prompts(5, seed=0))
