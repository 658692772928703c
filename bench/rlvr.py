"""`python bench/rlvr.py`: do the RLVR parts do what their papers claim, on a task they can act on?

The task (``ChainTask``): a sum of ten digits answered with a trace of nine running totals
(up to 28 tokens), where one early slip spoils the answer, so sampled groups differ and
exploration matters. One tiny GPT-2 (character tokens, built from a config) is pretrained on
the traces until one sampled answer in about three is right; every run starts from that
checkpoint. Then, in order:

1. learning rate: uniform allocation is trained at each ``--lrs`` value on ``--lr-seeds``
   seeds and scored on a validation set; the best is used for every allocator after;
2. allocators: uniform, knapsack and xrpo, each on ``--seeds`` seeds (paired: seed s uses
   the same prompt order and sampling seed for each), the same rollout budget per step;
3. LATR (authors' settings, and the earlier stepstone settings) against plain sampling: groups
   of ``--group`` on the held-out prompts from the pretrained checkpoint.

Evaluation is on a fixed held-out set (``--test`` prompts, ``--samples`` samples each): pass@1
is the mean success over all samples, pass@k whether any of the k samples is right. Printed:
each quantity's mean with its 95% Student-t interval over seeds, its per-seed values, and the
paired difference to the baseline with its 95% interval; then, for each paper's headline claim,
whether the interval shows it ("shown") or not ("not reproduced"). ``--quick`` is a smoke run
for CI (a short pretraining, 2 seeds, 10 steps, one learning rate): its numbers mean nothing.
Runs with one torch thread.
"""

from __future__ import annotations

import argparse
import copy
import time

import numpy as np
import torch
from scipy import stats

from stepstone.rlvr.grpo import GRPO, GRPOConfig
from stepstone.rlvr.latr import STEPSTONE_SETTINGS, latr_rollouts
from stepstone.rlvr.sampling import sample
from stepstone.rlvr.tasks import ChainTask, CharTokenizer, pretrain_to, tiny_policy

TOK = CharTokenizer("0123456789+=,")
TASK = ChainTask(terms=10)
ALLOCATORS = ("uniform", "knapsack", "xrpo")


