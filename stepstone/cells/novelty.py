"""Novelty cells: a state is a new cell when it is far from every cell in the archive.

Novelty search (Lehman & Stanley 2011, "Abandoning Objectives: Evolution through the Search for
Novelty Alone") keeps a behaviour in its archive when its sparseness, the mean distance to its
k nearest archived neighbours in descriptor space, exceeds a threshold; the threshold moves so
that the archive keeps growing at a steady rate (they raise it by 20% when too many are added,
lower it by 5% when none are). Here a state's descriptor is ``env.descriptor()`` where the
adapter defines one (MuJoCo: the body's position) and else the observation as a float vector.

The work is split between the two sides of the engine:

* ``NoveltyCells`` (in each worker) names a state by its descriptor rounded to ``resolution``:
  fine enough that the worker reports every state worth judging, once per exploration;
* ``NoveltyRule`` (in the driver, which alone sees the archive) maps each reported key either to
  itself, when its sparseness exceeds the threshold (a new cell) or it reaches the goal, or to
  its nearest archived cell, which it then competes for by the usual merge rule; the start's
  cell keeps the reset state (``NoveltyRule.key_for`` says why).

Nearest neighbours come from SciPy's k-d tree, rebuilt when the archive has grown by a quarter
since the last build; the cells added since then are checked directly.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from ..errors import ConfigError
from .base import DriverDecidedCells


def descriptor(env: Any) -> np.ndarray:
    fn = getattr(env, "descriptor", None)
    value = fn() if fn is not None else env.observe()
    try:
        return np.asarray(value, dtype=np.float64).ravel()
    except (TypeError, ValueError):
        raise ConfigError(
            "novelty cells need a numeric descriptor: an observation that is a vector of "
            "numbers, or an environment with a descriptor() method"
        ) from None


class NoveltyCells(DriverDecidedCells):
    def __init__(
        self,
        resolution: float = 0.01,
        threshold: float = 0.1,
        k: int = 5,
        target: float = 5.0,
    ):
        if resolution <= 0 or threshold <= 0 or k < 1 or target <= 0:
            raise ConfigError(
                "novelty cells need resolution > 0, threshold > 0, k >= 1 and target > 0"
            )
        self.resolution, self.threshold, self.k, self.target = resolution, threshold, k, target
        try:
            import scipy.spatial  # noqa: F401  (the driver's nearest-neighbour search)
        except ImportError:
            raise ConfigError(
                "novelty cells need scipy: pip install 'stepstone[novelty]'"
            ) from None

    def __call__(self, env: Any) -> Hashable:
        d = np.round(descriptor(env) / self.resolution) * self.resolution
        return tuple(float(x) + 0.0 for x in d)  # + 0.0 folds -0.0 into 0.0

    @staticmethod
    def state_key(source: bytes) -> Hashable:
        """A stored state's own key (kept as the entry's source; see replay.check)."""
        return tuple(float(x) for x in source.decode().split(","))

    def rule(self, saved: dict | None = None) -> NoveltyRule:
        threshold = saved["threshold"] if saved else self.threshold
        return NoveltyRule(threshold, self.k, self.target)


class NoveltyRule:
    """Decides, in the driver, whether a reported state is a new cell or joins its nearest."""

    def __init__(self, threshold: float, k: int, target: float):
        self.threshold, self.k, self.target = threshold, k, target
        self._tree: Any = None
        self._tree_keys: list[Hashable] = []
        self._recent: list[Hashable] = []

    def sparseness(self, points: np.ndarray) -> tuple[np.ndarray, list[Hashable]]:
        """Mean distance to the k nearest archived cells, and the nearest cell, per point."""
        keys = self._tree_keys + self._recent
        k = min(self.k, len(keys))
        dist = np.full((len(points), 0), np.inf)
        idx = np.zeros((len(points), 0), dtype=np.int64)
        if self._tree is not None:
            d, i = self._tree.query(points, k=min(k, len(self._tree_keys)))
            dist, idx = d.reshape(len(points), -1), i.reshape(len(points), -1)
        if self._recent:
            recent = np.array(self._recent, dtype=np.float64)
            d = np.linalg.norm(points[:, None, :] - recent[None, :, :], axis=2)
            dist = np.concatenate([dist, d], axis=1)
            ids = np.arange(len(recent)) + len(self._tree_keys)
            idx = np.concatenate([idx, np.broadcast_to(ids, d.shape)], axis=1)
        order = np.argsort(dist, axis=1)[:, :k]
        near = np.take_along_axis(dist, order, axis=1)
        nearest = [keys[j] for j in np.take_along_axis(idx, order[:, :1], axis=1)[:, 0]]
        return near.mean(axis=1), nearest

    @staticmethod
    def source(cell: Hashable) -> bytes:
        return ",".join(repr(x) for x in cell).encode()  # type: ignore[attr-defined]

    def key_for(self, cell: Hashable, archive: Any, goal: bool = False) -> Hashable | None:
        """``cell`` itself if it is a cell already, novel enough or a goal reached; else its
        nearest cell, whose entry it competes for. None (not archived) where the cell would
        be the start's: only a goal takes that entry.

        A cell spans the whole threshold around its key, and there the better score can be
        the worse state: on Hopper, whose alive bonus makes the longest-standing state the
        best, the start's entry became a state one step before a fall, and with the other
        entries as doomed, every exploration ended at once (2 cells after 50k frames). The
        start keeps the reset state, from which exploring can always begin afresh."""
        self._sync(archive.cells)
        if not (self._tree_keys or self._recent):
            return cell
        start = archive.cells[0]  # the reset state's cell, the archive's first
        if cell in archive.index:
            return None if cell == start and not goal else cell
        sparse, nearest = self.sparseness(np.array([cell], dtype=np.float64))
        if goal or sparse[0] > self.threshold:
            self._recent.append(cell)
            return cell
        return None if nearest[0] == start else nearest[0]

    def nearest(self, cells: list[Hashable], archive: Any) -> list[Hashable]:
        self._sync(archive.cells)
        if not cells or not (self._tree_keys or self._recent):
            return cells
        return self.sparseness(np.array(cells, dtype=np.float64))[1]

    def _sync(self, archive_cells: list[Hashable]) -> None:
        """Rebuild the tree when the archive outgrew it by a quarter (and at the start)."""
        from scipy.spatial import cKDTree

        if len(archive_cells) >= 1.25 * len(self._tree_keys) + 1:
            self._tree_keys = list(archive_cells)
            self._tree = cKDTree(np.array(self._tree_keys, dtype=np.float64))
            self._recent = []

    def adapt(self, new_cells: int, archive: Any = None) -> None:
        """Lehman & Stanley's schedule, around ``target`` new cells per iteration."""
        if new_cells > 2 * self.target:
            self.threshold *= 1.2
        elif new_cells == 0:
            self.threshold *= 0.95

    def state(self) -> dict:
        return {"threshold": self.threshold}

    def metrics(self) -> dict:
        return {"novelty_threshold": self.threshold}
