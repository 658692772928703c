"""Count-based selection weights of Go-Explore: prefer cells that were rarely chosen or seen.

For each counter a in (times_chosen, times_chosen_since_new, times_seen) with value v,

    CntScore_a = w_a * (1 / (v + e1)) ** p_a + e2

and a cell's weight is the sum over the counters plus 1 (Ecoffet et al. 2019, "Go-Explore: a
New Approach for Hard-Exploration Problems", appendix A.5 / the reference implementation's
defaults): w = (0.1, 0, 0.3), p = 0.5 for each, e1 = 0.001, e2 = 0.00001.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..archive import Archive
from .base import Selector


@dataclass(frozen=True)
class CountWeights:
    chosen: float = 0.1
    chosen_since_new: float = 0.0
    seen: float = 0.3
    power: float = 0.5
    e1: float = 0.001
    e2: float = 0.00001
    base: float = 1.0  # the "+ 1"


class CountBased(Selector):
    shardable = True  # a cell's weight is its own counters'

    def __init__(self, weights: CountWeights | None = None):
        self.w = weights or CountWeights()

    def weights(self, archive: Archive) -> np.ndarray:
        n = len(archive)
        w = self.w
        total = np.full(n, w.base)
        for weight, counts in (
            (w.chosen, archive.times_chosen[:n]),
            (w.chosen_since_new, archive.times_chosen_since_new[:n]),
            (w.seen, archive.times_seen[:n]),
        ):
            total += weight * (1.0 / (counts + w.e1)) ** w.power + w.e2
        return total
