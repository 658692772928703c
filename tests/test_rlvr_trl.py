"""The TRL subclass constructs and trains a few steps on the tiny policy, allocating per prompt
and composing the batch (dynamic sampling, RoRecomp, self-imitation) as batches.py says."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

import numpy as np
import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig  # noqa: E402

from stepstone.errors import ConfigError  # noqa: E402
from stepstone.rlvr import Knapsack, PromptStore, RewardError, Visit  # noqa: E402
from stepstone.rlvr.batches import Group, RoRecomp  # noqa: E402
from stepstone.rlvr.tasks import AdditionTask, CharTokenizer, hf_tokenizer, tiny_policy  # noqa: E402
from stepstone.rlvr.trl import StepstoneGRPOTrainer  # noqa: E402

torch.set_num_threads(1)
TOK = CharTokenizer()
TASK = AdditionTask(digits=2)
PROMPTS = TASK.prompts(4, seed=0)


def starts_with_seven(prompts, completions, **kwargs):
    return [1.0 if c.startswith("7") else 0.0 for c in completions]


def trainer(
    tmp_path, reward=starts_with_seven, steps=2, cls=None, prompts=PROMPTS, config=None, **options
):
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, num_generations=4,
        max_completion_length=TASK.max_new_tokens, max_steps=steps, logging_steps=1,
        report_to=[], use_cpu=True, learning_rate=1e-2, save_strategy="no", loss_type="dapo",
        epsilon_high=0.28, lr_scheduler_type="constant", seed=0, **(config or {}),
    )  # fmt: skip
    return (cls or StepstoneGRPOTrainer)(
        model=tiny_policy(TOK, seed=0), reward_funcs=reward, args=args,
        train_dataset=Dataset.from_dict({"prompt": prompts}), processing_class=hf_tokenizer(TOK),
        run_dir=tmp_path / "run", **options,
    )  # fmt: skip


def test_hf_tokenizer_matches_the_character_tokenizer():
    hf = hf_tokenizer(TOK)
    assert hf("12+34=")["input_ids"] == TOK.encode("12+34=")
    assert hf.decode(TOK.encode("46$", bos=False), skip_special_tokens=True) == "46"


def test_trains_with_per_prompt_counts_from_the_stored_state(tmp_path):
    t = trainer(tmp_path, steps=3, allocator="knapsack", min_per_prompt=2)
    before = [p.detach().clone() for p in t.model.parameters()]
    t.train()
    store = PromptStore(tmp_path / "run")
    assert store.last_step() == 2
    hist = {p: store.history(p) for p in PROMPTS}
    for step in range(3):
        assert sum(h[step].n for h in hist.values()) == 16  # the budget TRL sampled, re-split
    # Step 1's split is Knapsack RL's allocation from what step 0 stored.
    after_step0 = PromptStore(None)
    after_step0.record(h[0] for h in hist.values())
    expected = Knapsack().allocate(after_step0.stats(PROMPTS), 16, 2).tolist()
    assert [h[1].n for h in hist.values()] == expected
    logged = [x for x in t.state.log_history if "stepstone/nonzero_share" in x]
    assert len(logged) == 3 and any(x["stepstone/nonzero_share"] > 0 for x in logged)
    assert any(not torch.equal(a, b) for a, b in zip(before, t.model.parameters(), strict=True))


@pytest.mark.parametrize("options", [{"loss": "gppo", "allocator": "xrpo"},
                                     {"rollout": "latr", "novelty_lam": 1.0}])  # fmt: skip
def test_variants_train(tmp_path, options):
    t = trainer(tmp_path, steps=1, **options)
    t.train()
    assert PromptStore(tmp_path / "run").last_step() == 0


def test_bad_input_is_refused_with_the_fix(tmp_path):
    t = trainer(tmp_path, reward=lambda prompts, completions, **kw: ["yes"] * len(completions))
    with pytest.raises(RewardError, match="return one int or float per completion"):
        t.train()
    with pytest.raises(ConfigError, match="choose one of ppo, gppo"):
        trainer(tmp_path, loss="trpo")
    with pytest.raises(ConfigError, match="set num_generations >= min_per_prompt"):
        trainer(tmp_path, min_per_prompt=5)  # 4 generations per prompt: budget < prompts x 5
    with pytest.raises(ConfigError, match="choose one of uniform, knapsack, xrpo"):
        trainer(tmp_path, allocator="thompson")
    with pytest.raises(ConfigError, match="self_imitation must be >= 0"):
        trainer(tmp_path, self_imitation=-1)


# ---------------------------------------------------------------- batch composition


def first_is_one_or_two(prompts, completions, **kwargs):
    """About one completion in six of the untrained policy: groups of 4 are often all 0."""
    return [1.0 if c[:1] in ("1", "2") else 0.0 for c in completions]


class Recording(StepstoneGRPOTrainer):
    """Keeps each step's freshly sampled groups and every batch the loss received."""

    def _sample_groups(self, rows, keys, counts):
        output, groups = super()._sample_groups(rows, keys, counts)
        self.sampled.setdefault(self._rlvr_step, []).extend(groups)
        return output, groups

    def _compute_loss(self, model, inputs):
        self.losses.append({k: inputs[k].detach().clone() for k in ROW_KEYS})
        return super()._compute_loss(model, inputs)


