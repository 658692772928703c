"""What a selector is: given the archive, how many explorations start from each cell.

Most selectors only define ``weights`` (one non-negative number per entry) and inherit
``select``, which samples cells with probability proportional to weight, as Go-Explore does.
A selector that allocates a budget as a whole (knapsack) overrides ``select``; one that learns
from what explorations did (ige: the actions tried from each cell) overrides ``observe``.
Terminal entries (game over, episode end) are never selected: nothing follows them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np

from ..archive import Archive


class Selector(ABC):
    """Base class of selectors; a subclass is registered by name in ``selectors.REGISTRY``.

    Attributes:
        uses_model: whether the selector asks a language model. The runner then builds it
            with ``model``, ``goal``, ``prompts`` and ``describe`` keywords (selectors/ige.py),
            and the configuration requires ``--llm-model``.
        shardable: whether ``--shards`` may split the archive under it (below).
    """

    uses_model: ClassVar[bool] = False
    # Whether each cell's weight depends on that cell's own counters only, so that archive
    # shards choosing within themselves, picked by their weight totals, choose exactly as one
    # archive would (``--shards``, shards.py). A selector weighing cells against each other
    # (knapsack, novelty, domain levels) or learning from all explorations (rnd, ige) is not.
    shardable: ClassVar[bool] = False

    @abstractmethod
    def weights(self, archive: Archive) -> np.ndarray:
        """How attractive each entry is to explore from.

        Args:
            archive: the archive; its first ``len(archive)`` rows are the entries.

        Returns:
            One non-negative float per entry (zero never selects it). Terminal entries are
            masked out by ``select``, whatever their weight.
        """

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        """Which entries the next ``n`` explorations start from.

        Args:
            archive: the archive, with at least one entry.
            n: explorations to hand out.
            rng: the engine's generator; a selector draws only from it, so a run's seed
                reproduces its choices.

        Returns:
            ``n`` entry indices (int64), drawn with replacement by weight; entries that are
            all terminal are drawn uniformly rather than none at all.
        """
        size = len(archive)
        w = np.where(archive.terminal[:size], 0.0, self.weights(archive))
        total = w.sum()
        if total <= 0:
            w = (~archive.terminal[:size]).astype(np.float64)
            total = w.sum()
            if total <= 0:  # every entry is terminal: nothing left to explore from
                w = np.ones(size)
                total = float(size)
        return rng.choice(size, size=n, p=w / total)

    def observe(self, task: Any, result: Any) -> None:  # noqa: B027 (a hook: empty by default)
        """Told each finished exploration, after the engine merged it; by default ignored.

        Args:
            task: the ``engine.Task`` the exploration ran.
            result: its ``engine.Result`` (the actions taken, the cells found).
        """
