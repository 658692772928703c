"""Budget allocation over cells as a knapsack: spend each batch where discoveries are likeliest.

Knapsack RL (Li et al. 2025, "Knapsack RL: Unlocking Exploration of LLMs via Optimizing
Budget Allocation") allocates a fixed rollout budget across prompts by solving a knapsack whose
items are (prompt, number of rollouts). Applied to cells: an item is k explorations from a
cell, its cost is k times the frames one exploration costs there, and its value is the chance
that at least one of them discovers something (a new cell or a better entry):

    V_c(k) = 1 - (1 - q_c) ** k,    q_c = (discoveries_c + a) / (times_chosen_c + a + b)

q_c is the posterior mean of the cell's discovery rate under a Beta(a, b) prior (a = b = 1:
an unexplored cell is a coin flip). V_c is concave in k, so handing out the batch one
exploration at a time to the largest marginal value per frame, q_c (1 - q_c) ** k / cost_c,
is an exact greedy solution. Only the n cells with the highest q_c / cost_c can receive any of
n explorations (each of them offers a first exploration worth more than any other cell's), so
the greedy runs over those n cells alone, however large the archive.
"""

from __future__ import annotations

import heapq

import numpy as np

from ..archive import Archive
from .base import Selector


class Knapsack(Selector):
    def __init__(self, prior_a: float = 1.0, prior_b: float = 1.0, return_cost_per_step=0.0):
        self.a, self.b = prior_a, prior_b
        # Frames to return, per action of the cell's trajectory: 0 with snapshots, 1 when
        # returning means replaying from the seed.
        self.return_cost_per_step = return_cost_per_step

    def rates(self, archive: Archive) -> np.ndarray:
        n = len(archive)
        return (archive.discoveries[:n] + self.a) / (archive.times_chosen[:n] + self.a + self.b)

    def weights(self, archive: Archive) -> np.ndarray:
        return self.rates(archive)

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        size = len(archive)
        q = np.where(archive.terminal[:size], 0.0, self.rates(archive))
        if not q.any():
            return super().select(archive, n, rng)
        cost = 1.0 + self.return_cost_per_step * archive.length[:size]
        # Random tie-breaking among equal rates (every new cell starts at the prior mean).
        key = q / cost + rng.random(size) * 1e-9
        top = np.argpartition(-key, min(n, size) - 1)[:n] if size > n else np.arange(size)
        heap = [(-q[i] / cost[i], int(i), 0) for i in top if q[i] > 0]
        heapq.heapify(heap)
        picks: list[int] = []
        while len(picks) < n and heap:
            _, i, k = heapq.heappop(heap)
            picks.append(i)
            gain = q[i] * (1 - q[i]) ** (k + 1) / cost[i]
            heapq.heappush(heap, (-gain, i, k + 1))
        return np.array(picks, dtype=np.int64)


class KnapsackNew(Knapsack):
    """Knapsack whose rate counts only the explorations that added a cell.

    Go-Explore's merge rule also replaces an entry reached by a shorter path: on Montezuma with
    downscaled cells 73-79% of the explorations that discover something only do that
    (bench/README.md), which keeps the rate of cells whose surroundings are mapped high.
    """

    def rates(self, archive: Archive) -> np.ndarray:
        n = len(archive)
        return (archive.new_finds[:n] + self.a) / (archive.times_chosen[:n] + self.a + self.b)
