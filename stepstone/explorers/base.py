"""What an explorer is: the actions taken after returning to a cell.

``actions(env, rng, steps)`` yields at most ``steps`` actions; the worker steps the environment
between yields, so a closed-loop explorer (a policy, a language model) may look at ``env``
before choosing, while an open-loop one (random) can draw all its actions up front.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ..config import ExploreConfig


class Explorer(ABC):
    """Base class of explorers; a subclass is registered by name in ``explorers.REGISTRY``.

    One explorer lives in each worker, beside its environment and cell function.
    """

    @classmethod
    def from_config(cls, config: ExploreConfig, llm: Any = None) -> Explorer:
        """The explorer of a run, built in the process that explores.

        Args:
            config: the run's configuration (``repeat_prob``, ``llm_actions``...).
            llm: ``llm.client.Settings`` saying where the run's model is, for explorers that
                ask one (None when the run has no model).

        Returns:
            The explorer; by default ``cls()``.
        """
        return cls()

    @abstractmethod
    def actions(self, env: Any, rng: np.random.Generator, steps: int) -> Iterable[Any]:
        """The actions of one exploration.

        Args:
            env: the adapter, at the state returned to; it is stepped with each action
                before the next is drawn.
            rng: seeded by the task, so an exploration replays exactly.
            steps: the most actions to give.

        Returns:
            Up to ``steps`` actions of ``env.action_space`` (fewer ends the exploration).
        """

    def close(self) -> None:  # noqa: B027 (a hook: nothing to release by default)
        """Release what the explorer holds (a model client); called when its worker closes."""
