"""Policy-gradient losses for GRPO-family training, one function with switchable parts.

``policy_loss(logp, old_logp, advantages, mask, ...)`` (torch tensors [B, T], advantages [B])
combines:

- ratio clipping: PPO's symmetric ``clip(r, 1-eps, 1+eps)`` (Schulman et al. 2017); DAPO's
  clip-higher, a larger upper bound ``eps_high`` so unlikely tokens can still gain probability
  (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale");
- ``mode="gppo"``: gradient-preserving clipping from Klear-Reasoner (Su et al. 2025,
  "Klear-Reasoner: Advancing Reasoning Capability via Gradient-Preserving Clipping Policy
  Optimization"): the clipped term keeps the clipped value in the forward pass but still passes
  a bounded gradient, ``(1+eps_high) * r / sg(r)`` above and ``(1-eps_low) * r / sg(r)`` below;
- ``dual_clip=c``: dual-clip PPO (Ye et al. 2020) as verl and the Klear-Reasoner code apply it
  (``verl/trainer/ppo/core_algos.py`` ``compute_policy_loss`` / ``compute_gppo_loss``, their
  GPPO recipe ``recipe/dapo/perf_run_dapo_ours_math_general_gppo.sh`` sets
  ``clip_ratio_c=10``): for a negative advantage the token loss is at most ``-c * A``, so a
  ratio far above 1 cannot push it without bound (and passes no gradient);
- aggregation: ``"token_mean"`` (DAPO: every token of the batch weighs the same; pass
  ``normalizer`` when the batch is cut into micro-batches, so the mean spans all of them) or
  ``"seq_mean"`` (GRPO: mean over a sequence's tokens, then over sequences).

``overlong_penalty`` is DAPO's soft overlong punishment, added to the reward. Not here:
sampling, advantages.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ..errors import ConfigError

MODES = ("ppo", "gppo")
AGGREGATIONS = ("token_mean", "seq_mean")


def policy_loss(
    logp: torch.Tensor,
    old_logp: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    eps_low: float = 0.2,
    eps_high: float = 0.2,
    mode: str = "ppo",
    aggregation: str = "token_mean",
    dual_clip: float | None = None,
    normalizer: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """Clipped surrogate loss (to minimise). ``eps_high > eps_low`` is DAPO's clip-higher.

    ``normalizer`` (token mean only) replaces this batch's token count: TRL's "dapo" loss
    divides each micro-batch's token sum by the tokens of the whole generation batch."""
    if mode not in MODES:
        raise ConfigError(f"unknown loss mode {mode!r}; choose one of {', '.join(MODES)}")
    if aggregation not in AGGREGATIONS:
        raise ConfigError(
            f"unknown aggregation {aggregation!r}; choose one of {', '.join(AGGREGATIONS)}"
        )
    mask = mask.to(logp.dtype)
    adv = advantages.to(logp.dtype).unsqueeze(-1)
    ratio = torch.exp(logp - old_logp)
    if mode == "ppo":
        clipped = torch.clamp(ratio, 1 - eps_low, 1 + eps_high)
    else:
        sg = ratio.detach()
        upper = (1 + eps_high) * ratio / sg
        lower = (1 - eps_low) * ratio / sg
        clipped = torch.where(sg > 1 + eps_high, upper, torch.where(sg < 1 - eps_low, lower, ratio))
    per_token = -torch.minimum(ratio * adv, clipped * adv)
    if dual_clip is not None:
        if dual_clip <= 1:
            raise ConfigError(f"dual_clip={dual_clip} must be above 1; the GPPO recipe uses 10")
        per_token = torch.where(adv < 0, torch.minimum(per_token, -dual_clip * adv), per_token)
    if aggregation == "token_mean":
        total = mask.sum().clamp(min=1) if normalizer is None else normalizer
        return (per_token * mask).sum() / total
    per_seq = (per_token * mask).sum(-1) / mask.sum(-1).clamp(min=1)
    return per_seq.mean()


def overlong_penalty(
    lengths: Sequence[int] | np.ndarray, max_length: int, cache: int
) -> np.ndarray:
    """DAPO's soft overlong punishment: 0 up to ``max_length - cache`` tokens, then falling
    linearly to -1 at ``max_length``, and -1 beyond it."""
    if not 0 < cache <= max_length:
        raise ConfigError(
            f"overlong cache {cache} must be in (0, max_length={max_length}]; "
            "use e.g. cache = max_length // 4"
        )
    n = np.asarray(lengths, dtype=float)
    soft = max_length - cache
    return np.where(n <= soft, 0.0, np.where(n <= max_length, (soft - n) / cache, -1.0))
