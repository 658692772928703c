"""Lookahead tree-based rollouts (LATR) for a ``transformers`` causal LM.

LATR (Xing et al. 2025, "Lookahead Tree-Based Rollouts for Enhanced Trajectory-Level
Exploration in Reinforcement Learning with Verifiable Rewards", code: starreeze/latr) replaces
independent sampling of a group with a tree grown in lockstep: (1) branch where the model is
torn between tokens, (2) let each new branch run ahead, (3) prune branches that stayed too
close to their parent, and finish every surviving branch by ordinary sampling. Groups of
independently sampled completions often collapse to the same answer; the tree spends the same
number of completions on trajectories that differ from the start.

Defaults are the authors' (``model/utils.py`` ``BranchDynamicParam`` and
``KeyTokenGenConfigMixin``, ``scripts/grpo-kt-*.sh``; ``model/generation.py``
``_sample_new_sequence_with_rollout``; ``model/sample_filter.py`` ``ProbFilter`` and
``RolloutFilter``):

- while branching, every branch takes its most likely token (``branch_token="top1"``, their
  ``sample_nk="none"``); a candidate among the top ``1 + max_children`` (their
  ``max_n_branch_per_token=2``: one child) opens a child if ``p > tau_abs`` (0.25) and
  ``p_top1 - p < tau_rel`` (0.15), while the group has room;
- a child is compared with its parent ``prune_at`` = 20, 30 and 50 tokens after it was born,
  skipping segments that hold the end token: the edit distance of the two segments over their
  length below ``prune_below`` (0.4) prunes it;
- once the group is full and no child awaits a check, the tree stops and each unfinished
  branch is completed by sampling (their hand-over to vLLM).

Differences kept on purpose: a group the tree leaves short is filled with independent samples
(their ``fill_return_sequences`` copies the first branch), and their schedule that hands a
growing share of the group to plain sampling as training goes on (``mix_ratio_schedule``) is
the caller's choice. ``STEPSTONE_SETTINGS`` are this module's earlier settings (sampled
tokens, thresholds 0.15/0.3, two children, one check 4 tokens after birth, threshold 0.3),
kept for comparison: ``latr_rollouts(..., **STEPSTONE_SETTINGS)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ..errors import ConfigError
from .sampling import sample

STEPSTONE_SETTINGS = {
    "branch_token": "sample", "tau_abs": 0.15, "tau_rel": 0.3, "max_children": 2,
    "prune_at": (4,), "prune_below": 0.3,
}  # fmt: skip


@dataclass
class _Branch:
    tokens: list[int]
    parent: int | None
    born: int  # index in ``tokens`` of the branch's own first token (-1 for the root)
    done: bool = False
    alive: bool = True


@dataclass
class LatrResult:
    tokens: torch.Tensor  # [group_size, T], padded with end-of-sequence
    branch_points: list[tuple[int, int, int, int]] = field(default_factory=list)
    # (step, parent index, child index, child token)
    pruned: int = 0
    filled: int = 0  # completions sampled independently to fill the group
    tree_steps: int = 0  # tokens generated before the tree handed over to sampling


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
    tau_abs: float = 0.25,
    tau_rel: float = 0.15,
    max_children: int = 1,
    prune_at: tuple[int, ...] = (20, 30, 50),
    prune_below: float = 0.4,
    branch_token: str = "top1",
    branch_until: int | None = None,
    generator: torch.Generator | None = None,
) -> LatrResult:
    """A group of ``group_size`` completions of one prompt (1-D ``prompt_ids``) grown as a tree.

    ``branch_token`` is ``"top1"`` (the authors) or ``"sample"`` (each branch samples its
    token and a child may take any other close candidate). ``branch_until`` stops branching
    after that many tokens (default: never before the end).
    """
    if group_size < 1:
        raise ConfigError(f"group_size={group_size}; ask for at least one completion")
    if not 0 <= tau_abs <= 1 or not 0 <= tau_rel <= 1:
        raise ConfigError("tau_abs and tau_rel are probabilities; give values in [0, 1]")
    if branch_token not in ("top1", "sample"):
        raise ConfigError(f"branch_token={branch_token!r}; choose top1 or sample")
    branch_until = max_new_tokens if branch_until is None else branch_until
    branches = [_Branch([], None, -1)]
    result = LatrResult(tokens=torch.empty(0))
    prompt = prompt_ids.tolist()

    def check(child: _Branch) -> None:
        """The authors' RolloutFilter for one child whose age is in ``prune_at``."""
        assert child.parent is not None  # only children are checked; the root has no parent
        a = child.tokens[child.born :]
        b = branches[child.parent].tokens[child.born : child.born + len(a)]
        if eos_id in a or eos_id in b or len(b) < len(a):
            return
        if edit_distance(a, b) / len(a) < prune_below:
            child.alive = False
            result.pruned += 1

    t = 0
    for t in range(max_new_tokens):
        active = [i for i, b in enumerate(branches) if b.alive and not b.done]
        n_alive = sum(b.alive for b in branches)
        waiting = any(  # a child still to be compared with its parent
            b.alive and not b.done and b.parent is not None
            and len(b.tokens) - b.born < max(prune_at, default=0)
            for b in branches
        )  # fmt: skip
        if not active or (n_alive >= group_size and not waiting):
            break
        inputs = torch.tensor([prompt + branches[i].tokens for i in active])
        logits = model(input_ids=inputs).logits[:, -1].float()
        probs = torch.softmax(logits / temperature, dim=-1)
        if branch_token == "top1":
            picks = probs.argmax(-1).tolist()
        else:
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
                    if cand == tok or not (p > tau_abs and best - p < tau_rel):
                        continue
                    child = _Branch(b.tokens + [cand], i, len(b.tokens), done=cand == eos_id)
                    branches.append(child)
                    result.branch_points.append((t, i, len(branches) - 1, cand))
                    made += 1
            b.tokens.append(tok)
            b.done = tok == eos_id
        for c in branches:
            if c.alive and c.parent is not None and len(c.tokens) - c.born in prune_at:
                check(c)
    result.tree_steps = t
    alive = [b for b in branches if b.alive][:group_size]
    rows = [
        _finish(model, prompt, b, max_new_tokens, eos_id, temperature, generator) for b in alive
    ]
    result.filled = group_size - len(rows)
    if result.filled:
        extra, _, _ = sample(
            model, prompt_ids[None].expand(result.filled, -1), max_new_tokens, eos_id,
            temperature, generator,
        )  # fmt: skip
        rows += [_pad(r, max_new_tokens, eos_id) for r in extra.tolist()]
    result.tokens = torch.tensor(rows, dtype=torch.long)
    return result


def _finish(model, prompt, branch: _Branch, width: int, eos_id: int, temperature, generator):
    """A branch's tokens, completed by ordinary sampling if the tree stopped before its end."""
    tokens = branch.tokens
    if not branch.done and len(tokens) < width:
        ids = torch.tensor([prompt + tokens])
        more, _, _ = sample(model, ids, width - len(tokens), eos_id, temperature, generator)
        tokens = tokens + more[0].tolist()
    return _pad(tokens, width, eos_id)


def _pad(tokens: list[int], width: int, eos_id: int) -> list[int]:
    return tokens + [eos_id] * (width - len(tokens))
