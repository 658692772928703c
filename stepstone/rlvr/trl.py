"""The RLVR parts inside TRL: a ``GRPOTrainer`` that gives each prompt its own rollout count.

``StepstoneGRPOTrainer(model, reward_funcs, args, train_dataset, processing_class,
allocator="knapsack", ...)`` is TRL's trainer (TRL pinned to 1.16.0 by the ``rlvr`` extra)
with these parts switched on by name (the names of ``grpo.GRPOConfig``):

- ``allocator``: ``"uniform"`` | ``"knapsack"`` | ``"xrpo"`` (allocate.py). TRL samples
  ``num_generations`` rows per prompt; the trainer keeps that total as the budget and re-splits
  it per prompt from the state of earlier visits, kept in ``run_dir/rlvr.sqlite``
  (state.py), so a resumed run allocates from what it already learned. One prompt gets at
  most ``max_per_prompt`` rollouts (default 4 x ``num_generations``); advantages are clipped
  to [-``adv_clip``, ``adv_clip``] (5, the Knapsack RL authors' value; None turns it off).
- advantages: group-relative over the unequal groups (``scale_rewards`` "group" or "none"),
  optionally XRPO novelty sharpening (``novelty_lam > 0``).
- ``loss``: ``"ppo"`` uses TRL's own clipped loss (``epsilon``/``epsilon_high`` give DAPO's
  clip-higher, ``loss_type="dapo"`` the token mean); ``"gppo"`` swaps in Klear-Reasoner's
  gradient-preserving clipping (losses.py), its token mean over the whole step as TRL's
  "dapo" loss takes it, with ``dual_clip=c`` their dual clip (their recipe: 10).
- ``rollout``: ``"sample"`` (TRL's generation) or ``"latr"`` (latr.py, through TRL's
  ``rollout_func`` hook, for ``transformers`` models).
- batch composition (batches.py), off by default: ``dynamic_sampling`` (DAPO: all-equal
  groups leave the loss; for up to ``dynamic_rounds`` rounds TRL samples ``num_generations``
  rollouts for as many fresh ``train_dataset`` prompts until the step has as many informative
  groups as prompts), ``rorecomp`` (the loss sees the priority rows, ``rorecomp_fraction`` of
  short correct and long wrong; the rest are buffered and ``rorecomp_compensation`` of them
  join every 4th step with their old advantages and log-probs), ``self_imitation=k`` (SPEAR:
  up to k stored wins of earlier steps are replayed with recalibrated advantages).

Where TRL forces a difference from the standalone loop (grpo.py): TRL owns the optimiser step,
so a RoRecomp compensation batch joins the loss of the step it falls due in rather than being
a second update; refill prompts come from the training set (in a seeded order of their own,
skipping prompts already sampled that step), not from a ``refill`` callable. With these parts
on, a step's batch can be larger or smaller than TRL's; it is split over
``steps_per_generation`` without dropping rows, and an empty one updates nothing.

Logged beside TRL's metrics: ``stepstone/nonzero_share`` (groups with a non-zero gradient),
``stepstone/nonzero_rollout_share``, ``stepstone/max_group``; with batch composition on also
``stepstone/rollouts``, ``stepstone/trained_rows``, ``stepstone/dropped_groups``,
``stepstone/refill_rounds``, ``stepstone/priority_rows``, ``stepstone/compensation_rows`` and
``stepstone/replayed``. One process only (batch composition: text prompts only); evaluation
keeps TRL's fixed ``num_generations_eval`` groups.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import Any, cast

import numpy as np
import torch

from ..errors import ConfigError
from .advantages import group_advantages, sharpen_novelty
from .allocate import make_allocator
from .batches import Group, RoRecomp, SelfImitationBuffer, dynamic_sampling
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

# Per-row fields of TRL's batch that the batch parts can carry, with their padding value
# (None: the tokenizer's pad id). Prompts are left-padded, completions right-padded.
_PROMPT_FIELDS = {"prompt_ids": None, "prompt_mask": 0}
_COMPLETION_FIELDS = {
    "completion_ids": None, "completion_mask": 0, "tool_mask": 1, "old_per_token_logps": 0.0,
    "ref_per_token_logps": 0.0, "sampling_per_token_logps": 0.0,
}  # fmt: skip
_ROW_FIELDS = (*_PROMPT_FIELDS, *_COMPLETION_FIELDS, "advantages")
_OLD = "old_per_token_logps"
COMPENSATION_EVERY = 4  # RoRecomp's compensation period, as in the standalone loop
# max_per_prompt=None: at most 4x TRL's num_generations for one prompt, as the standalone
# loop's default (32 of 128 over 16 prompts), so one group cannot take nearly the whole budget.
MAX_GROUP_FACTOR = 4


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


def split_rows(batch: dict) -> list[dict[str, torch.Tensor]]:
    """TRL's padded batch as one dict of tensors per row (copies, so buffers hold no batch)."""
    unknown = sorted(
        k for k, v in batch.items() if v is not None and k not in _ROW_FIELDS
        and k != "num_items_in_batch"
    )  # fmt: skip
    if unknown:
        raise ConfigError(
            f"dynamic_sampling, rorecomp and self_imitation handle text completions only, but "
            f"TRL's batch also has {', '.join(unknown)}; turn those options off for this "
            "model or configuration"
        )
    keys = [k for k in _ROW_FIELDS if batch.get(k) is not None]
    return [{k: batch[k][i].clone() for k in keys} for i in range(batch["completion_ids"].size(0))]


