"""The RLVR parts inside TRL: a ``GRPOTrainer`` that gives each prompt its own rollout count.

``StepstoneGRPOTrainer(model, reward_funcs, args, train_dataset, processing_class,
allocator="knapsack", ...)`` is TRL's trainer (TRL pinned to 1.16.0 by the ``rlvr`` extra)
with these parts switched on by name:

- ``allocator``: ``"uniform"`` | ``"knapsack"`` | ``"xrpo"`` (allocate.py). TRL samples
  ``num_generations`` rows per prompt; the trainer keeps that total as the budget and re-splits
  it per prompt from the state of earlier visits, kept in ``run_dir/rlvr.sqlite``
  (state.py), so a resumed run allocates from what it already learned.
- advantages: group-relative over the unequal groups (``scale_rewards`` "group" or "none"),
  optionally XRPO novelty sharpening (``novelty_lam > 0``).
- ``loss``: ``"ppo"`` uses TRL's own clipped loss (``epsilon``/``epsilon_high`` give DAPO's
  clip-higher, ``loss_type="dapo"`` the token mean); ``"gppo"`` swaps in Klear-Reasoner's
  gradient-preserving clipping (losses.py).
- ``rollout``: ``"sample"`` (TRL's generation) or ``"latr"`` (latr.py, through TRL's
  ``rollout_func`` hook, for ``transformers`` models).

Logged beside TRL's metrics: ``stepstone/nonzero_share`` (groups with a non-zero gradient),
``stepstone/nonzero_rollout_share`` and ``stepstone/max_group``. One process only for now;
evaluation keeps TRL's fixed ``num_generations_eval`` groups. Dynamic sampling, RoRecomp and
self-imitation are in the standalone loop (grpo.py), not wired into this trainer yet.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable

import numpy as np
import torch

from ..errors import ConfigError
from .advantages import group_advantages, sharpen_novelty
from .allocate import make_allocator
from .errors import MissingExtraError
from .latr import latr_rollouts
from .losses import policy_loss
from .sampling import token_logprobs
from .state import PromptStore, Visit, check_rewards

try:
    from trl import GRPOTrainer
except ImportError as e:  # pragma: no cover - the rlvr extra installs it
    raise MissingExtraError(
        "stepstone.rlvr.trl needs TRL; pip install 'stepstone[rlvr]' (trl==1.16.0)"
    ) from e


def checked_reward(func: Callable) -> Callable:
    """Wrap a TRL reward function so non-numbers fail with a message naming the fix."""
    name = getattr(func, "__name__", type(func).__name__)

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        out = func(*args, **kwargs)
        values = list(out)
        numeric = [v for v in values if v is not None]  # TRL allows None (not applicable)
        check_rewards(numeric or [0.0], where=f"reward function {name}")
        return [None if v is None else float(v) for v in values]

    return wrapper


def _key(prompt) -> str:
    return prompt if isinstance(prompt, str) else json.dumps(prompt, sort_keys=True)


class StepstoneGRPOTrainer(GRPOTrainer):
    def __init__(
        self,
        *args,
        allocator: str = "knapsack",
        min_per_prompt: int = 2,
        max_per_prompt: int | None = None,
        run_dir=None,
        loss: str = "ppo",
        novelty_lam: float = 0.0,
        novelty_kappa: float = 0.5,
        rollout: str = "sample",
        latr_options: dict | None = None,
        **kwargs,
    ):
        if loss not in ("ppo", "gppo"):
            raise ConfigError(f"unknown loss {loss!r}; choose one of ppo, gppo")
        if rollout not in ("sample", "latr"):
            raise ConfigError(f"unknown rollout {rollout!r}; choose one of sample, latr")
        funcs = kwargs.pop("reward_funcs", None)
        if funcs is None and len(args) > 1:
            args, funcs = (args[0], *args[2:]), args[1]
        funcs = funcs if isinstance(funcs, list) else [funcs]
        funcs = [
            checked_reward(f) if callable(f) and not hasattr(f, "config") else f for f in funcs
        ]
        if rollout == "latr":
            kwargs["rollout_func"] = self._latr_rollout
        self.rlvr_allocator = make_allocator(allocator)
        self.rlvr_min, self.rlvr_max = min_per_prompt, max_per_prompt
        self.rlvr_store = PromptStore(run_dir)
        self.rlvr_loss, self.rlvr_novelty = loss, (novelty_lam, novelty_kappa)
        self.rlvr_latr_options = latr_options or {}
        self._rlvr_rewards = None
        super().__init__(*args, reward_funcs=funcs, **kwargs)
        if self.num_generations < min_per_prompt:
            raise ConfigError(
                f"num_generations={self.num_generations} gives a budget smaller than prompts x "
                f"min_per_prompt={min_per_prompt}; set num_generations >= min_per_prompt in "
                "GRPOConfig or lower min_per_prompt"
            )
        if self.accelerator.num_processes != 1:
            raise ConfigError(
                "StepstoneGRPOTrainer allocates rollouts within one process; run it on a single "
                "process (per-prompt allocation across processes is not implemented yet)"
            )
        if loss == "gppo" and (self.beta != 0.0 or self.loss_type not in ("dapo", "bnpo")):
            raise ConfigError(
                "loss='gppo' replaces the clipped term of a token-mean loss without a KL term; "
                "set beta=0.0 and loss_type='dapo' in GRPOConfig"
            )
        self._rlvr_step = self.rlvr_store.last_step() + 1

    # ------------------------------------------------------------------ rollouts per prompt
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rlvr_rewards = out
        return out

    def _generate_and_score_completions(self, inputs):
        mode = "train" if self.model.training else "eval"
        if mode != "train":
            return super()._generate_and_score_completions(inputs)
        order: dict[str, list[int]] = {}
        for i, x in enumerate(inputs):
            order.setdefault(_key(x["prompt"]), []).append(i)
        keys = list(order)
        stats = self.rlvr_store.stats(keys)
        counts = self.rlvr_allocator.allocate(stats, len(inputs), self.rlvr_min, self.rlvr_max)
        rows = [
            dict(inputs[order[k][0]]) for k, n in zip(keys, counts, strict=True) for _ in range(n)
        ]
        output = super()._generate_and_score_completions(rows)

        weights = self.reward_weights.to(self._rlvr_rewards.device)
        rewards = (self._rlvr_rewards * weights.unsqueeze(0)).nansum(dim=1).cpu().numpy()
        bounds = np.concatenate([[0], np.cumsum(counts)])
        groups = [rewards[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]
        advs = group_advantages(groups, scale=self.scale_rewards != "none")
        lam, kappa = self.rlvr_novelty
        if lam > 0:
            mean_lp = self._mean_logprobs(output)
            advs = [
                sharpen_novelty(a, g, mean_lp[lo:hi], lam, kappa)
                for a, g, lo, hi in zip(advs, groups, bounds[:-1], bounds[1:], strict=True)
            ]
        device = output["advantages"].device
        output["advantages"] = torch.tensor(
            np.concatenate(advs), dtype=torch.float32, device=device
        )

        lengths = output["completion_mask"].sum(-1).cpu().numpy()
        self.rlvr_store.record(
            Visit.from_group(k, self._rlvr_step, g, lengths[lo:hi])
            for k, g, lo, hi in zip(keys, groups, bounds[:-1], bounds[1:], strict=True)
        )
        self._rlvr_step += 1
        informative = np.array([np.ptp(g) > 0 for g in groups])
        m = self._metrics[mode]
        m["stepstone/nonzero_share"].append(float(informative.mean()))
        m["stepstone/nonzero_rollout_share"].append(float(counts[informative].sum() / counts.sum()))
        m["stepstone/max_group"].append(float(counts.max()))
        return output

    @torch.no_grad()
    def _mean_logprobs(self, output) -> np.ndarray:
        ids = torch.cat([output["prompt_ids"], output["completion_ids"]], dim=1)
        att = torch.cat([output["prompt_mask"], output["completion_mask"]], dim=1)
        keep = output["completion_ids"].size(1)
        logps, _, _ = self._get_per_token_logps_and_entropies(self.model, ids, att, keep)
        mask = output["completion_mask"].float()
        return ((logps * mask).sum(-1) / mask.sum(-1).clamp(min=1)).cpu().numpy()

    # ------------------------------------------------------------------ LATR through rollout_func
    def _latr_rollout(self, prompts, trainer) -> dict:
        tok = self.processing_class
        eos = tok.eos_token_id
        gen = torch.Generator().manual_seed(int(self.args.seed) + self._rlvr_step)
        model = self.accelerator.unwrap_model(self.model)
        prompt_ids, completion_ids, logprobs = [], [], []
        i = 0
        while i < len(prompts):
            j = i
            while j < len(prompts) and _key(prompts[j]) == _key(prompts[i]):
                j += 1
            ids = tok(prompts[i])["input_ids"]
            res = latr_rollouts(
                model, torch.tensor(ids), j - i, self.max_completion_length, eos,
                temperature=self.temperature, generator=gen, **self.rlvr_latr_options,
            )  # fmt: skip
            lp = token_logprobs(model, torch.tensor([ids] * (j - i)), res.tokens, self.temperature)
            for row, row_lp in zip(res.tokens.tolist(), lp.tolist(), strict=True):
                end = row.index(eos) + 1 if eos in row else len(row)
                prompt_ids.append(ids)
                completion_ids.append(row[:end])
                logprobs.append(row_lp[:end])
            i = j
        return {"prompt_ids": prompt_ids, "completion_ids": completion_ids, "logprobs": logprobs}

    # ------------------------------------------------------------------ GPPO loss
    def _compute_loss(self, model, inputs):
        if self.rlvr_loss != "gppo":
            return super()._compute_loss(model, inputs)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        att = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        keep = inputs["completion_ids"].size(1)
        logps, _, _ = self._get_per_token_logps_and_entropies(model, ids, att, keep)
        old = inputs.get("old_per_token_logps")
        old = logps.detach() if old is None else old
        loss = policy_loss(
            logps, old, inputs["advantages"], inputs["completion_mask"], self.epsilon_low,
            self.epsilon_high, mode="gppo", aggregation="token_mean",
        )  # fmt: skip
        mode = "train" if self.model.training else "eval"
        self._metrics[mode]["stepstone/gppo_loss"].append(float(loss.detach()))
        return loss / (self.current_gradient_accumulation_steps if mode == "train" else 1.0)