ROW_KEYS = ("prompt_ids", "prompt_mask", "completion_ids", "completion_mask", "advantages")


def recording(tmp_path, reward=first_is_one_or_two, **options):
    t = trainer(tmp_path, reward=reward, cls=Recording, **options)
    t.sampled, t.losses = {}, []
    return t


def row_key(row, i=None, advantage=False):
    """(prompt tokens, completion tokens[, advantage]) of one row, padding removed."""
    get = (lambda k: row[k][i]) if i is not None else (lambda k: row[k])
    key = (
        tuple(get("prompt_ids")[get("prompt_mask").bool()].tolist()),
        tuple(get("completion_ids")[get("completion_mask").bool()].tolist()),
    )
    return (*key, round(float(get("advantages")), 5)) if advantage else key


def loss_rows(batch, advantage=False) -> Counter:
    return Counter(row_key(batch, i, advantage) for i in range(batch["advantages"].size(0)))


def logged(t, name):
    return [x[name] for x in t.state.log_history if name in x]


def test_dynamic_sampling_keeps_all_equal_groups_out_of_the_loss(tmp_path):
    prompts = TASK.prompts(16, seed=0)
    plain = recording(tmp_path / "plain", steps=1, prompts=prompts)
    plain.train()
    assert (plain.losses[0]["advantages"] == 0).any()  # without it, all-equal groups get in

    t = recording(tmp_path / "dyn", steps=3, prompts=prompts, dynamic_sampling=True)
    t.train()
    assert len(t.losses) == 3 and all(b["advantages"].numel() >= 8 for b in t.losses)
    # Binary rewards: a row has advantage 0 exactly when its group's rewards are all equal.
    assert all((b["advantages"] != 0).all() for b in t.losses)
    dropped = logged(t, "stepstone/dropped_groups")
    assert sum(dropped) > 0
    store = PromptStore(tmp_path / "dyn" / "run")
    rollouts = logged(t, "stepstone/rollouts")
    for step, d in enumerate(dropped):
        visits = [v for p in prompts for v in store.history(p) if v.step == step]
        assert sum(v.n for v in visits) == rollouts[step]  # the budget plus the refills
        assert (len(visits) > 4) == (d > 0)  # refills are prompts new to this step
        # The loss saw exactly the rows of the informative groups, allocated or refilled.
        informative = [g for g in t.sampled[step] if g.informative]
        want = Counter(row_key(r, advantage=True) for g in informative for r in g.rollouts)
        assert loss_rows(t.losses[step], advantage=True) == want


def test_self_imitation_replays_earlier_wins_into_later_losses(tmp_path):
    t = recording(tmp_path, steps=3, self_imitation=2)
    t.train()
    replayed = logged(t, "stepstone/replayed")
    assert replayed[0] == 0 and sum(replayed) > 0
    for step, batch in enumerate(t.losses):
        fresh = Counter(row_key(r) for g in t.sampled[step] for r in g.rollouts)
        extra = loss_rows(batch) - fresh
        assert sum(extra.values()) == replayed[step]
        earlier_wins = {
            row_key(r)
            for s in range(step)
            for g in t.sampled[s]
            for r in g.rollouts
            if float(r["advantages"]) > 0
        }
        assert set(extra) <= earlier_wins
    step = replayed.index(max(replayed))
    fresh = Counter(row_key(r, advantage=True) for g in t.sampled[step] for r in g.rollouts)
    extra = loss_rows(t.losses[step], advantage=True) - fresh
    # SPEAR's recalibration (their TrajectoryBufferBatch): reward 1 minus the median of the
    # group mean rewards seen up to this step, over the median of the groups' population stds.
    groups = [g.rewards for s in range(step + 1) for g in t.sampled[s]]
    want = (1.0 - np.median([g.mean() for g in groups])) / (
        np.median([g.std() for g in groups]) + 1e-6
    )
    assert extra and all(a == pytest.approx(want, rel=1e-5) for _, _, a in extra)


