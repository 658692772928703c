"""Which rollouts make up a training batch: three recipes from the RLVR literature.

- ``dynamic_sampling``: DAPO (Yu et al. 2025): drop groups whose rewards are all the same (their
  advantages, hence gradients, are zero) and sample more groups until the batch is full.
- ``RoRecomp``: Rollout Response Recomposition (Li et al. 2025, "RoRecomp: Enhancing Reasoning
  Efficiency via Rollout Response Recomposition in Reinforcement Learning"): a *priority batch*
  of short correct and long incorrect responses (a clear signal for brevity), the remaining
  responses into a buffer that becomes *compensation batches* (stability).
- ``SelfImitationBuffer``: SPEAR (Qin et al. 2025): keep good past rollouts and replay them with
  recalibrated advantages, dropping those no longer better than what the policy does now.

These work on ``Group`` records (prompt, rollouts, rewards, lengths) and know nothing about
models. Not here: the allocation of rollouts (allocate.py) or the loss (losses.py).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import ConfigError
from .advantages import recalibrate
from .errors import EmptyGroupError
from .state import check_rewards


@dataclass
class Group:
    """The rollouts of one prompt in one step. ``rollouts`` are opaque (token ids, text...)."""

    prompt: str
    rollouts: list[Any]
    rewards: np.ndarray
    lengths: np.ndarray = field(default=None)  # type: ignore[arg-type]

    def __post_init__(self):
        self.rewards = check_rewards(self.rewards, where=f"rewards of prompt {self.prompt!r}")
        if len(self.rollouts) != len(self.rewards):
            raise EmptyGroupError(
                f"prompt {self.prompt!r} has {len(self.rollouts)} rollouts but "
                f"{len(self.rewards)} rewards; give exactly one reward per rollout"
            )
        if self.lengths is None:
            self.lengths = np.array([len(r) for r in self.rollouts])
        self.lengths = np.asarray(self.lengths)

    @property
    def informative(self) -> bool:
        """Rewards differ, so GRPO advantages are non-zero."""
        return bool(np.ptp(self.rewards) > 0)


def dynamic_sampling(
    sample: Callable[[int], Sequence[Group]],
    target_groups: int,
    max_rounds: int = 8,
) -> tuple[list[Group], dict[str, int]]:
    """DAPO dynamic sampling: call ``sample(k)`` for k more groups, keep the informative ones.

    Stops at ``target_groups`` kept or after ``max_rounds`` calls (then the batch is smaller;
    the count is returned so the caller can log it). Returns (groups, {"rounds", "sampled",
    "dropped"}).
    """
    if target_groups < 1:
        raise ConfigError(f"target_groups={target_groups}; ask for at least one group")
    kept: list[Group] = []
    sampled = rounds = 0
    while len(kept) < target_groups and rounds < max_rounds:
        batch = list(sample(target_groups - len(kept)))
        rounds += 1
        sampled += len(batch)
        kept.extend(g for g in batch if g.informative)
    kept = kept[:target_groups]
    return kept, {"rounds": rounds, "sampled": sampled, "dropped": sampled - len(kept)}


@dataclass
class RoRecomp:
    """Split each step's responses into a priority batch and a compensation buffer.

    Per group, the ``priority_fraction`` shortest correct responses and the same fraction of the
    longest incorrect ones (at least one of each kind that exists) go to the priority batch;
    the rest wait in a FIFO buffer. Every ``compensation_every`` steps, if the buffer holds
    ``compensation_size`` responses, they form a compensation batch.
    """

    priority_fraction: float = 0.5
    compensation_size: int = 64
    compensation_every: int = 4
    threshold: float = 0.5
    buffer: deque = field(default_factory=deque)
    steps: int = 0

    def __post_init__(self):
        if not 0 < self.priority_fraction <= 1:
            raise ConfigError(
                f"priority_fraction={self.priority_fraction} must be in (0, 1]; e.g. 0.5"
            )

    def split(self, group: Group) -> tuple[np.ndarray, np.ndarray]:
        """Indices of ``group`` in the priority batch, and of the rest (to the buffer)."""
        correct = np.flatnonzero(group.rewards > self.threshold)
        wrong = np.flatnonzero(group.rewards <= self.threshold)
        take_c = max(1, int(round(self.priority_fraction * len(correct)))) if len(correct) else 0
        take_w = max(1, int(round(self.priority_fraction * len(wrong)))) if len(wrong) else 0
        short_correct = correct[np.argsort(group.lengths[correct], kind="stable")[:take_c]]
        long_wrong = wrong[np.argsort(-group.lengths[wrong], kind="stable")[:take_w]]
        priority = np.sort(np.concatenate([short_correct, long_wrong]))
        rest = np.setdiff1d(np.arange(len(group.rewards)), priority)
        return priority, rest

    def step(self, groups: Sequence[Group]) -> tuple[list[tuple[Group, np.ndarray]], list]:
        """One step: the priority batch as (group, indices) pairs, and a compensation batch
        (list of (group, index) pairs, empty unless one is due and the buffer is full enough)."""
        self.steps += 1
        priority = []
        for g in groups:
            keep, rest = self.split(g)
            priority.append((g, keep))
            self.buffer.extend((g, int(i)) for i in rest)
        compensation = []
        if self.steps % self.compensation_every == 0 and len(self.buffer) >= self.compensation_size:
            compensation = [self.buffer.popleft() for _ in range(self.compensation_size)]
        return priority, compensation


@dataclass
class Replay:
    """One stored rollout: its prompt, the rollout itself, reward, and the step it was made."""

    prompt: str
    rollout: Any
    reward: float
    step: int


@dataclass
class SelfImitationBuffer:
    """SPEAR self-imitation replay, with the defaults of the authors' code.

    ``add`` keeps rollouts with a positive advantage in their own group (the "wins"), up to
    ``capacity`` (2048, their ``trajectory_buffer_size``; oldest out first). ``observe`` records
    each fresh group's reward mean and population std, keeping the last ``window`` groups
    (10240, their ``baseline_buffer_size``). ``sample`` recalibrates every stored reward with
    ``advantages.recalibrate`` against the medians of those, drops entries whose advantage is
    now negative (their ``prepare_for_selection`` keeps ``>= 0``) or that are more than
    ``max_age`` steps old (10, their ``tolerate_steps`` cap), and returns up to ``k`` of the
    rest with their recalibrated advantages (largest first). ``scale=False`` is their
    ``norm_adv_by_std_in_grpo=False`` (the Dr.BoT recipe).
    """

    capacity: int = 2048
    window: int = 10240
    max_age: int = 10
    scale: bool = True
    items: deque = field(default_factory=deque)
    means: deque = field(default_factory=deque)
    stds: deque = field(default_factory=deque)

    def observe(self, rewards: Sequence[float] | np.ndarray) -> None:
        """Record one fresh group's rewards (its mean and population std)."""
        r = check_rewards(rewards, where="observed rewards")
        self.means.append(float(r.mean()))
        self.stds.append(float(r.std()))
        while len(self.means) > self.window:
            self.means.popleft()
            self.stds.popleft()

    def add(self, group: Group, advantages: Sequence[float] | np.ndarray, step: int) -> int:
        """Store the group's rollouts with positive advantage; returns how many were stored."""
        added = 0
        for i, a in enumerate(advantages):
            if a > 0:
                self.items.append(Replay(group.prompt, group.rollouts[i], group.rewards[i], step))
                added += 1
        while len(self.items) > self.capacity:
            self.items.popleft()
        return added

    def sample(self, k: int, step: int) -> list[tuple[Replay, float]]:
        if not self.items or not self.means:
            return []
        fresh = [it for it in self.items if step - it.step <= self.max_age]
        if not fresh:
            self.items.clear()
            return []
        adv = recalibrate(
            [it.reward for it in fresh], list(self.means), list(self.stds), self.scale
        )
        kept = [(it, float(a)) for it, a in zip(fresh, adv, strict=True) if a >= 0]
        self.items = deque(it for it, _ in kept)
        return sorted(kept, key=lambda x: -x[1])[:k]
