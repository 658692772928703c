"""Rollouts per prompt under a fixed total: where the sampling budget of a step goes.

Three allocators behind one call, ``allocate(stats, budget, min_per_prompt, max_per_prompt)``,
returning one count per prompt that sums to ``budget`` and lies within [min, max]:

- ``uniform``: the GRPO default, the same group size for every prompt.
- ``knapsack``: Knapsack RL (Li et al. 2025, "Knapsack RL: Unlocking Exploration of LLMs via
  Optimizing Budget Allocation"). A prompt with success rate p given N rollouts is worth
  ``(1 - p**N - (1 - p)**N) * p * (1 - p)**2``: the probability that its group has both a
  success and a failure (otherwise GRPO's advantage, hence its gradient, is zero) times the
  paper's InfoGain approximation p(1-p)^2. Each rollout costs one unit; the budget left after
  the partly solved prompts' needs goes to unsolved ones, as the authors' code does.
- ``xrpo``: XRPO's rollout allocator (Bamba et al. 2025, "XRPO: Pushing the limits of GRPO with
  Targeted Exploration and Exploitation"): the next rollout goes to the prompt whose Student-t
  confidence interval on the mean reward would shrink most, plus an exploration bonus.

``make_allocator(name)`` builds one from the registry. Not here: estimating p (see state.py).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from .errors import BudgetError, MissingExtraError
from .state import PromptStats


def check_budget(n_prompts: int, budget: int, lo: int, hi: int | None) -> int:
    """Validate a split of ``budget`` over ``n_prompts`` in [lo, hi]; returns the upper bound."""
    if n_prompts == 0:
        raise BudgetError("no prompts to allocate rollouts to; pass at least one prompt")
    if lo < 1:
        raise BudgetError(
            f"min_per_prompt={lo}: every prompt needs at least 1 rollout; use min_per_prompt >= 1 "
            "(2 or more for a group-relative advantage)"
        )
    hi = budget if hi is None else hi
    if hi < lo:
        raise BudgetError(f"max_per_prompt={hi} is below min_per_prompt={lo}; raise the maximum")
    if budget < n_prompts * lo:
        raise BudgetError(
            f"budget of {budget} rollouts is smaller than {n_prompts} prompts x min_per_prompt "
            f"{lo} = {n_prompts * lo}; raise the budget to at least {n_prompts * lo}, lower "
            "min_per_prompt, or use fewer prompts per step"
        )
    if budget > n_prompts * hi:
        raise BudgetError(
            f"budget of {budget} rollouts exceeds {n_prompts} prompts x max_per_prompt {hi} = "
            f"{n_prompts * hi}; raise max_per_prompt or lower the budget"
        )
    return hi


def spread(counts: np.ndarray, extra: int, eligible: np.ndarray, hi: int) -> int:
    """Hand ``extra`` rollouts round-robin to ``eligible`` prompts below ``hi``; return the rest."""
    while extra > 0:
        room = eligible & (counts < hi)
        if not room.any():
            break
        for i in np.flatnonzero(room):
            if extra == 0:
                break
            counts[i] += 1
            extra -= 1
    return extra


class Allocator:
    """Base class: subclasses implement ``_allocate`` on validated input."""

    name = "base"

    def allocate(
        self, stats: PromptStats, budget: int, min_per_prompt: int = 2, max_per_prompt=None
    ) -> np.ndarray:
        hi = check_budget(len(stats), budget, min_per_prompt, max_per_prompt)
        counts = self._allocate(stats, budget, min_per_prompt, hi)
        assert counts.sum() == budget and counts.min() >= min_per_prompt and counts.max() <= hi
        return counts

    def _allocate(self, stats: PromptStats, budget: int, lo: int, hi: int) -> np.ndarray:
        raise NotImplementedError


class Uniform(Allocator):
    """The same number for every prompt; the remainder one each to the first prompts."""

    name = "uniform"

    def _allocate(self, stats, budget, lo, hi):
        k = len(stats)
        counts = np.full(k, budget // k, dtype=np.int64)
        counts[: budget - counts.sum()] += 1
        return counts


def nonzero_gradient_probability(p: np.ndarray | float, n: np.ndarray | int) -> np.ndarray:
    """P(a group of n binary rollouts has both outcomes) = 1 - p^n - (1-p)^n (Knapsack RL)."""
    p = np.asarray(p, dtype=float)
    return 1.0 - p**n - (1.0 - p) ** n


def knapsack_value(p: np.ndarray | float, n: np.ndarray | int) -> np.ndarray:
    """Knapsack RL's value of n rollouts on a prompt of success rate p:
    ``(1 - p^n - (1-p)^n) * p (1-p)^2`` (non-zero-gradient probability x InfoGain)."""
    p = np.asarray(p, dtype=float)
    return nonzero_gradient_probability(p, n) * p * (1.0 - p) ** 2


def rollouts_needed(p: np.ndarray | float, alpha: float = 0.9) -> np.ndarray:
    """Knapsack RL's cost of a partly solved prompt: the N at which a group of N rollouts holds
    both outcomes with probability about ``alpha``, ``log(1 - alpha) / log(max(p, 1 - p))``
    (liziniu/KnapsackRL, ``exploration_utils.py``, ``sampling_budget_by_knapsack``,
    ``cost_estimation="probability"``)."""
    p = np.asarray(p, dtype=float)
    return np.log(1.0 - alpha) / np.minimum(np.log(np.maximum(p, 1.0 - p)), -np.finfo(float).tiny)


def knapsack_extras(p: np.ndarray, lo: int, cap: int, budget: int) -> np.ndarray:
    """Extra rollouts (0..``cap`` each, summing to ``min(budget, len(p) * cap)``) for prompts of
    success rates ``p`` that already hold ``lo``, by the authors' dynamic programme
    (``exploration_utils.py``, ``solve_by_dp``): k > 0 extra rollouts are worth
    ``knapsack_value(p, lo + k)`` and none is worth 0, ties going to the smaller k of the later
    prompt. Counting an untouched prompt as 0 (not as the value of its ``lo``) is their
    objective; it makes the solver give every prompt at least one extra rollout when it can."""
    w = min(budget, len(p) * cap)
    best = np.full(w + 1, -np.inf)
    best[0] = 0.0
    picks = np.zeros((len(p), w + 1), dtype=np.int64)
    for i, pi in enumerate(p):
        gains = [0.0] + [float(knapsack_value(pi, lo + k)) for k in range(1, min(cap, w) + 1)]
        row, pick = np.full(w + 1, -np.inf), np.zeros(w + 1, dtype=np.int64)
        for k, gain in enumerate(gains):
            cand = np.full(w + 1, -np.inf)
            cand[k:] = best[: w + 1 - k] + gain
            better = cand > row
            row[better], pick[better] = cand[better], k
        best, picks[i] = row, pick
    extras = np.zeros(len(p), dtype=np.int64)
    for i in reversed(range(len(p))):
        extras[i] = picks[i, w]
        w -= extras[i]
    return extras


@dataclass(frozen=True)
class Knapsack(Allocator):
    """Knapsack RL allocation as the authors' released code does it.

    liziniu/KnapsackRL, ``verl/trainer/ppo/exploration_utils.py``,
    ``sampling_budget_by_knapsack`` with the defaults of their Knapsack-GRPO script
    (``examples/knapsack_trainer/run_knapsack_grpo_7b.sh``: ``min_n = negative_n =
    positive_n = 2``, ``alpha = 0.9``, ``min_buffer_length = 8``):

    1. p is the success rate pooled over the prompt's last 16 rollouts (``stats.pooled``, see
       ``PromptStore.stats``). A prompt seen fewer than ``min_seen`` times gets the uniform
       share ``budget // prompts``; every other prompt starts at ``min_per_prompt``.
    2. A partly solved prompt (0 < p < 1) needs about ``rollouts_needed(p)`` rollouts (capped
       at the maximum). If what they all need is less than what is left, the spare goes in
       equal parts to the unsolved prompts (p = 0; as in their code, a prompt without an
       estimate counts as unsolved here), or, if there are none, to every prompt not partly
       solved. With no partly solved prompt at all, everything left goes to the unsolved ones
       (or, if none, the split is uniform).
    3. The rest is split over the partly solved prompts by ``knapsack_extras``.

    One difference: ``max_per_prompt`` is a hard bound here. Their code lets the spare of step
    2 (and a remainder the programme cannot place) exceed ``max_n``; here what does not fit
    goes to the partly solved prompts, then to any prompt with room.
    """

    alpha: float = 0.9
    min_seen: int = 8
    name = "knapsack"

    def _allocate(self, stats, budget, lo, hi):
        k = len(stats)
        valid = (stats.seen >= self.min_seen) & ~np.isnan(stats.pooled)
        p = np.where(valid, stats.pooled, 0.0)
        mixed = valid & (p > 0) & (p < 1)
        unsolved = p == 0.0
        counts = np.where(valid, lo, budget // k).astype(np.int64)
        left = budget - int(counts.sum())
        if not mixed.any():
            if not unsolved.any():
                return Uniform()._allocate(stats, budget, lo, hi)
            left = spread(counts, left, unsolved, hi)
            return self._place(counts, left, mixed, hi)
        need = np.floor(np.minimum(hi, rollouts_needed(p[mixed], self.alpha))).astype(np.int64)
        if need.sum() < left:
            to = unsolved if unsolved.any() else ~mixed
            left = int(need.sum()) + spread(counts, left - int(need.sum()), to, hi)
        counts[mixed] += knapsack_extras(p[mixed], lo, hi - lo, left)
        return self._place(counts, budget - int(counts.sum()), mixed, hi)

    @staticmethod
    def _place(counts, left, first, hi):
        """Whatever could not be placed within ``hi``: to ``first``, then to any prompt."""
        left = spread(counts, left, first, hi)
        spread(counts, left, np.ones(len(counts), bool), hi)
        return counts


@functools.lru_cache(maxsize=4096)
def t_quantile(q: float, dof: int) -> float:
    """Student-t quantile (scipy, which the novelty and rlvr extras install)."""
    try:
        from scipy.stats import t
    except ImportError as e:  # pragma: no cover - scipy ships with the extras
        raise MissingExtraError(
            "the xrpo allocator needs scipy for Student-t quantiles; pip install scipy"
        ) from e
    return float(t.ppf(q, dof))


@dataclass(frozen=True)
class XRPO(Allocator):
    """XRPO's uncertainty-reduction priority, allocated greedily one rollout at a time.

    In the paper's notation (hierarchical rollout planning): with s_q the sample standard
    deviation of prompt q's rewards and n_q the rollouts given to it so far, the half-width of
    the (1 - alpha) Student-t interval on its mean reward is
    ``h_q(n) = t_{1-alpha/2, n-1} s_q / sqrt(n)``; the priority of one more rollout is
    ``Pi_q = Delta_q + phi_q = h_q(n_q) - h_q(n_q + 1) + lam * sqrt(ln T / n_q)``, T the
    rollouts handed out so far in this step. s_q comes from the prompt's latest visit,
    Bessel-corrected as the t-interval requires (the store keeps the population std);
    unvisited prompts use ``unseen_std`` (0.5, a fair coin's).

    Two differences from the paper (arXiv 2510.06672, hierarchical rollout planning), stated
    rather than hidden: the paper samples a base group first and hands out the rest in rounds
    within the step, re-estimating s_q from that step's own rollouts between rounds; this
    allocator plans the whole step at once from the previous visit, because the trainers here
    sample each prompt's group in one call. And the form of the exploration bonus phi_q could
    not be checked against the paper's text here (neither it nor the authors' code,
    UIUC-MLSys/XRPO, was readable from this machine); ``lam * sqrt(ln T / n_q)`` is the UCB
    form secondary summaries give, and ``lam`` is ours.
    """

    alpha: float = 0.05
    lam: float = 0.1
    unseen_std: float = 0.5
    name = "xrpo"

    @staticmethod
    def sample_std(std: np.ndarray, n: np.ndarray) -> np.ndarray:
        """The n-1 (sample) standard deviation from the population one of n rewards."""
        n = np.asarray(n, dtype=float)
        return np.where(n > 1, std * np.sqrt(n / np.maximum(n - 1, 1)), std)

    def half_width(self, s: float, n: int) -> float:
        if n < 2:
            return math.inf if s > 0 else 0.0
        return t_quantile(1 - self.alpha / 2, n - 1) * s / math.sqrt(n)

    def priority(self, s: float, n: int, total: int) -> float:
        reduction = self.half_width(s, n) - self.half_width(s, n + 1)
        if math.isinf(reduction) or math.isnan(reduction):
            reduction = 1e6  # a prompt with a single rollout: any second one is informative
        return reduction + self.lam * math.sqrt(math.log(max(total, 2)) / n)

    def _allocate(self, stats, budget, lo, hi):
        std = self.sample_std(stats.std, stats.n)
        s = np.where(np.isnan(std), self.unseen_std, std)
        counts = np.full(len(s), lo, dtype=np.int64)
        total = int(counts.sum())
        while total < budget:
            pri = np.array(
                [
                    self.priority(float(s[i]), int(counts[i]), total) if counts[i] < hi else -1
                    for i in range(len(s))
                ]
            )
            i = int(np.argmax(pri))
            counts[i] += 1
            total += 1
        return counts


REGISTRY: dict[str, type[Allocator]] = {"uniform": Uniform, "knapsack": Knapsack, "xrpo": XRPO}


def make_allocator(name: str, **options) -> Allocator:
    try:
        cls = REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown allocator {name!r}; choose one of {', '.join(REGISTRY)}"
        ) from None
    return cls(**options)