def test_rorecomp_trains_on_priority_rows_then_compensates_from_the_buffer(tmp_path):
    t = recording(tmp_path, steps=4, rorecomp=True, rorecomp_compensation=4)
    t.train()
    split = RoRecomp(priority_fraction=0.5)
    expected_rest = []
    for step, batch in enumerate(t.losses):
        priority = Counter()
        for g in t.sampled[step]:
            keep, rest = split.split(Group(g.prompt, g.rollouts, g.rewards, g.lengths))
            priority.update(row_key(g.rollouts[i], advantage=True) for i in keep)
            expected_rest += [row_key(g.rollouts[i], advantage=True) for i in rest]
        got = loss_rows(batch, advantage=True)
        if step < 3:
            assert got == priority
        else:  # every 4th step: the 4 oldest buffered rows join, with their own advantages
            assert got == priority + Counter(expected_rest[:4])
    assert logged(t, "stepstone/compensation_rows") == [0, 0, 0, 4]


def test_uneven_batches_are_split_whole_and_empty_steps_make_no_update(tmp_path):
    prompts = TASK.prompts(16, seed=0)
    t = recording(
        tmp_path / "two", steps=2, prompts=prompts, dynamic_sampling=True, self_imitation=3,
        config={"gradient_accumulation_steps": 2},
    )  # fmt: skip
    t.train()
    sizes = [b["advantages"].numel() for b in t.losses]
    assert len(sizes) == 4 and abs(sizes[0] - sizes[1]) <= 1 and abs(sizes[2] - sizes[3]) <= 1
    assert [sizes[0] + sizes[1], sizes[2] + sizes[3]] == logged(t, "stepstone/trained_rows")

    never = lambda prompts, completions, **kw: [0.0] * len(completions)  # noqa: E731
    zero = recording(tmp_path / "zero", never, steps=1, prompts=prompts, dynamic_sampling=True)
    before = [p.detach().clone() for p in zero.model.parameters()]
    zero.train()
    assert logged(zero, "stepstone/trained_rows") == [0]
    assert logged(zero, "stepstone/dropped_groups") == [16]  # 4 allocated + 12 unseen refills
    assert all(torch.equal(a, b) for a, b in zip(before, zero.model.parameters(), strict=True))


def seven_or_unscorable(prompts, completions, **kwargs):
    """1 for a leading 7 or 8, None (no verdict) for a leading 0-3, else 0."""
    return [1.0 if c[:1] in "78" and c else None if c[:1] in "0123" and c else 0.0
            for c in completions]  # fmt: skip


def test_unequal_groups_get_trl_advantages_per_real_group(tmp_path):
    # Stored visits make Knapsack split 16 rollouts as [2, 10, 2, 2] (worked by hand from
    # their sampling_budget_by_knapsack: rates 0, .25, 1, 1, all seen 8 times; 8 left, the
    # p = .25 prompt needs int(8.0039) = 8, not < 8, so the DP gives it all 8).
    store = PromptStore(tmp_path / "run")
    rates = [[0] * 8, [1, 1] + [0] * 6, [1] * 8, [1] * 8]
    store.record(Visit.from_group(p, 0, r) for p, r in zip(PROMPTS, rates, strict=True))
    store.close()
    t = recording(tmp_path, reward=seven_or_unscorable, steps=1, allocator="knapsack")
    t.train()
    batch = t.losses[0]
    hf = hf_tokenizer(TOK)
    by_prompt: dict = {}
    for i in range(batch["advantages"].numel()):
        prompt = tuple(batch["prompt_ids"][i][batch["prompt_mask"][i].bool()].tolist())
        text = hf.decode(batch["completion_ids"][i][batch["completion_mask"][i].bool()],
                         skip_special_tokens=True)  # fmt: skip
        reward = seven_or_unscorable([None], [text])[0]
        by_prompt.setdefault(prompt, []).append((reward, float(batch["advantages"][i])))
    assert sorted(len(v) for v in by_prompt.values()) == [2, 2, 2, 10]
    assert any(r is None for v in by_prompt.values() for r, _ in v)
    zero_rows = 0
    for rows in by_prompt.values():
        scored = np.array([r for r, _ in rows if r is not None])
        for r, a in rows:
            if r is None:  # TRL: an unscorable row gets advantage 0, outside the baseline
                assert a == 0.0
            elif len(scored) > 1 and np.ptp(scored) > 0:
                # TRL: (r - nanmean) / (nanstd (n-1) + 1e-4) of the real group, clipped at 5
                want = (r - scored.mean()) / (scored.std(ddof=1) + 1e-4)
                assert a == pytest.approx(np.clip(want, -5, 5), abs=1e-5)
            else:
                assert a == 0.0
        if len(scored) < 2 or np.ptp(scored) == 0:
            zero_rows += len(rows)
    assert logged(t, "frac_reward_zero_std") == [pytest.approx(zero_rows / 16)]
    # A prompt with no scorable row leaves no visit (nothing was learned about it).
    visited = sum(any(r is not None for r, _ in rows) for rows in by_prompt.values())
    assert sum(len(PromptStore(tmp_path / "run").history(p)) for p in PROMPTS) == 4 + visited


