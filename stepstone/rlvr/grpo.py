"""A standalone GRPO loop built from the parts: allocate, sample, score, advantage, update.

Readable top to bottom, for small policies and for checking the TRL path against. One
``GRPO.step(prompts)``:

1. the allocator splits ``budget`` rollouts over the prompts from their stored state;
2. each prompt gets its count of rollouts (``rollout="sample"``, or ``"latr"`` tree rollouts);
3. rewards from the user's function (numbers only), optionally DAPO's overlong penalty;
4. group-relative advantages over groups of unequal size, optionally XRPO novelty sharpening;
5. batch composition: optionally DAPO dynamic sampling (drop all-same groups, refill from a
   ``refill`` callable), RoRecomp priority/compensation batches, and SPEAR self-imitation
   (replayed wins with recalibrated advantages);
6. ``epochs`` passes of the clipped loss (PPO / clip-higher / GPPO, token or sequence mean);
7. the visits are committed to the run's ``PromptStore`` in one transaction.

The share of groups with a non-zero gradient (rewards not all equal) is the quantity Knapsack
RL raises; every step reports it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from .advantages import group_advantages, sharpen_novelty
from .allocate import make_allocator
from .batches import Group, RoRecomp, SelfImitationBuffer
from .losses import overlong_penalty, policy_loss
from .sampling import completion_mask, sample, token_logprobs
from .state import PromptStore, Visit, check_rewards


@dataclass(frozen=True)
class GRPOConfig:
    """Hyperparameters; defaults are GRPO with DAPO's clip-higher and token-mean loss."""

    allocator: str = "uniform"
    budget: int = 128  # rollouts per step
    min_per_prompt: int = 2
    max_per_prompt: int | None = 32
    rollout: str = "sample"  # or "latr"
    temperature: float = 1.0
    lr: float = 1e-3
    epochs: int = 1
    minibatches: int = 2
    eps_low: float = 0.2
    eps_high: float = 0.28
    loss_mode: str = "ppo"  # or "gppo"
    dual_clip: float | None = None  # dual-clip PPO bound; Klear-Reasoner's GPPO recipe: 10.0
    aggregation: str = "token_mean"  # or "seq_mean"
    scale_advantages: bool = True
    adv_clip: float | None = 5.0  # Knapsack RL authors' adv_clip_value (baseline and theirs)
    novelty_lam: float = 0.0  # > 0 turns on XRPO novelty sharpening
    novelty_kappa: float = 0.5
    overlong_max: int | None = None  # DAPO soft overlong penalty when set
    overlong_cache: int = 2
    self_imitation: int = 0  # replayed wins per step (SPEAR); 0 = off
    max_grad_norm: float = 1.0
    skip_zero_advantage: bool = False  # True: leave rows with A = 0 out of the token mean
    dynamic_sampling: bool = False  # DAPO: drop all-same groups, refill from step(refill=...)
    dynamic_rounds: int = 4
    rorecomp: bool = False  # RoRecomp priority batches + compensation batches
    rorecomp_fraction: float = 0.5
    rorecomp_compensation: int = 64


