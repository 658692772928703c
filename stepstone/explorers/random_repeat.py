"""Random actions that repeat the previous one with high probability (Go-Explore Phase 1).

"Explore ... by taking random actions ..., with a 95% probability of repeating the previous
action" (Ecoffet et al. 2019, sec. 2.1): repeats give the long straight moves random play needs.
The actions do not depend on what happens, so all of them are drawn in one vectorised call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from .base import Explorer

if TYPE_CHECKING:
    from ..config import ExploreConfig


def draw(space: gym.Space, rng: np.random.Generator, n: int) -> Any:
    """``n`` uniformly random actions of ``space``, reproducible from ``rng``."""
    if isinstance(space, gym.spaces.Discrete):
        return rng.integers(space.n, size=n) + int(space.start)
    if isinstance(space, gym.spaces.Box):
        low = np.where(np.isfinite(space.low), space.low, -1.0)
        high = np.where(np.isfinite(space.high), space.high, 1.0)
        return rng.uniform(low, high, size=(n, *space.shape)).astype(space.dtype)
    space.seed(int(rng.integers(2**31)))
    return [space.sample() for _ in range(n)]


class RandomRepeat(Explorer):
    def __init__(self, repeat_prob: float = 0.95):
        self.repeat_prob = repeat_prob

    @classmethod
    def from_config(cls, config: ExploreConfig, llm: Any = None) -> RandomRepeat:
        return cls(config.repeat_prob)

    def actions(self, env: Any, rng: np.random.Generator, steps: int) -> Any:
        fresh = draw(env.action_space, rng, steps)
        change = rng.random(steps) >= self.repeat_prob
        change[0] = True
        source = np.maximum.accumulate(np.where(change, np.arange(steps), 0))
        if isinstance(fresh, list):
            return [fresh[i] for i in source]
        return fresh[source]