def _pad(rows: list[torch.Tensor], value, left: bool = False) -> torch.Tensor:
    width = max(r.size(0) for r in rows)
    pads = [(width - r.size(0), 0) if left else (0, width - r.size(0)) for r in rows]
    return torch.stack(
        [torch.nn.functional.pad(r, p, value=value) for r, p in zip(rows, pads, strict=True)]
    )


def collate_rows(rows: list[dict[str, torch.Tensor]], pad_id: int, device) -> dict:
    """Rows back into a batch TRL's loss reads: padded tensors and ``num_items_in_batch``."""
    if not rows:
        long = torch.zeros(0, 0, dtype=torch.long, device=device)
        return {
            "prompt_ids": long, "prompt_mask": long, "completion_ids": long,
            "completion_mask": long, "advantages": torch.zeros(0, device=device),
            "num_items_in_batch": torch.zeros((), device=device),
        }  # fmt: skip
    keys = [k for k in rows[0] if all(k in r for r in rows)]
    out = {}
    for k in keys:
        values = [r[k] for r in rows]
        if k == "advantages":
            out[k] = torch.stack(values)
        else:
            fields = _PROMPT_FIELDS if k in _PROMPT_FIELDS else _COMPLETION_FIELDS
            pad = pad_id if fields[k] is None else fields[k]
            out[k] = _pad(values, pad, left=k in _PROMPT_FIELDS)
    mask = out["completion_mask"] * out.get("tool_mask", 1)
    out["num_items_in_batch"] = mask.sum()
    return out


def split_batch(batch: dict, parts: int) -> list[dict]:
    """Shuffle the rows and cut them into ``parts`` near-equal batches (TRL's split would drop
    the remainder of a batch whose size is not a multiple of ``parts``)."""
    n = batch["completion_ids"].size(0)
    order = torch.randperm(n)
    chunks = []
    for idx in torch.tensor_split(order, parts):
        chunks.append({k: v if v.ndim == 0 else v[idx.to(v.device)] for k, v in batch.items()})
    return chunks


