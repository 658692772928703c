"""What a selector is: given the archive, how many explorations start from each cell.

Most selectors only define ``weights`` (one non-negative number per entry) and inherit
``select``, which samples cells with probability proportional to weight, as Go-Explore does.
A selector that allocates a budget as a whole (knapsack) overrides ``select``.
Terminal entries (game over, episode end) are never selected: nothing follows them.
"""

from __future__ import annotations

import numpy as np

from ..archive import Archive


class Selector:
    name = "base"

    def weights(self, archive: Archive) -> np.ndarray:
        raise NotImplementedError

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        """Indices of ``n`` entries to explore from, drawn with replacement by weight."""
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
