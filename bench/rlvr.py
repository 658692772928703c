"""`python bench/rlvr.py`: rollout allocation and LATR on a tiny policy trained here on CPU.

For each seed: a ~0.1M-parameter GPT-2 is built from a config and pretrained on 3-digit
addition (character tokens) until one sampled answer is right about 30% of the time. From that
same checkpoint, GRPO runs for a fixed rollout budget with each allocator (uniform, knapsack,
xrpo), and LATR groups are compared with plain sampled groups. Printed per allocator, mean and
spread over seeds: the share of groups (and of rollouts) with a non-zero gradient, and success
on held-out sums after the budget, each with its ratio to uniform measured in the same run.
A last section trains the same checkpoint through StepstoneGRPOTrainer (TRL) and through the
standalone loop with matched settings, to show the two paths agree within seed noise.
Runs with one torch thread; the defaults take about 15 minutes on one core.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch

from stepstone.rlvr.grpo import GRPO, GRPOConfig
from stepstone.rlvr.latr import latr_rollouts
from stepstone.rlvr.sampling import greedy, sample
from stepstone.rlvr.tasks import AdditionTask, CharTokenizer, pretrain_to, success_rate

TOK = CharTokenizer()
TASK = AdditionTask(digits=3)


def evaluate(model, prompts, seed: int) -> tuple[float, float]:
    """(mean one-sample success over 4 samples per prompt, greedy accuracy)."""
    sampled = np.mean([success_rate(model, TOK, TASK, prompts, seed=seed + k) for k in range(4)])
    ids = torch.tensor([TOK.encode(p) for p in prompts])
    out = greedy(model, ids, TASK.max_new_tokens, TOK.eos_id)
    acc = np.mean([TASK.reward(p, TOK.decode(t)) for p, t in zip(prompts, out, strict=True)])
    return float(sampled), float(acc)


LR, MAX_PER_PROMPT = 1e-3, 32


def run_grpo(model, allocator: str, pool, steps: int, per_step: int, budget: int, seed: int):
    """The standalone loop; returns mean (non-zero-gradient group share, rollout share, reward)."""
    cfg = GRPOConfig(allocator=allocator, budget=budget, lr=LR, max_per_prompt=MAX_PER_PROMPT,
                     minibatches=1)  # fmt: skip
    loop = GRPO(model, TOK.encode, TOK.decode, TASK.reward, TOK.eos_id, TASK.max_new_tokens,
                cfg, seed=seed)  # fmt: skip
    metrics = []
    for s in range(steps):
        i = (s * per_step) % len(pool)
        m = loop.step(pool[i : i + per_step])
        metrics.append((m["nonzero_share"], m["nonzero_rollout_share"], m["reward"]))
    return tuple(float(x) for x in np.mean(metrics, axis=0))


def run_trl(model, allocator: str, pool, steps: int, per_step: int, budget: int, seed: int):
    """The same training through StepstoneGRPOTrainer (TRL); same means as ``run_grpo``."""
    import tempfile

    from datasets import Dataset
    from transformers import PrinterCallback
    from trl import GRPOConfig as TRLConfig

    from stepstone.rlvr.tasks import hf_tokenizer
    from stepstone.rlvr.trl import StepstoneGRPOTrainer

    def reward(prompts, completions, **kwargs):
        return [TASK.reward(p, c) for p, c in zip(prompts, completions, strict=True)]

    with tempfile.TemporaryDirectory() as out:
        args = TRLConfig(
            output_dir=out, per_device_train_batch_size=budget, num_generations=budget // per_step,
            max_completion_length=TASK.max_new_tokens, max_steps=steps, logging_steps=1,
            report_to=[], use_cpu=True, learning_rate=LR, lr_scheduler_type="constant",
            weight_decay=0.0, save_strategy="no", loss_type="dapo", epsilon=0.2,
            epsilon_high=0.28, temperature=1.0, seed=seed, disable_tqdm=True,
        )  # fmt: skip
        trainer = StepstoneGRPOTrainer(
            model=model, reward_funcs=reward, args=args,
            train_dataset=Dataset.from_dict({"prompt": list(pool)}),
            processing_class=hf_tokenizer(TOK), allocator=allocator, min_per_prompt=2,
            max_per_prompt=MAX_PER_PROMPT,
        )  # fmt: skip
        trainer.remove_callback(PrinterCallback)
        trainer.train()
    logs = [x for x in trainer.state.log_history if "stepstone/nonzero_share" in x]
    keys = ("stepstone/nonzero_share", "stepstone/nonzero_rollout_share", "reward")
    return tuple(float(np.mean([x[k] for x in logs])) for k in keys)


def group_diversity(model, prompts, group: int, seed: int, latr: bool, **latr_options):
    """(distinct final answers per group, pass@group, mean success, tree completions per group
    (LATR: group size minus the plain samples that filled it)) over ``prompts``."""
    gen = torch.Generator().manual_seed(seed)
    distinct, passed, success, tree = [], [], [], []
    for p in prompts:
        ids = torch.tensor(TOK.encode(p))
        if latr:
            res = latr_rollouts(
                model, ids, group, TASK.max_new_tokens, TOK.eos_id, generator=gen, **latr_options
            )
            tokens = res.tokens
            tree.append(group - res.filled)
        else:
            tokens, _, _ = sample(model, ids[None].expand(group, -1), TASK.max_new_tokens,
                                  TOK.eos_id, generator=gen)  # fmt: skip
        answers = [TOK.decode(t.tolist()) for t in tokens]
        rewards = [TASK.reward(p, a) for a in answers]
        distinct.append(len(set(answers)))
        passed.append(max(rewards))
        success.append(np.mean(rewards))
        if not latr:
            tree.append(group)
    return tuple(float(np.mean(x)) for x in (distinct, passed, success, tree))


def fmt(values, base=None) -> str:
    v = np.asarray(values)
    text = f"{v.mean():.3f} ± {v.std():.3f}"
    if base is not None:
        text += f" (x{v.mean() / np.mean(base):.2f})"
    return text


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--steps", type=int, default=400, help="GRPO steps per run")
    ap.add_argument("--per-step", type=int, default=16, help="prompts per step")
    ap.add_argument("--budget", type=int, default=128, help="rollouts per step")
    ap.add_argument("--pool", type=int, default=256, help="training prompts")
    ap.add_argument("--target", type=float, default=0.3, help="pretraining success target")
    ap.add_argument("--group", type=int, default=8, help="LATR/sampling group size")
    ap.add_argument("--latr-prompts", type=int, default=128)
    ap.add_argument("--trl-steps", type=int, default=100, help="steps of the TRL comparison")
    ap.add_argument("--trl-allocator", default="knapsack")
    args = ap.parse_args()
    torch.set_num_threads(1)
    from transformers.utils import logging

    logging.set_verbosity_error()
    allocators = ("uniform", "knapsack", "xrpo")
    res: dict[str, dict[str, list[float]]] = {a: {} for a in allocators}
    div: dict[str, dict[str, list[float]]] = {"sample": {}, "latr": {}}
    paths: dict[str, dict[str, list[float]]] = {"standalone": {}, "trl": {}}
    start = time.time()
    for seed in range(args.seeds):
        from stepstone.rlvr.tasks import tiny_policy

        model = tiny_policy(TOK, seed=seed)
        steps, reached = pretrain_to(model, TOK, TASK, args.target, seed=seed)
        pool = TASK.prompts(args.pool, seed=1_000 + seed)
        test = TASK.prompts(512, seed=2_000 + seed)
        before = evaluate(model, test, seed)
        print(f"seed {seed}: pretrained {steps} steps, held-out success {reached:.3f}, "
              f"test sampled {before[0]:.3f} greedy {before[1]:.3f} "
              f"[{time.time() - start:.0f}s]", flush=True)  # fmt: skip
        latr_prompts = test[: args.latr_prompts]
        for name, use_latr in (("sample", False), ("latr", True)):
            d, pk, s, t = group_diversity(
                model, latr_prompts, args.group, seed, use_latr, prune_below=0.2
            )
            for key, val in (("distinct", d), ("pass@k", pk), ("success", s), ("tree", t)):
                div[name].setdefault(key, []).append(val)
        for alloc in allocators:
            m = copy.deepcopy(model)
            share, rshare, _ = run_grpo(
                m, alloc, pool, args.steps, args.per_step, args.budget, seed
            )
            sampled, acc = evaluate(m, test, seed)
            for key, val in (("share", share), ("rshare", rshare), ("sampled", sampled),
                             ("greedy", acc), ("start", before[0])):  # fmt: skip
                res[alloc].setdefault(key, []).append(val)
            print(f"  {alloc:8s} nonzero groups {share:.3f} rollouts {rshare:.3f} "
                  f"success {sampled:.3f} greedy {acc:.3f} [{time.time() - start:.0f}s]",
                  flush=True)  # fmt: skip
        if args.trl_steps:
            for name, run in (("standalone", run_grpo), ("trl", run_trl)):
                m = copy.deepcopy(model)
                share, rshare, reward = run(m, args.trl_allocator, pool, args.trl_steps,
                                            args.per_step, args.budget, seed)  # fmt: skip
                sampled, _ = evaluate(m, test, seed)
                for key, val in (("share", share), ("rshare", rshare), ("reward", reward),
                                 ("sampled", sampled)):  # fmt: skip
                    paths[name].setdefault(key, []).append(val)
                print(f"  {name:10s} {args.trl_allocator} nonzero groups {share:.3f} rollouts "
                      f"{rshare:.3f} train reward {reward:.3f} success {sampled:.3f} "
                      f"[{time.time() - start:.0f}s]", flush=True)  # fmt: skip
    rollouts = args.steps * args.budget
    print()
    print(
        f"GRPO, {args.steps} steps x {args.budget} rollouts = {rollouts} rollouts per run, "
        f"{args.per_step} prompts/step, {args.seeds} seeds (mean ± std, ratio to uniform)"
    )
    header = ("allocator", "non-zero-grad groups", "non-zero-grad rollouts",
              "success before", "success after (sampled)", "greedy after")  # fmt: skip
    print(" | ".join(header))
    base = res["uniform"]
    for alloc in allocators:
        r = res[alloc]
        print(" | ".join([alloc, fmt(r["share"], base["share"]), fmt(r["rshare"], base["rshare"]),
                          fmt(r["start"]), fmt(r["sampled"], base["sampled"]),
                          fmt(r["greedy"], base["greedy"])]))  # fmt: skip
    print()
    print(f"Groups of {args.group} on {args.latr_prompts} held-out prompts, pretrained policy")
    print("rollouts | distinct answers per group | pass@k | mean success | tree completions")
    for name in ("sample", "latr"):
        d = div[name]
        ref = div["sample"]
        cells = [fmt(d[k], ref[k]) for k in ("distinct", "pass@k", "success")]
        cells.append(fmt(d["tree"]) if name == "latr" else "n/a")
        print(" | ".join([name, *cells]))
    if args.trl_steps:
        print()
        print(
            f"Standalone loop vs StepstoneGRPOTrainer (TRL), {args.trl_allocator} allocator, "
            f"{args.trl_steps} steps x {args.budget} rollouts, same checkpoint and settings"
        )
        print("path | non-zero-grad groups | non-zero-grad rollouts | train reward | success after")
        for name in ("standalone", "trl"):
            d, ref = paths[name], paths["standalone"]
            cells = [fmt(d[k], ref[k]) for k in ("share", "rshare", "reward", "sampled")]
            print(" | ".join([name, *cells]))
    print(f"\ntotal {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
