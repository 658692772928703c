"""Novelty selection: return to the cells that are farthest from the rest of the archive.

Novelty search (Lehman & Stanley 2011, "Abandoning Objectives: Evolution through the Search
for Novelty Alone") scores a behaviour by its sparseness, the mean distance to its k nearest
neighbours; Conti et al. 2018 ("Improving Exploration in Evolution Strategies for Deep RL via a
Population of Novelty-Seeking Agents") select what to explore from by the same score. Here a
cell's weight is its mean distance to its k = 10 nearest other cells (SciPy's k-d tree), in the
space of selectors/vectors.py.
"""

from __future__ import annotations

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector
from .vectors import CellVectors


class Novelty(Selector):
    def __init__(self, k: int = 10):
        try:
            from scipy.spatial import cKDTree
        except ImportError:
            raise ConfigError(
                "the novelty selector needs scipy: pip install 'stepstone[novelty]'"
            ) from None
        self._tree_cls = cKDTree
        self.k = k
        self._vectors = CellVectors()

    def weights(self, archive: Archive) -> np.ndarray:
        n = len(archive)
        if n < 2:
            return np.ones(n)
        points = self._vectors(archive.cells)
        k = min(self.k, n - 1)
        dist, _ = self._tree_cls(points).query(points, k=k + 1)  # the first is the cell itself
        return dist.reshape(n, -1)[:, 1:].mean(axis=1) + 1e-6