class StepstoneGRPOTrainer(GRPOTrainer):
    """TRL's ``GRPOTrainer`` with the RLVR parts above chosen by keyword; TRL's own arguments
    (``model``, ``reward_funcs``, ``args``, ...) pass through unchanged."""

    def __init__(
        self,
        *args,
        allocator: str = "knapsack",
        min_per_prompt: int = 2,
        max_per_prompt: int | None = None,
        adv_clip: float | None = 5.0,
        run_dir=None,
        loss: str = "ppo",
        dual_clip: float | None = None,
        novelty_lam: float = 0.0,
        novelty_kappa: float = 0.5,
        rollout: str = "sample",
        latr_options: dict | None = None,
        dynamic_sampling: bool = False,
        dynamic_rounds: int = 4,
        rorecomp: bool = False,
        rorecomp_fraction: float = 0.5,
        rorecomp_compensation: int = 64,
        self_imitation: int = 0,
        **kwargs,
    ):
        if loss not in ("ppo", "gppo"):
            raise ConfigError(f"unknown loss {loss!r}; choose one of ppo, gppo")
        if dual_clip is not None and loss != "gppo":
            raise ConfigError(
                "dual_clip applies to loss='gppo' here (TRL's own loss has no dual clip); "
                "set loss='gppo' or drop dual_clip"
            )
        if rollout not in ("sample", "latr"):
            raise ConfigError(f"unknown rollout {rollout!r}; choose one of sample, latr")
        if dynamic_rounds < 0 or self_imitation < 0 or rorecomp_compensation < 1:
            raise ConfigError(
                "dynamic_rounds and self_imitation must be >= 0 and rorecomp_compensation >= 1 "
                "(e.g. dynamic_rounds=4, self_imitation=8, rorecomp_compensation=64)"
            )
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
        self.rlvr_adv_clip = adv_clip
        self.rlvr_store = PromptStore(run_dir)
        self.rlvr_loss, self.rlvr_novelty = loss, (novelty_lam, novelty_kappa)
        self.rlvr_dual_clip = dual_clip
        self.rlvr_latr_options = latr_options or {}
        self.rlvr_dynamic_rounds = dynamic_rounds if dynamic_sampling else None
        self.rlvr_recomp = (
            RoRecomp(rorecomp_fraction, rorecomp_compensation, COMPENSATION_EVERY)
            if rorecomp
            else None
        )
        self.rlvr_self_imitation = self_imitation
        self.rlvr_replay = SelfImitationBuffer() if self_imitation else None
        self.rlvr_reshape = dynamic_sampling or rorecomp or self_imitation > 0
        self._rlvr_rewards = None
        self._rlvr_round = 0  # generation calls within the current step (refills)
        self._rlvr_refill_order: list[int] = []
        super().__init__(*args, reward_funcs=funcs, **kwargs)  # type: ignore[misc]
        if (self.num_generations or 0) < min_per_prompt:
            raise ConfigError(
                f"num_generations={self.num_generations} gives a budget smaller than prompts x "
                f"min_per_prompt={min_per_prompt}; set num_generations >= min_per_prompt in "
                "GRPOConfig or lower min_per_prompt"
            )
        if self.rlvr_max is None:
            self.rlvr_max = MAX_GROUP_FACTOR * int(cast(int, self.num_generations))
        if self.accelerator.num_processes != 1:
            raise ConfigError(
                "StepstoneGRPOTrainer allocates rollouts within one process; run it on a single "
                "process (per-prompt allocation across processes is not implemented yet)"
            )
        if loss == "gppo" and (self.beta != 0.0 or self.loss_type != "dapo"):
            raise ConfigError(
                "loss='gppo' replaces the clipped term of a token-mean loss without a KL term; "
                "set beta=0.0 and loss_type='dapo' in GRPOConfig"
            )
        if dynamic_sampling:
            try:
                len(cast(Any, self.train_dataset))
            except TypeError:
                raise ConfigError(
                    "dynamic_sampling refills from train_dataset by index; pass a map-style "
                    "Dataset (not an IterableDataset) or set dynamic_sampling=False"
                ) from None
        self._rlvr_refill_gen = torch.Generator().manual_seed(int(self.args.seed) + 1)
        self._rlvr_step = self.rlvr_store.last_step() + 1

    # ------------------------------------------------------------------ rollouts per prompt
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        out = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._rlvr_rewards = out
        return out

    def _generate_and_score_completions(self, inputs):
        if not self.model.training:
            return super()._generate_and_score_completions(inputs)
        self._rlvr_round = 0
        order: dict[str, list[int]] = {}
        for i, x in enumerate(inputs):
            order.setdefault(_key(x["prompt"]), []).append(i)
        keys = list(order)
        stats = self.rlvr_store.stats(keys)
        hi = min(cast(int, self.rlvr_max), len(inputs))
        counts = self.rlvr_allocator.allocate(stats, len(inputs), self.rlvr_min, hi)
        rows = [
            dict(inputs[order[k][0]]) for k, n in zip(keys, counts, strict=True) for _ in range(n)
        ]
        output, groups = self._sample_groups(rows, keys, counts)

        informative = np.array([any(g.informative for g in groups if g.prompt == k) for k in keys])
        m = self._metrics["train"]
        m["stepstone/nonzero_share"].append(float(informative.mean()))
        m["stepstone/nonzero_rollout_share"].append(float(counts[informative].sum() / counts.sum()))
        m["stepstone/max_group"].append(float(counts.max()))
        if not self.rlvr_reshape:
            self._record(groups)
            return output
        return self._compose(groups, set(keys), output["advantages"].device)

    def _advantages(self, rewards_by_group: list[np.ndarray]) -> list[np.ndarray]:
        """TRL's advantages (``_generate_and_score_completions``, "sum_then_normalize"), but per
        real group: the mean over the group's scorable rows, the unbiased std (TRL's ``nanstd``)
        of the group or, with ``scale_rewards="batch"``, of the whole batch, eps 1e-4; rows
        every reward function returned None for (NaN here) get 0. Then the ``adv_clip``."""
        scored = [r[~np.isnan(r)] for r in rewards_by_group]
        out = [np.zeros(len(r)) for r in rewards_by_group]
        batch_std = None
        if self.scale_rewards == "batch":
            flat = np.concatenate(scored)
            batch_std = float(flat.std(ddof=1)) if len(flat) > 1 else 0.0
        for a, r, g in zip(out, rewards_by_group, scored, strict=True):
            if len(g) == 0:
                continue
            if batch_std is None:
                adv = group_advantages(
                    [g], scale=self.scale_rewards != "none", eps=1e-4, clip=self.rlvr_adv_clip
                )[0]
            else:
                adv = (g - g.mean()) / (batch_std + 1e-4)
                if self.rlvr_adv_clip is not None:
                    adv = np.clip(adv, -self.rlvr_adv_clip, self.rlvr_adv_clip)
            a[~np.isnan(r)] = adv
        return out

    def _sample_groups(self, rows, keys, counts) -> tuple[dict, list[Group]]:
        """TRL generates and rewards ``rows`` (consecutive runs of ``counts`` per prompt); the
        advantages are recomputed per group. Returns TRL's batch and one ``Group`` per prompt
        with a scorable row, whose rollouts are its scorable batch rows (with the batch parts
        on) or row indices. TRL's ``frac_reward_zero_std`` of this batch is replaced by the
        share of rows in real groups whose advantages are all zero (TRL computes it over
        fixed ``num_generations`` windows, which span prompts once groups differ in size);
        TRL's ``reward_std`` is over the whole batch and stays."""
        output = super()._generate_and_score_completions(rows)
        self._rlvr_round += 1
        per_func = cast(torch.Tensor, self._rlvr_rewards)
        weights = self.reward_weights.to(per_func.device)
        rewards = (per_func * weights.unsqueeze(0)).nansum(dim=1).cpu().numpy()
        rewards[torch.isnan(per_func).all(dim=1).cpu().numpy()] = np.nan
        bounds = np.concatenate([[0], np.cumsum(counts)])
        spans = list(zip(bounds[:-1], bounds[1:], strict=True))
        rewards_by_group = [rewards[a:b] for a, b in spans]
        advs = self._advantages(rewards_by_group)
        zero = sum(len(a) for a in advs if not np.any(a))
        self._metrics["train"]["frac_reward_zero_std"][-1] = zero / len(rewards)
        lam, kappa = self.rlvr_novelty
        logps = output.get(_OLD)
        if logps is None and (lam > 0 or self.rlvr_recomp is not None):
            logps = self._token_logps(output)
        if lam > 0:
            mask = output["completion_mask"].float()
            lp = cast(torch.Tensor, logps)
            mean_lp = ((lp * mask).sum(-1) / mask.sum(-1).clamp(min=1)).cpu().numpy()
            for a, g, (lo, hi) in zip(advs, rewards_by_group, spans, strict=True):
                ok = ~np.isnan(g)
                if ok.any():
                    a[ok] = sharpen_novelty(a[ok], g[ok], mean_lp[lo:hi][ok], lam, kappa)
        device = output["advantages"].device
        output["advantages"] = torch.tensor(
            np.concatenate(advs), dtype=torch.float32, device=device
        )
        if self.rlvr_recomp is not None:
            output[_OLD] = logps  # compensation rows are replayed against their sampling policy
        items = split_rows(output) if self.rlvr_reshape else list(range(len(rewards)))
        lengths = output["completion_mask"].sum(-1).cpu().numpy()
        groups = []
        for k, (lo, hi) in zip(keys, spans, strict=True):
            keep = [i for i in range(lo, hi) if not np.isnan(rewards[i])]
            if keep:
                groups.append(Group(k, [items[i] for i in keep], rewards[keep], lengths[keep]))
        return output, groups

    def _compose(self, groups: list[Group], seen: set[str], device) -> dict:
        """The batch parts, in the standalone loop's order: dynamic sampling, RoRecomp,
        self-imitation. Returns the batch the loss sees."""
        visited = list(groups)
        m = self._metrics["train"]
        kept = groups
        if self.rlvr_dynamic_rounds is not None:
            first = [groups]

            def sample(k: int) -> list[Group]:
                if first:
                    return first.pop()
                prompts = self._refill(k, seen)
                if not prompts:
                    return []
                n = int(cast(int, self.num_generations))  # one TRL group per fresh prompt
                rows = [dict(x) for x in prompts for _ in range(n)]
                keys = [_key(x["prompt"]) for x in prompts]
                _, more = self._sample_groups(rows, keys, np.full(len(prompts), n))
                visited.extend(more)
                return more

            kept, info = dynamic_sampling(
                sample, target_groups=len(groups), max_rounds=self.rlvr_dynamic_rounds + 1
            )
            m["stepstone/dropped_groups"].append(float(info["dropped"]))
            m["stepstone/refill_rounds"].append(float(info["rounds"] - 1))
        compensation: list[dict] = []
        if self.rlvr_recomp is not None:
            priority, comp = self.rlvr_recomp.step(kept)
            rows = [g.rollouts[i] for g, idx in priority for i in idx]
            compensation = [g.rollouts[i] for g, i in comp]
            m["stepstone/priority_rows"].append(float(len(rows)))
            m["stepstone/compensation_rows"].append(float(len(compensation)))
        else:
            rows = [r for g in kept for r in g.rollouts]
        replayed: list[dict] = []
        if self.rlvr_replay is not None:
            for g in kept:
                self.rlvr_replay.observe(g.rewards)
            for item, a in self.rlvr_replay.sample(self.rlvr_self_imitation, self._rlvr_step):
                row = {k: v for k, v in item.rollout.items() if k != _OLD}
                row["advantages"] = torch.tensor(a, dtype=torch.float32, device=device)
                replayed.append(row)
            for g in kept:
                self.rlvr_replay.add(
                    g, [float(r["advantages"]) for r in g.rollouts], self._rlvr_step
                )
            m["stepstone/replayed"].append(float(len(replayed)))
        rows = rows + replayed + compensation
        self._fill_old_logps(rows)
        m["stepstone/rollouts"].append(float(sum(len(g.rewards) for g in visited)))
        m["stepstone/trained_rows"].append(float(len(rows)))
        self._record(visited)
        return collate_rows(rows, self._tokenizer.pad_token_id, device)

    def _refill(self, k: int, seen: set[str]) -> list[dict]:
        """Up to k training-set rows whose prompts this step has not sampled yet."""
        out: list[dict] = []
        dataset = cast(Any, self.train_dataset)
        size = len(dataset)
        for _ in range(size):
            if len(out) == k:
                break
            if not self._rlvr_refill_order:
                perm = torch.randperm(size, generator=self._rlvr_refill_gen)
                self._rlvr_refill_order = perm.tolist()
            x = dict(dataset[self._rlvr_refill_order.pop()])
            if _key(x["prompt"]) not in seen:
                seen.add(_key(x["prompt"]))
                out.append(x)
        return out

    def _fill_old_logps(self, rows: list[dict]) -> None:
        """If any row carries its sampling log-probs (a RoRecomp compensation row, or TRL
        computed them), give the others theirs under the current policy (replayed rows)."""
        missing = [r for r in rows if _OLD not in r]
        if len(missing) in (0, len(rows)):
            return
        device = next(r[_OLD] for r in rows if _OLD in r).device
        batch = collate_rows(missing, self._tokenizer.pad_token_id, device)
        for r, lp in zip(missing, self._token_logps(batch), strict=True):
            r[_OLD] = lp[: r["completion_ids"].size(0)]

    def _record(self, groups: list[Group]) -> None:
        """One visit per prompt and step (a refilled prompt's groups merged) in one commit."""
        merged: dict[str, tuple[list, list]] = {}
        for g in groups:
            rewards, lengths = merged.setdefault(g.prompt, ([], []))
            rewards.extend(g.rewards.tolist())
            lengths.extend(g.lengths.tolist())
        self.rlvr_store.record(
            Visit.from_group(k, self._rlvr_step, r, n) for k, (r, n) in merged.items()
        )
        self._rlvr_step += 1

    @torch.no_grad()
    def _token_logps(self, batch) -> torch.Tensor:
        ids = torch.cat([batch["prompt_ids"], batch["completion_ids"]], dim=1)
        att = torch.cat([batch["prompt_mask"], batch["completion_mask"]], dim=1)
        keep = batch["completion_ids"].size(1)
        logps, _, _ = self._get_per_token_logps_and_entropies(self.model, ids, att, keep)
        return logps

    def _prepare_inputs(self, generation_batch):
        """TRL's buffering, but with a batch of any size split without dropping rows."""
        if not (self.model.training and self.rlvr_reshape):
            return super()._prepare_inputs(generation_batch)
        parts = self.args.steps_per_generation
        if self._step % (parts * self.num_iterations) == 0 or self._buffered_inputs is None:
            batch = self._generate_and_score_completions(generation_batch)
            self._buffered_inputs = split_batch(batch, parts)
        return self._buffered_inputs[self._step % parts]

    # ------------------------------------------------------------------ LATR through rollout_func
    def _latr_rollout(self, prompts, trainer) -> dict:
        tok = cast(Any, self.processing_class)
        eos = tok.eos_token_id
        max_new = cast(int, self.max_completion_length)
        seed = int(self.args.seed) + self._rlvr_step + 100_003 * self._rlvr_round
        gen = torch.Generator().manual_seed(seed)
        model = self.accelerator.unwrap_model(self.model)
        prompt_ids, completion_ids, logprobs = [], [], []
        i = 0
        while i < len(prompts):
            j = i
            while j < len(prompts) and _key(prompts[j]) == _key(prompts[i]):
                j += 1
            ids = tok(prompts[i])["input_ids"]
            res = latr_rollouts(
                model, torch.tensor(ids), j - i, max_new, eos,
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
        if inputs["completion_ids"].size(0) == 0:
            # Nothing to learn from this part of the step: a loss no parameter depends on,
            # so the optimiser skips every parameter (their gradients stay None).
            return torch.zeros((), device=self.accelerator.device, requires_grad=True)
        if self.rlvr_loss != "gppo":
            return super()._compute_loss(model, inputs)
        ids = torch.cat([inputs["prompt_ids"], inputs["completion_ids"]], dim=1)
        att = torch.cat([inputs["prompt_mask"], inputs["completion_mask"]], dim=1)
        keep = inputs["completion_ids"].size(1)
        logps, _, _ = self._get_per_token_logps_and_entropies(model, ids, att, keep)
        old = inputs.get(_OLD)
        old = logps.detach() if old is None else old
        mask = inputs["completion_mask"] * inputs.get("tool_mask", 1)
        mode = "train" if self.model.training else "eval"
        # TRL's "dapo" normaliser: the tokens of the whole generation batch, rescaled to one
        # accumulation window, so the token mean spans every micro-batch of the step.
        normalizer = inputs["num_items_in_batch"].clamp(min=1.0) / self.accelerator.num_processes
        if mode == "train":
            steps = self.current_gradient_accumulation_steps / self.args.steps_per_generation
            normalizer = normalizer * steps
        loss = policy_loss(
            logps, old, inputs["advantages"], mask, self.epsilon_low, self.epsilon_high,
            mode="gppo", aggregation="token_mean", dual_clip=self.rlvr_dual_clip,
            normalizer=normalizer,
        )  # fmt: skip
        self._metrics[mode]["stepstone/gppo_loss"].append(float(loss.detach()))
        return loss
