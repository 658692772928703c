"""Knapsack RL rollout allocation inside TRL's GRPO trainer, on a policy trained here on CPU.

    python examples/rlvr_trl.py --steps 50 --allocator knapsack --run-dir runs/rlvr-trl
    python examples/rlvr_trl.py --dynamic-sampling --rorecomp --self-imitation 8
    python examples/rlvr_trl.py --loss gppo --dual-clip 10 --rollout latr

1. builds a ~0.1M-parameter GPT-2 from a config (no download) and pretrains it on 3-digit
   addition until about 30% of sampled answers are right (about half a minute on one core);
2. trains it with ``StepstoneGRPOTrainer``: TRL's GRPOTrainer, but the rollouts of each step
   are re-split per prompt by the chosen allocator from the per-prompt state kept in
   ``--run-dir`` (rerunning with the same directory continues from that state); optionally
   the batch is composed as DAPO (drop all-equal groups, refill), RoRecomp (priority and
   compensation rows) and SPEAR (replayed wins) do;
3. prints the share of groups with a non-zero gradient per logged step, what the batch parts
   did, and the success rate on held-out sums before and after.

Needs the ``rlvr`` extra (torch, transformers, trl pinned) and ``datasets`` (a TRL dependency).
"""

from __future__ import annotations

import argparse

import torch
from datasets import Dataset
from transformers import PrinterCallback
from trl import GRPOConfig

from stepstone.rlvr.tasks import (
    AdditionTask,
    CharTokenizer,
    hf_tokenizer,
    pretrain_to,
    success_rate,
    tiny_policy,
)
from stepstone.rlvr.trl import StepstoneGRPOTrainer


def main() -> None:
    ap = argparse.ArgumentParser(description="Knapsack RL allocation in TRL's GRPO trainer")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--allocator", default="knapsack", choices=["uniform", "knapsack", "xrpo"])
    ap.add_argument("--loss", default="ppo", choices=["ppo", "gppo"])
    ap.add_argument("--dual-clip", type=float, default=None, help="GPPO dual clip (theirs: 10)")
    ap.add_argument("--rollout", default="sample", choices=["sample", "latr"])
    ap.add_argument("--dynamic-sampling", action="store_true", help="DAPO: drop, then refill")
    ap.add_argument("--rorecomp", action="store_true", help="RoRecomp priority batches")
    ap.add_argument("--self-imitation", type=int, default=0, help="replayed wins per step")
    ap.add_argument("--run-dir", default=None, help="where per-prompt state is kept (SQLite)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(1)

    tok, task = CharTokenizer(), AdditionTask(digits=3)
    model = tiny_policy(tok, seed=args.seed)
    steps, reached = pretrain_to(model, tok, task, target=0.3, seed=args.seed)
    test = task.prompts(512, seed=2_000 + args.seed)
    print(f"pretrained {steps} steps; held-out success {success_rate(model, tok, task, test):.3f}")

    def correct_sum(prompts, completions, **kwargs):
        """The verifiable reward: 1.0 for the exact sum, else 0.0."""
        return [task.reward(p, c) for p, c in zip(prompts, completions, strict=True)]

    config = GRPOConfig(
        output_dir="/tmp/stepstone-rlvr-trl",
        per_device_train_batch_size=128,  # rollouts per step: the budget the allocator splits
        num_generations=8,  # 128 / 8 = 16 prompts per step
        max_completion_length=task.max_new_tokens,
        max_steps=args.steps,
        learning_rate=1e-3,
        lr_scheduler_type="constant",
        loss_type="dapo",  # token-mean aggregation
        epsilon=0.2,
        epsilon_high=0.28,  # DAPO clip-higher
        logging_steps=10,
        save_strategy="no",
        report_to=[],
        use_cpu=True,
        disable_tqdm=True,
        seed=args.seed,
    )
    trainer = StepstoneGRPOTrainer(
        model=model,
        reward_funcs=correct_sum,
        args=config,
        train_dataset=Dataset.from_dict({"prompt": task.prompts(256, seed=1_000 + args.seed)}),
        processing_class=hf_tokenizer(tok),
        allocator=args.allocator,
        min_per_prompt=2,
        max_per_prompt=32,
        loss=args.loss,
        dual_clip=args.dual_clip,  # Klear-Reasoner's dual clip, with loss="gppo"
        rollout=args.rollout,
        run_dir=args.run_dir,
        dynamic_sampling=args.dynamic_sampling,  # all-equal groups out, fresh prompts in
        dynamic_rounds=4,
        rorecomp=args.rorecomp,  # short correct + long wrong first, the rest compensates later
        rorecomp_fraction=0.5,
        rorecomp_compensation=64,
        self_imitation=args.self_imitation,  # SPEAR: earlier wins with recalibrated advantages
    )
    trainer.remove_callback(PrinterCallback)
    trainer.train()
    parts = ["dropped_groups", "priority_rows", "compensation_rows", "replayed", "trained_rows"]
    for log in trainer.state.log_history:
        if "stepstone/nonzero_share" in log:
            done = "  ".join(
                f"{k.replace('_', ' ')} {log['stepstone/' + k]:.1f}"
                for k in parts
                if "stepstone/" + k in log
            )
            print(
                f"step {log['step']:4d}  reward {log['reward']:.3f}  non-zero-gradient groups "
                f"{log['stepstone/nonzero_share']:.3f}  largest group "
                f"{log['stepstone/max_group']:.0f}  {done}"
            )
    print(f"after {args.steps} steps: held-out success {success_rate(model, tok, task, test):.3f}")


if __name__ == "__main__":
    main()
