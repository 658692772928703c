"""The TRL subclass constructs and trains a few steps on the tiny policy, allocating per prompt."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("trl")
from datasets import Dataset  # noqa: E402
from trl import GRPOConfig  # noqa: E402

from stepstone.errors import ConfigError  # noqa: E402
from stepstone.rlvr import Knapsack, PromptStore, RewardError  # noqa: E402
from stepstone.rlvr.tasks import AdditionTask, CharTokenizer, hf_tokenizer, tiny_policy  # noqa: E402
from stepstone.rlvr.trl import StepstoneGRPOTrainer  # noqa: E402

torch.set_num_threads(1)
TOK = CharTokenizer()
TASK = AdditionTask(digits=2)
PROMPTS = TASK.prompts(4, seed=0)


def starts_with_seven(prompts, completions, **kwargs):
    return [1.0 if c.startswith("7") else 0.0 for c in completions]


def trainer(tmp_path, reward=starts_with_seven, steps=2, **options):
    args = GRPOConfig(
        output_dir=str(tmp_path / "out"), per_device_train_batch_size=16, num_generations=4,
        max_completion_length=TASK.max_new_tokens, max_steps=steps, logging_steps=1,
        report_to=[], use_cpu=True, learning_rate=1e-2, save_strategy="no", loss_type="dapo",
        epsilon_high=0.28, lr_scheduler_type="constant", seed=0,
    )  # fmt: skip
    return StepstoneGRPOTrainer(
        model=tiny_policy(TOK, seed=0), reward_funcs=reward, args=args,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS}), processing_class=hf_tokenizer(TOK),
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