class GRPO:
    """One policy, one optimiser, one run store; ``step(prompts)`` returns that step's metrics."""

    def __init__(
        self,
        model,
        encode: Callable[[str], list[int]],
        decode: Callable[[Sequence[int]], str],
        reward: Callable[[str, str], float],
        eos_id: int,
        max_new_tokens: int,
        config: GRPOConfig = GRPOConfig(),
        store: PromptStore | None = None,
        seed: int = 0,
        latr_options: dict | None = None,
    ):
        self.model, self.encode, self.decode, self.reward = model, encode, decode, reward
        self.eos_id, self.max_new_tokens, self.config = eos_id, max_new_tokens, config
        self.store = store if store is not None else PromptStore(None)
        self.allocator = make_allocator(config.allocator)
        self.opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=0.0)
        self.gen = torch.Generator().manual_seed(seed)
        self.rng = np.random.default_rng(seed)
        self.step_index = self.store.last_step() + 1
        self.replay = SelfImitationBuffer() if config.self_imitation else None
        self.recomp = (
            RoRecomp(config.rorecomp_fraction, config.rorecomp_compensation)
            if config.rorecomp
            else None
        )
        self.latr_options = latr_options or {}

    # ------------------------------------------------------------------ rollouts
    def rollouts(self, prompt: str, n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        ids = torch.tensor([self.encode(prompt)])
        if self.config.rollout == "latr":
            from .latr import latr_rollouts

            res = latr_rollouts(
                self.model, ids[0], n, self.max_new_tokens, self.eos_id,
                temperature=self.config.temperature, generator=self.gen, **self.latr_options,
            )  # fmt: skip
            tokens = res.tokens
            logp = token_logprobs(self.model, ids.expand(n, -1), tokens, self.config.temperature)
            return tokens, logp.detach(), completion_mask(tokens, self.eos_id)
        return sample(
            self.model, ids.expand(n, -1), self.max_new_tokens, self.eos_id,
            self.config.temperature, self.gen,
        )  # fmt: skip

    # ------------------------------------------------------------------ one step
    def _sampled(self, prompts, counts) -> list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """Each prompt's rollouts; plain sampling of equal-length prompts in one batch."""
        encoded = [self.encode(p) for p in prompts]
        if self.config.rollout == "latr" or len({len(e) for e in encoded}) > 1:
            return [self.rollouts(p, int(n)) for p, n in zip(prompts, counts, strict=True)]
        ids = torch.tensor([e for e, n in zip(encoded, counts, strict=True) for _ in range(n)])
        out = sample(
            self.model, ids, self.max_new_tokens, self.eos_id, self.config.temperature, self.gen
        )
        tokens, logp, mask = out
        bounds = np.concatenate([[0], np.cumsum(counts)])
        return [
            (tokens[a:b], logp[a:b], mask[a:b])
            for a, b in zip(bounds[:-1], bounds[1:], strict=True)
        ]

    def _sample_groups(self, prompts, counts) -> tuple[list[Group], list]:
        cfg = self.config
        groups, batch = [], []
        for prompt, (tokens, old_logp, mask) in zip(
            prompts, self._sampled(prompts, counts), strict=True
        ):
            texts = [self.decode(t.tolist()) for t in tokens]
            rewards = check_rewards(
                [self.reward(prompt, t) for t in texts], where=f"reward function on {prompt!r}"
            )
            lengths = mask.sum(-1).numpy()
            if cfg.overlong_max is not None:
                rewards = rewards + overlong_penalty(lengths, cfg.overlong_max, cfg.overlong_cache)
            groups.append(Group(prompt, texts, rewards, lengths))
            batch.append((prompt, tokens, old_logp, mask))
        return groups, batch

    def step(
        self, prompts: Sequence[str], refill: Callable[[int], Sequence[str]] | None = None
    ) -> dict[str, float]:
        """One GRPO step on ``prompts``. With ``dynamic_sampling`` on, groups whose rewards are
        all equal are dropped from the update and ``refill(k)`` supplies k more prompts (each
        sampled ``budget // len(prompts)`` times, beyond the budget, as DAPO does)."""
        cfg = self.config
        self.model.eval()
        stats = self.store.stats(prompts)
        counts = self.allocator.allocate(stats, cfg.budget, cfg.min_per_prompt, cfg.max_per_prompt)
        groups, batch = self._sample_groups(prompts, counts)
        visited = list(groups)
        allocated = np.array([g.informative for g in groups])
        extra = 0
        if cfg.dynamic_sampling:
            kept = [j for j, g in enumerate(groups) if g.informative]
            groups, batch = [groups[j] for j in kept], [batch[j] for j in kept]
            per = max(cfg.min_per_prompt, cfg.budget // len(prompts))
            for _ in range(cfg.dynamic_rounds if refill is not None else 0):
                if len(groups) >= len(prompts):
                    break
                assert refill is not None  # the loop runs only when a refill was given
                more = list(refill(len(prompts) - len(groups)))
                g2, b2 = self._sample_groups(more, [per] * len(more))
                extra += per * len(more)
                visited += g2
                for g, b in zip(g2, b2, strict=True):
                    if g.informative:
                        groups.append(g)
                        batch.append(b)
        advs = group_advantages(
            [g.rewards for g in groups], scale=cfg.scale_advantages, clip=cfg.adv_clip
        )
        if cfg.novelty_lam > 0:
            for j, (_, _, old_logp, mask) in enumerate(batch):
                mean_lp = ((old_logp * mask).sum(-1) / mask.sum(-1).clamp(min=1)).numpy()
                advs[j] = sharpen_novelty(
                    advs[j], groups[j].rewards, mean_lp, cfg.novelty_lam, cfg.novelty_kappa
                )
        compensation = []
        if self.recomp is not None:
            per_group = [
                Group(g.prompt, self._rows([b], [a]), g.rewards, g.lengths)
                for g, b, a in zip(groups, batch, advs, strict=True)
            ]
            priority, comp = self.recomp.step(per_group)
            rows = [g.rollouts[i] for g, idx in priority for i in idx]
            compensation = [g.rollouts[i] for g, i in comp]
        else:
            rows = self._rows(batch, advs)
        replayed = 0
        if self.replay is not None:
            for g in groups:
                self.replay.observe(g.rewards)
            for item, a in self.replay.sample(cfg.self_imitation, self.step_index):
                prompt, tokens = item.rollout
                ids = torch.tensor([self.encode(prompt)])
                with torch.no_grad():
                    lp = token_logprobs(self.model, ids, tokens[None], cfg.temperature)
                mask = completion_mask(tokens[None], self.eos_id)[0]
                rows.append((ids[0], tokens, lp[0], mask, a))
                replayed += 1
            for g, adv, (prompt, tokens, _, _) in zip(groups, advs, batch, strict=True):
                stored = Group(prompt, [(prompt, t) for t in tokens], g.rewards, g.lengths)
                self.replay.add(stored, adv, self.step_index)
        loss = self._update(rows)
        if compensation:  # RoRecomp: a separate update on older, buffered responses
            self._update(compensation)
        self.store.record(
            Visit.from_group(g.prompt, self.step_index, g.rewards, g.lengths) for g in visited
        )
        self.step_index += 1
        return {
            "step": self.step_index - 1,
            # groups of the allocated prompts whose rewards differ (non-zero GRPO gradient)
            "nonzero_share": float(allocated.mean()),
            # Knapsack RL's effective-gradient ratio: rollouts that sit in an informative group
            "nonzero_rollout_share": float(counts[allocated].sum() / counts.sum()),
            "reward": float(np.mean(np.concatenate([g.rewards for g in visited]))),
            "rollouts": int(counts.sum()) + extra,
            "trained_rows": len(rows),
            "compensation_rows": len(compensation),
            "max_group": int(counts.max()),
            "loss": loss,
            "replayed": replayed,
        }

    def _rows(self, batch, advs):
        rows = []
        for (prompt, tokens, old_logp, mask), a in zip(batch, advs, strict=True):
            ids = torch.tensor(self.encode(prompt))
            for i in range(tokens.shape[0]):
                rows.append((ids, tokens[i], old_logp[i], mask[i], float(a[i])))
        return rows

    def _update(self, rows) -> float:
        """``epochs`` passes over shuffled minibatches of (prompt, tokens, old logp, mask, A)."""
        cfg = self.config
        if cfg.skip_zero_advantage:
            rows = [r for r in rows if r[4] != 0.0]
        if not rows:
            return 0.0
        self.model.train()
        losses = []
        for _ in range(cfg.epochs):
            order = self.rng.permutation(len(rows))
            for chunk in np.array_split(order, min(cfg.minibatches, len(rows))):
                part = [rows[i] for i in chunk]
                width = max(r[1].shape[0] for r in part)
                prompt_ids = torch.stack([r[0] for r in part])
                tokens = torch.stack([_pad(r[1], width, self.eos_id) for r in part])
                old = torch.stack([_pad(r[2], width, 0.0) for r in part])
                mask = torch.stack([_pad(r[3], width, 0.0) for r in part])
                adv = torch.tensor([r[4] for r in part])
                logp = token_logprobs(self.model, prompt_ids, tokens, cfg.temperature)
                loss = policy_loss(
                    logp, old, adv, mask, cfg.eps_low, cfg.eps_high, cfg.loss_mode,
                    cfg.aggregation, cfg.dual_clip,
                )  # fmt: skip
                self.opt.zero_grad()
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.max_grad_norm)
                self.opt.step()
                losses.append(float(loss.detach()))
        self.model.eval()
        return float(np.mean(losses))


def _pad(t: torch.Tensor, width: int, value) -> torch.Tensor:
    return torch.nn.functional.pad(t, (0, width - t.shape[0]), value=value)