def test_batch_scaling_divides_by_the_batch_std():
    # TRL's scale_rewards="batch": per-group mean, std over the whole batch (n-1), eps 1e-4.
    # Scored rewards [1, 0 | 1, 1, 1, 0]: mean 2/3, var =
    # (4 x (1/3)^2 + 2 x (2/3)^2) / 5 = .266667, std .516398. Group 1: +-.5 / .516498 = +-.96806;
    # group 2 (mean .75): .25 / .516498 = .48403, -.75 / .516498 = -1.45209; NaN row: 0.
    fake = SimpleNamespace(scale_rewards="batch", rlvr_adv_clip=None)
    got = StepstoneGRPOTrainer._advantages(
        fake, [np.array([1.0, 0.0]), np.array([1.0, 1.0, 1.0, 0.0, np.nan])]
    )
    assert np.allclose(got[0], [0.96806, -0.96806], atol=1e-5)
    assert np.allclose(got[1], [0.48403, 0.48403, 0.48403, -1.45209, 0.0], atol=1e-5)
    fake.scale_rewards = "none"  # Dr. GRPO: mean subtraction only
    got = StepstoneGRPOTrainer._advantages(fake, [np.array([1.0, 0.0, 0.0])])
    assert np.allclose(got[0], [2 / 3, -1 / 3, -1 / 3])


# The private TRL methods StepstoneGRPOTrainer overrides or calls, with a digest of their
# source in trl 1.16.0: a new TRL must be read against trl.py before the pin moves.
TRL_METHODS = {
    "_calculate_rewards": "736ae29b083840b5",
    "_generate_and_score_completions": "1fa48922792dcd5c",
    "_prepare_inputs": "f824e7fb07147956",
    "_compute_loss": "80295546bbdbf6f7",
    "_get_per_token_logps_and_entropies": "ea73c3909275851d",
}


def test_the_pinned_trl_methods_are_unchanged():
    import hashlib
    import inspect

    import trl
    from trl import GRPOTrainer

    assert trl.__version__ == "1.16.0", "trl.py overrides private TRL 1.16.0 methods; re-read them"
    for name, digest in TRL_METHODS.items():
        source = inspect.getsource(getattr(GRPOTrainer, name)).encode()
        assert hashlib.sha256(source).hexdigest()[:16] == digest, f"TRL changed {name}"


class LossRecording(Recording):
    def _compute_loss(self, model, inputs):
        loss = super()._compute_loss(model, inputs)
        self.returned.append(float(loss.detach()))
        return loss


def test_gppo_token_mean_spans_the_accumulated_batch(tmp_path):
    # Two micro-batches per step: TRL's "dapo" normaliser divides each one's token sum by the
    # tokens of the whole step, so the two parts add up to the step's token mean. At the first
    # step the ratio is 1, so each part is -sum(A_i n_i) / N over its rows (n_i tokens, N all).
    t = trainer(
        tmp_path, steps=1, cls=LossRecording, loss="gppo", dual_clip=10.0,
        reward=first_is_one_or_two, prompts=TASK.prompts(16, seed=0),
        config={"gradient_accumulation_steps": 2},
    )  # fmt: skip
    t.sampled, t.losses, t.returned = {}, [], []
    t.train()
    assert len(t.losses) == 2
    tokens = [b["completion_mask"].sum(-1) for b in t.losses]
    total = float(sum(n.sum() for n in tokens))
    for batch, n, got in zip(t.losses, tokens, t.returned, strict=True):
        want = -float((batch["advantages"] * n).sum()) / total
        assert got == pytest.approx(want, abs=1e-5)
    with pytest.raises(ConfigError, match="dual_clip applies to loss='gppo'"):
        trainer(tmp_path, dual_clip=10.0)
