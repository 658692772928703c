"""The standalone GRPO loop runs a few steps on the tiny random policy and does its job."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from stepstone.rlvr import Knapsack, PromptStore, RewardError
from stepstone.rlvr.grpo import GRPO, GRPOConfig
from stepstone.rlvr.tasks import AdditionTask, CharTokenizer, tiny_policy

torch.set_num_threads(1)  # the tiny model is slower with more threads on a shared machine
TOK = CharTokenizer()
TASK = AdditionTask(digits=2)
PROMPTS = TASK.prompts(8, seed=0)


def starts_with_seven(prompt: str, completion: str) -> float:
    return 1.0 if completion.startswith("7") else 0.0


def make(config: GRPOConfig, reward=starts_with_seven, store=None, seed=0) -> GRPO:
    torch.manual_seed(seed)
    model = tiny_policy(TOK, seed=seed)
    return GRPO(
        model, TOK.encode, TOK.decode, reward, TOK.eos_id, TASK.max_new_tokens, config,
        store=store, seed=seed,
    )  # fmt: skip


def test_counts_per_prompt_follow_the_allocator_and_are_stored(tmp_path):
    store = PromptStore(tmp_path)
    cfg = GRPOConfig(allocator="knapsack", budget=32, min_per_prompt=2, max_per_prompt=12)
    g = make(cfg, store=store)
    before = [p.detach().clone() for p in g.model.parameters()]
    g.step(PROMPTS[:4])
    expected = Knapsack().allocate(store.stats(PROMPTS[:4]), 32, 2, 12)
    metrics = g.step(PROMPTS[:4])
    assert metrics["rollouts"] == 32
    assert [store.history(p)[-1].n for p in PROMPTS[:4]] == expected.tolist()
    assert store.last_step() == 1
    changed = any(not torch.equal(a, b) for a, b in zip(before, g.model.parameters(), strict=True))
    assert changed  # a gradient reached the weights
    # A new loop on the same run directory continues after the last committed step.
    assert make(cfg, store=PromptStore(tmp_path)).step_index == 2


def test_reward_goes_up_on_an_easy_verifiable_reward():
    # A random policy starts "7" about 1 time in 15; GRPO should make it the habit.
    cfg = GRPOConfig(budget=64, lr=3e-3, min_per_prompt=8)
    g = make(cfg)
    rewards = [g.step(PROMPTS[:8])["reward"] for _ in range(12)]
    assert np.mean(rewards[-3:]) > np.mean(rewards[:3]) + 0.3


@pytest.mark.parametrize("options", [{"loss_mode": "gppo", "aggregation": "seq_mean"},
                                     {"novelty_lam": 1.0, "overlong_max": 3},
                                     {"self_imitation": 4}])  # fmt: skip
def test_variants_run(options):
    g = make(GRPOConfig(budget=16, lr=1e-2, **options))
    for _ in range(3):
        m = g.step(PROMPTS[:4])
    assert m["rollouts"] == 16 and np.isfinite(m["loss"])
    if options.get("self_imitation"):
        assert g.replay is not None and len(g.replay.means) == 12  # 3 steps x 4 groups


def test_latr_rollouts_give_groups_of_the_requested_size(tmp_path):
    store = PromptStore(tmp_path)
    g = make(GRPOConfig(budget=12, rollout="latr", min_per_prompt=3), store=store)
    g.step(PROMPTS[:4])
    assert [store.history(p)[-1].n for p in PROMPTS[:4]] == [3, 3, 3, 3]


def test_non_numeric_reward_is_refused_with_the_fix():
    g = make(GRPOConfig(budget=8), reward=lambda p, c: "correct")
    with pytest.raises(RewardError, match="return one int or float per completion"):
        g.step(PROMPTS[:2])


class Recorded(GRPO):
    """Keeps the rows each update received: (prompt ids, tokens, old logp, mask, advantage)."""

    def _update(self, rows):
        self.trained = getattr(self, "trained", []) + [list(rows)]
        return super()._update(rows)


def test_dynamic_sampling_trains_only_informative_groups_and_refills(tmp_path):
    # The first prompt is never solved (its group is all 0 and must be dropped); on the others
    # a leading even digit scores 1, which the random policy mixes with odd ones.
    def reward(prompt, completion):
        return 0.0 if prompt == PROMPTS[0] else float(completion[:1] in tuple("02468"))

    store = PromptStore(tmp_path)
    torch.manual_seed(0)
    g = Recorded(
        tiny_policy(TOK, seed=0), TOK.encode, TOK.decode, reward, TOK.eos_id,
        TASK.max_new_tokens, GRPOConfig(budget=32, dynamic_sampling=True), store=store, seed=0,
    )  # fmt: skip
    extra = iter(TASK.prompts(64, seed=5))
    m = g.step(PROMPTS[:4], refill=lambda k: [next(extra) for _ in range(k)])
    assert m["nonzero_share"] < 1 and m["rollouts"] > 32  # a group was dropped and refilled
    assert all(len(store.history(p)) == 1 for p in PROMPTS[:4])  # allocated prompts recorded
    rows = g.trained[0]
    by_prompt: dict = {}
    for ids, _, _, _, a in rows:
        by_prompt.setdefault(TOK.decode(ids.tolist()), []).append(a)
    assert PROMPTS[0] not in by_prompt  # the all-same group left the loss
    # every trained group is informative (advantages not all 0) and whole: 8 rollouts each
    assert all(any(a != 0 for a in adv) and len(adv) == 8 for adv in by_prompt.values())
    assert len(by_prompt) == 4 and m["trained_rows"] == 32  # refilled back to 4 groups


def test_rorecomp_trains_on_priority_rows_then_compensation_batches():
    g = make(GRPOConfig(budget=32, rorecomp=True, rorecomp_compensation=8, lr=1e-2))
    seen = [g.step(PROMPTS[:4]) for _ in range(8)]
    assert all(m["trained_rows"] < 32 for m in seen)  # only the priority part of each group
    assert any(m["compensation_rows"] == 8 for m in seen)


def test_one_success_in_a_group_of_32_reaches_the_loss_clipped_at_5():
    # The Knapsack RL authors' adv_clip_value: one success in 32 would get (31/32) / sqrt(1/32)
    # = 5.4801 (unbiased std), the loss sees 5.0; the 31 failures get -(1/32) / sqrt(1/32).
    calls = iter(range(10**6))

    def first_call_wins(prompt, completion):
        return 1.0 if next(calls) == 0 else 0.0

    torch.manual_seed(0)
    g = Recorded(
        tiny_policy(TOK, seed=0), TOK.encode, TOK.decode, first_call_wins, TOK.eos_id,
        TASK.max_new_tokens, GRPOConfig(budget=32, max_per_prompt=32, minibatches=1), seed=0,
    )  # fmt: skip
    g.step(PROMPTS[:1])
    adv = sorted((r[4] for r in g.trained[0]), reverse=True)
    assert adv[0] == 5.0 and np.allclose(adv[1:], -0.176777, atol=1e-5) and len(adv) == 32
