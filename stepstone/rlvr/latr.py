"""Lookahead tree-based rollouts (LATR) for a ``transformers`` causal LM.

LATR (Xing et al. 2025, "Lookahead Tree-Based Rollouts for Enhanced Trajectory-Level
Exploration in Reinforcement Learning with Verifiable Rewards") replaces independent sampling
of a group with a tree grown in lockstep: (1) branch where the model is torn between tokens,
(2) let each new branch run a few tokens ahead, (3) prune branches whose lookahead stayed too
close to their parent's, and finish every surviving branch by ordinary sampling. Groups of
independently sampled completions often collapse to the same answer; the tree spends the same
number of completions on trajectories that differ from the start.

Here a branch step is one where a candidate token other than the sampled one has probability at
least ``tau_abs`` and within ``tau_rel`` of the most likely token's. Similarity is the edit
distance between the child's and the parent's tokens from the branch point on, divided by
their length; below ``prune_below`` the child is dropped. The group is filled up to
``group_size`` by plain samples if the tree ends smaller. The thresholds are ours, not tuned
values from the paper.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from .sampling import sample


@dataclass
class _Branch:
    tokens: list[int]
    parent: int | None
    born: int  # step at which the branch took its own token (-1 for the root)
    done: bool = False
    checked: bool = True
    alive: bool = True


@dataclass
class LatrResult:
    tokens: torch.Tensor  # [group_size, T], padded with end-of-sequence
    branch_points: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (step, parent index, child index, child token)
    pruned: int = 0
    filled: int = 0  # completions sampled independently to fill the group


def edit_distance(a: list[int], b: list[int]) -> int:
    prev = list(range(len(b) + 1))
    for i, x in enumerate(a, 1):
        cur = [i]
        for j, y in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x != y)))
        prev = cur
    return prev[-1]


@torch.no_grad()
def latr_rollouts(
    model,
    prompt_ids: torch.Tensor,
    group_size: int,
    max_new_tokens: int,
    eos_id: int,
    temperature: float = 1.0,
    tau_abs: float = 0.15,
    tau_rel: float = 0.3,
    max_children: int = 2,
    lookahead: int = 4,
    prune_below: float = 0.3,
    branch_until: int | None = None,
    generator: torch.Generator | None = None,
) -> LatrResult:
    """A group of ``group_size`` completions of one prompt (1-D ``prompt_ids``) grown as a tree.

    ``max_children`` caps new branches per branch per step; ``branch_until`` stops branching
    after that many tokens (default: never before the end).
    """
    if group_size < 1:
        raise ConfigError(f"group_size={group_size}; ask for at least one completion")
    if not 0 <= tau_abs <= 1 or not 0 <= tau_rel <= 1:
        raise ConfigError("tau_abs and tau_rel are probabilities; give values in [0, 1]")
    branch_until = max_new_tokens if branch_until is None else branch_until
    branches = [_Branch([], None, -1)]
    result = LatrResult(tokens=torch.empty(0))
    prompt = prompt_ids.tolist()

    def check(child_index: int) -> None:
        child = branches[child_index]
        parent = branches[child.parent]
        a, b = child.tokens[child.born :], parent.tokens[child.born :]
        n = max(len(a), len(b), 1)
        child.checked = True
        if edit_distance(a, b) / n < prune_below:
            child.alive = False
            result.pruned += 1

    for t in range(max_new_tokens):
        active = [i for i, b in enumerate(branches) if b.alive and not b.done]
        if not active:
            break
        inputs = torch.tensor([prompt + branches[i].tokens for i in active])
        logits = model(input_ids=inputs).logits[:, -1].float()
        probs = torch.softmax(logits / temperature, dim=-1)
        picks = torch.multinomial(probs, 1, generator=generator).squeeze(-1).tolist()
        for row, i in enumerate(active):
            b = branches[i]
            tok = picks[row]
            n_alive = sum(x.alive for x in branches)
            if t < branch_until and n_alive < group_size:
                top_p, top_t = probs[row].topk(min(max_children + 1, probs.shape[-1]))
                best = float(top_p[0])
                made = 0
                for p, cand in zip(top_p.tolist(), top_t.tolist(), strict=True):
                    if made == max_children or n_alive + made >= group_size:
                        break
                    if cand == tok or p < tau_abs or best - p > tau_rel:
                        continue
                    child = _Branch(b.tokens + [cand], i, t, done=cand == eos_id, checked=False)
                    branches.append(child)
                    result.branch_points.append((t, i, len(branches) - 1, cand))
                    made += 1
            b.tokens.append(tok)
            b.done = tok == eos_id
        for j, c in enumerate(branches):
            if c.alive and not c.checked and t - c.born >= lookahead:
                check(j)
    for j, c in enumerate(branches):
        if c.alive and not c.checked:
            check(j)
    done = [b.tokens for b in branches if b.alive][:group_size]
    result.filled = group_size - len(done)
    width = max_new_tokens
    rows = [seq + [eos_id] * (width - len(seq)) for seq in done]
    if result.filled:
        extra, _, _ = sample(
            model, prompt_ids[None].expand(result.filled, -1), max_new_tokens, eos_id,
            temperature, generator,
        )  # fmt: skip
        pad = torch.full((result.filled, width - extra.shape[1]), eos_id, dtype=extra.dtype)
        rows += torch.cat([extra, pad], dim=1).tolist()
    result.tokens = torch.tensor(rows, dtype=torch.long)
    return result
