"""Group-relative advantages for groups of unequal size, and two ways to reshape them.

- ``group_advantages``: GRPO (Shao et al. 2024, "DeepSeekMath"): each rollout's reward minus
  its group's mean, divided by the group's standard deviation. Groups may differ in size (an
  allocator gave prompts different budgets); a group whose rewards are all equal gets zeros.
- ``sharpen_novelty``: XRPO's novelty-guided advantage sharpening (Bamba et al. 2025): correct
  rollouts the policy found unlikely, relative to the rest of their group, get a bonus.
- ``recalibrate``: SPEAR's advantage recalibration for replayed experience (Qin et al. 2025,
  "Learn the Ropes, Then Trust the Wins: Self-imitation with Progressive Exploration for Agentic
  Reinforcement Learning"): a stored rollout's advantage is recomputed against the median mean
  and median spread of recent groups, not the stale group it was sampled with.

Pure numpy; rewards are validated (numbers only, no empty group). Not here: the loss.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .state import check_rewards

Values = Sequence[float] | np.ndarray  # one number per rollout


def group_advantages(
    groups: Sequence[Values],
    scale: bool = True,
    eps: float = 1e-6,
    clip: float | None = None,
    ddof: int = 1,
) -> list[np.ndarray]:
    """``A_i = (r_i - mean(g)) / (std(g) + eps)`` per group; zeros for groups with no spread.

    ``std`` is the unbiased (n-1) one by default, as both verl (``compute_grpo_outcome_advantage``,
    ``torch.std``, eps 1e-6: the Knapsack RL authors' baseline) and TRL (``nanstd``, eps 1e-4)
    compute it; ``ddof=0`` gives the population std. ``scale=False`` keeps only the mean
    subtraction (Dr. GRPO). ``clip`` bounds each advantage to [-clip, clip], as the Knapsack RL
    authors do for both their GRPO baseline and Knapsack-GRPO (``adv_clip_value=5.0`` in
    liziniu/KnapsackRL ``examples/knapsack_trainer/*.sh``, applied in ``ray_trainer.py``
    ``fit``): a group of 32 with one success would otherwise give it 5.48.
    """
    out = []
    for j, g in enumerate(groups):
        r = check_rewards(g, where=f"group {j}")
        centred = r - r.mean()
        if len(r) <= ddof or np.ptp(r) == 0:
            out.append(np.zeros_like(r))
            continue
        a = centred / (r.std(ddof=ddof) + eps) if scale else centred
        out.append(a if clip is None else np.clip(a, -clip, clip))
    return out


def nonzero_gradient(groups: Sequence[Values]) -> np.ndarray:
    """True for groups whose rewards differ (their GRPO advantages are not all zero)."""
    return np.array(
        [np.ptp(check_rewards(g, where=f"group {j}")) > 0 for j, g in enumerate(groups)]
    )


def sharpen_novelty(
    advantages: Values,
    rewards: Values,
    mean_logprobs: Values,
    lam: float = 1.0,
    kappa: float = 0.5,
    threshold: float = 0.5,
) -> np.ndarray:
    """XRPO novelty sharpening for one group.

    In the paper's notation: ``s_i`` (``mean_logprobs``) is rollout i's length-normalised
    log-likelihood under the policy that sampled it, ``eta_i = exp(s_i - mean(s))`` its
    likelihood relative to the group (below 1: less likely than usual), and a correct rollout
    (reward > threshold) gets ``A_i + min(max(lam * (1 - eta_i), 0), kappa * A_i)``. The bonus
    is never more than a ``kappa`` fraction of the advantage it already had, so novelty
    sharpens a positive signal but cannot create one (a correct rollout with ``A_i <= 0``, as
    in an all-correct group, is left as it is). Other rollouts are unchanged.
    """
    a = np.asarray(advantages, dtype=float)
    r = check_rewards(rewards, where="rewards of the group to sharpen")
    s = np.asarray(mean_logprobs, dtype=float)
    if not (len(a) == len(r) == len(s)):
        raise ValueError("advantages, rewards and mean_logprobs must have one entry per rollout")
    eta = np.exp(s - s.mean())
    bonus = np.minimum(np.clip(lam * (1.0 - eta), 0.0, None), kappa * np.clip(a, 0.0, None))
    return np.where(r > threshold, a + bonus, a)


def recalibrate(
    rewards: Values, group_means: Values, group_stds: Values, scale: bool = True, eps: float = 1e-6
) -> np.ndarray:
    """SPEAR's recalibrated advantage of replayed rollouts against recent groups.

    ``(r - median(group_means)) / (median(group_stds) + eps)``, or without the division when
    ``scale`` is off (their ``norm_adv_by_std_in_grpo``). The medians are over the mean and the
    (population) standard deviation of each recent group, as the authors' replay buffer keeps
    them (SPEAR code, ``TrajectoryBufferBatch.update_batch`` stores per-group ``np.mean`` and
    ``np.std``; ``maintain_reward_statistics`` takes their 50th percentiles;
    ``prepare_for_selection`` passes them to ``compute_grpo_outcome_advantage`` as
    ``custom_reward_mean_std``, whose eps is 1e-6). A stored success stops counting as good
    once the typical group succeeds that often: with binary rewards the baseline is a group's
    success rate, not a single reward, so it moves smoothly with the policy.
    """
    r = check_rewards(rewards, where="replayed rewards")
    means = check_rewards(group_means, where="recent group means")
    centred = r - np.percentile(means, 50)
    if not scale:
        return centred
    stds = check_rewards(group_stds, where="recent group standard deviations")
    return centred / (np.percentile(stds, 50) + eps)
