"""The "reset" selector: every exploration starts from the first cell (the reset state).

Exploration without return, the baseline of bench/montezuma.py. It is registered here, not in
stepstone, and runs name this module in their configuration (``--import bench.from_reset``),
so that ``stepstone resume`` of a baseline run directory imports it again from the checkout.
"""

from __future__ import annotations

import numpy as np

from stepstone import selectors
from stepstone.archive import Archive
from stepstone.selectors.base import Selector


@selectors.register("reset")
class FromReset(Selector):
    """Always the first cell: exploration without return."""

    def weights(self, archive: Archive) -> np.ndarray:
        w = np.zeros(len(archive))
        w[0] = 1.0
        return w

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        return np.zeros(n, dtype=np.int64)