@torch.no_grad()
def evaluate(model, prompts, samples: int, seed: int) -> tuple[float, float]:
    """(pass@1: mean success over ``samples`` samples per prompt, pass@samples)."""
    ids = torch.tensor([TOK.encode(p) for p in prompts for _ in range(samples)])
    gen = torch.Generator().manual_seed(seed)
    tokens, _, _ = sample(model.eval(), ids, TASK.max_new_tokens, TOK.eos_id, generator=gen)
    texts = [TOK.decode(t.tolist()) for t in tokens]
    r = np.array([TASK.reward(prompts[i // samples], t) for i, t in enumerate(texts)])
    r = r.reshape(len(prompts), samples)
    return float(r.mean()), float(r.max(axis=1).mean())


def train(model, allocator: str, pool, args, lr: float, seed: int) -> dict[str, float]:
    """The standalone loop for ``args.steps`` steps; mean per-step metrics."""
    cfg = GRPOConfig(allocator=allocator, budget=args.budget, lr=lr, minibatches=1,
                     max_per_prompt=args.max_per_prompt)  # fmt: skip
    loop = GRPO(model, TOK.encode, TOK.decode, TASK.reward, TOK.eos_id, TASK.max_new_tokens,
                cfg, seed=seed)  # fmt: skip
    order = np.random.default_rng(seed).permutation(len(pool))
    seen = []
    for s in range(args.steps):
        i = (s * args.per_step) % len(pool)
        m = loop.step([pool[j] for j in order[i : i + args.per_step]])
        seen.append((m["nonzero_share"], m["nonzero_rollout_share"], m["reward"]))
    share, rshare, reward = np.mean(seen, axis=0)
    return {"share": float(share), "rshare": float(rshare), "reward": float(reward)}


def diversity(model, prompts, group: int, seed: int, options: dict | None):
    """Per group of ``group`` completions: distinct final answers, pass@group, mean success."""
    gen = torch.Generator().manual_seed(seed)
    distinct, passed, success = [], [], []
    for p in prompts:
        ids = torch.tensor(TOK.encode(p))
        if options is None:
            tokens, _, _ = sample(model, ids[None].expand(group, -1), TASK.max_new_tokens,
                                  TOK.eos_id, generator=gen)  # fmt: skip
        else:
            tokens = latr_rollouts(model, ids, group, TASK.max_new_tokens, TOK.eos_id,
                                   generator=gen, **options).tokens  # fmt: skip
        texts = [TOK.decode(t.tolist()) for t in tokens]
        rewards = [TASK.reward(p, t) for t in texts]
        distinct.append(len({t.rsplit(",", 1)[-1] for t in texts}))
        passed.append(max(rewards))
        success.append(np.mean(rewards))
    return {"distinct": float(np.mean(distinct)), "pass@k": float(np.mean(passed)),
            "success": float(np.mean(success))}  # fmt: skip


def interval(values) -> tuple[float, float]:
    """(mean, half-width of its 95% Student-t interval); half-width nan for one value."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return float(v.mean()), float("nan")
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / np.sqrt(len(v)))


def cell(values, base=None) -> str:
    m, h = interval(values)
    text = f"{m:.3f} ± {h:.3f}"
    if base is not None:
        dm, dh = interval(np.asarray(values) - np.asarray(base))
        text += f" (Δ {dm:+.3f} ± {dh:.3f})"
    return text


def verdict(name: str, values, base, higher: bool = True) -> str:
    dm, dh = interval(np.asarray(values) - np.asarray(base))
    lo, hi = dm - dh, dm + dh
    shown = lo > 0 if higher else hi < 0
    outcome = "shown" if shown else "not reproduced"
    return f"{name}: Δ {dm:+.3f}, 95% [{lo:+.3f}, {hi:+.3f}] -> {outcome}"


def per_seed(values) -> str:
    return " ".join(f"{v:.3f}" for v in values)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seeds", type=int, default=8)
    ap.add_argument("--steps", type=int, default=100, help="GRPO steps per run")
    ap.add_argument("--per-step", type=int, default=16, help="prompts per step")
    ap.add_argument("--budget", type=int, default=128, help="rollouts per step")
    ap.add_argument("--max-per-prompt", type=int, default=32)
    ap.add_argument("--pool", type=int, default=128, help="training prompts")
    ap.add_argument("--target", type=float, default=0.3, help="pretraining pass@1 target")
    ap.add_argument("--pretrain-steps", type=int, default=4000, help="pretraining cap")
    ap.add_argument("--lrs", default="3e-5,1e-4,3e-4", help="learning rates tried on uniform")
    ap.add_argument("--lr-seeds", type=int, default=2)
    ap.add_argument("--test", type=int, default=128, help="held-out prompts")
    ap.add_argument("--samples", type=int, default=8, help="samples per held-out prompt")
    ap.add_argument("--group", type=int, default=8, help="LATR / sampling group size")
    ap.add_argument("--latr-prompts", type=int, default=64)
    ap.add_argument("--quick", action="store_true", help="CI smoke run (numbers mean nothing)")
    args = ap.parse_args()
    if args.quick:
        args.seeds, args.steps, args.pretrain_steps, args.lrs, args.pool = 2, 10, 300, "1e-4", 32
        args.lr_seeds, args.test, args.latr_prompts = 1, 32, 8
    torch.set_num_threads(1)
    from transformers.utils import logging

    logging.set_verbosity_error()
    start = time.time()

    def stamp() -> str:
        return f"[{time.time() - start:.0f}s]"

    base = tiny_policy(TOK, seed=0, n_positions=64)
    steps, reached = pretrain_to(base, TOK, TASK, args.target, max_steps=args.pretrain_steps)
    pool = TASK.prompts(args.pool, seed=1_000)
    valid = TASK.prompts(args.test, seed=3_000)
    test = TASK.prompts(args.test, seed=2_000)
    p1, pk = evaluate(base, test, args.samples, seed=0)
    print(f"pretrained {steps} steps (pass@1 {reached:.3f} on its check set); held-out pass@1 "
          f"{p1:.3f}, pass@{args.samples} {pk:.3f} {stamp()}", flush=True)  # fmt: skip

    lrs = [float(x) for x in args.lrs.split(",")]
    lr = lrs[0]
    if len(lrs) > 1:
        scores = {}
        for x in lrs:
            got = []
            for seed in range(args.lr_seeds):
                m = copy.deepcopy(base)
                train(m, "uniform", pool, args, x, seed=100 + seed)
                got.append(evaluate(m, valid, args.samples, seed=100 + seed)[0])
            scores[x] = float(np.mean(got))
            print(f"lr {x:g}: uniform validation pass@1 {scores[x]:.3f} {stamp()}", flush=True)
        lr = max(scores, key=scores.get)
    print(f"learning rate for every allocator: {lr:g}", flush=True)

    res: dict[str, dict[str, list[float]]] = {a: {} for a in ALLOCATORS}
    for seed in range(args.seeds):
        for alloc in ALLOCATORS:
            m = copy.deepcopy(base)
            out = train(m, alloc, pool, args, lr, seed)
            out["pass@1"], out["pass@k"] = evaluate(m, test, args.samples, seed=10_000 + seed)
            for k, v in out.items():
                res[alloc].setdefault(k, []).append(v)
            print(f"seed {seed} {alloc:8s} nonzero rollouts {out['rshare']:.3f} pass@1 "
                  f"{out['pass@1']:.3f} pass@k {out['pass@k']:.3f} {stamp()}",
                  flush=True)  # fmt: skip

    rows = {"sample": None, "latr": {}, "latr-stepstone": STEPSTONE_SETTINGS}
    div: dict[str, dict[str, list[float]]] = {name: {} for name in rows}
    for seed in range(args.seeds):
        for name, options in rows.items():
            out = diversity(base, test[: args.latr_prompts], args.group, seed, options)
            for k, v in out.items():
                div[name].setdefault(k, []).append(v)
    print(f"LATR done {stamp()}", flush=True)

    print()
    print(f"ChainTask(10), {args.steps} steps x {args.budget} rollouts, {args.per_step} prompts/"
          f"step from {args.pool}, lr {lr:g}, {args.seeds} seeds; held-out {args.test} prompts x "
          f"{args.samples} samples; mean ± 95% interval (Δ: paired difference to the baseline "
          "± 95% interval)")  # fmt: skip
    print("allocator | non-zero-grad groups | non-zero-grad rollouts | pass@1 | pass@k")
    ref = res["uniform"]
    for alloc in ALLOCATORS:
        r, b = res[alloc], (None if alloc == "uniform" else ref)
        print(" | ".join([alloc, *(cell(r[k], b and b[k]) for k in
                                   ("share", "rshare", "pass@1", "pass@k"))]))  # fmt: skip
    print(
        "per seed (pass@1): " + "; ".join(f"{a} {per_seed(res[a]['pass@1'])}" for a in ALLOCATORS)
    )
    print("per seed (non-zero-grad rollouts): "
          + "; ".join(f"{a} {per_seed(res[a]['rshare'])}" for a in ALLOCATORS))  # fmt: skip
    print()
    print(f"Groups of {args.group} on {args.latr_prompts} held-out prompts, pretrained checkpoint")
    print("rollouts | distinct final answers | pass@k | mean success")
    for name in rows:
        d, b = div[name], (None if name == "sample" else div["sample"])
        print(
            " | ".join([name, *(cell(d[k], b and b[k]) for k in ("distinct", "pass@k", "success"))])
        )
    print()
    print("Headline claims (paired over seeds):")
    print(
        "  "
        + verdict("knapsack: more non-zero-grad rollouts", res["knapsack"]["rshare"], ref["rshare"])
    )
    print(
        "  " + verdict("knapsack: higher held-out pass@1", res["knapsack"]["pass@1"], ref["pass@1"])
    )
    print("  " + verdict("xrpo: higher held-out pass@1", res["xrpo"]["pass@1"], ref["pass@1"]))
    print(
        "  "
        + verdict("latr: more distinct answers", div["latr"]["distinct"], div["sample"]["distinct"])
    )
    print("  " + verdict("latr: higher pass@k", div["latr"]["pass@k"], div["sample"]["pass@k"]))
    print(f"\ntotal {time.time() - start:.0f}s")


if __name__ == "__main__":
    main()
