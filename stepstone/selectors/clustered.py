"""Clustered selection: an equal share of explorations for each cluster of look-alike cells.

Under count weights (or any per-cell weight with a flat prior) choices go where the cells
are. On Montezuma's Revenge with downscaled frames the first three rooms hold 65-78% of the
cells after 10M frames and get 64-78% of the choices (bench/README.md, "Knapsack counting new
cells only"), while a room found last holds a handful. Grouping cells into clusters and giving
each cluster the same share moves choices to the places found last without being told what a
place is.

Clusters are learned, not given: leader clustering (Hartigan 1975, "Clustering Algorithms",
ch. 3) in archive order. A cell joins the nearest existing leader whose vector
(selectors/vectors.py) differs from its own in at most ``threshold`` of its entries, or
leads a new cluster. Moving the agent within a room changes a few of a downscaled frame's
pixels; another room changes many. Within a cluster the choice follows Go-Explore's count
weights (selectors/count_based.py). This is our variant, not a published method.

The threshold 0.08 (7 of 11 x 8 pixels) was read off Montezuma archives, where it is tuning:
at 0.05 a room's moving skull or rope splits it into up to 11 clusters and the first rooms
keep ~65% of the choices; at 0.08 clusters number about as many as rooms (17 for 18, 11 for
12, 16 for 16) and the first rooms get ~40%.

``top`` keeps a share of each cluster's choices for its live cells with the cluster's highest
score: where a place was reached with more collected, the frontier of progress is there. Some
places look alike at 11 x 8 pixels (Montezuma's rooms 12, 13 and 6 differ in 2 of 88), so
one cluster holds them all, and the few cells that carry new items through one of them get
a few thousandths of its share. The reference code's nearest published term weighs cells by
their score's rank in the whole archive (uber-research/go-explore, robustified/goexplore_py/
randselectors.py, ``WeightedSelector.get_pos_weight``, "the highest score will get a weight
of 1"); ``top`` ranks within a cluster. Off by default: at 0.5 it doubled room 12's share,
was level or behind at 50M frames and held 22 rooms at 100M on each of three seeds (the
default 21, 21, 22), with rooms 15 and 16 still missing (bench/README.md, "A share for each
cluster's highest scores" and "The score in the cell").

``by_score`` splits each cluster by the score its entries were reached with, so that every
(look-alike frames, score) pair gets an equal share. Collecting more is not always progress:
on Montezuma's Revenge opening a door scores 300 and spends a key, so a cluster's highest
scores may hold one key where the way to rooms 15 and 16 needs two. With ``--score-cells`` a
cell holds one score, so the split follows the run's own notion of a place. Our variant, as
``top``, and off by default: two-key entries got 3-40 times their share under top=0.5, but
of two seeds it was ahead of the default on one and behind on the other, and neither found
rooms 15 or 16 (bench/README.md, "Each score its own share").
"""

from __future__ import annotations

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .count_based import CountBased
from .vectors import vector


class Clustered(CountBased):
    # A cell's weight depends on its cluster's total: shards would each see part of one.
    shardable = False

    def __init__(self, threshold: float = 0.08, top: float = 0.0, by_score: bool = False):
        if not 0 <= threshold < 1:
            raise ConfigError(
                f"the clustered selector's threshold is a share of differing entries in "
                f"[0, 1), not {threshold}"
            )
        if not 0 <= top <= 1:
            raise ConfigError(
                f"the clustered selector's top is the share of a cluster's choices that go to "
                f"its highest-scoring cells, in [0, 1], not {top}"
            )
        if by_score and top:
            raise ConfigError(
                "the clustered selector's top ranks scores within a cluster, and by_score "
                "leaves one score in each: give one of them"
            )
        super().__init__()
        self.threshold = float(threshold)
        self.top = float(top)
        self.by_score = bool(by_score)
        self._cells: list | None = None  # the archive's key list the clusters were made from
        # Leaders by key length: (one row per leader, their cluster indices).
        self._leaders: dict[int, tuple[np.ndarray, list[int]]] = {}
        self._count = 0
        self.cluster = np.zeros(0, dtype=np.int64)  # one cluster index per entry
        # by_score: each entry's (cluster, score) group, the scores it was made from, the groups
        self._group, self._group_score = self.cluster, self.cluster
        self._groups: dict[tuple[int, float], int] = {}

    def clusters(self, archive: Archive) -> np.ndarray:
        """The cluster of each entry; entries added since the last call join or lead one."""
        n = len(archive)
        if archive.cells is not self._cells:  # a new or re-keyed archive: start again
            self._cells, self._leaders, self._count = archive.cells, {}, 0
            self.cluster = np.zeros(0, np.int64)
            self._group, self._group_score, self._groups = self.cluster, self.cluster, {}
        done = len(self.cluster)
        if done < n:
            new = np.empty(n - done, dtype=np.int64)
            for j, cell in enumerate(archive.cells[done:n]):
                new[j] = self._assign(vector(cell))
            self.cluster = np.concatenate([self.cluster, new])
        return self.cluster[:n]

    def _split(self, cluster: np.ndarray, score: np.ndarray) -> np.ndarray:
        """A group for each (cluster, score) pair, looked up only for the entries that are new
        or whose score changed since the last call: np.unique over the archive, at each of the
        ~30 choices a second of one Montezuma worker, cost 3 ms at 21,000 entries."""
        done = len(self._group)
        redo = np.flatnonzero(self._group_score != score[:done])
        if len(score) > done:
            self._group = np.concatenate([self._group, np.zeros(len(score) - done, np.int64)])
            redo = np.concatenate([redo, np.arange(done, len(score))])
        groups = self._groups
        for i in redo.tolist():
            self._group[i] = groups.setdefault((int(cluster[i]), float(score[i])), len(groups))
        self._group_score = score.copy()
        return self._group

    def _assign(self, v: np.ndarray) -> int:
        """The nearest cluster within the threshold (of equally near ones the newest, nearer
        the frontier), or a new one led by ``v``; keys of another length (observations of
        another shape) never share a cluster."""
        leaders, ids = self._leaders.get(len(v), (np.zeros((0, len(v))), []))
        if ids:
            d = np.mean(leaders != v, axis=1)
            j = len(d) - 1 - int(d[::-1].argmin())
            if d[j] <= self.threshold:
                return ids[j]
        self._leaders[len(v)] = (np.vstack([leaders, v]), [*ids, self._count])
        self._count += 1
        return self._count - 1

    def weights(self, archive: Archive) -> np.ndarray:
        cluster = self.clusters(archive)
        # Terminal entries are never chosen: leave them out, so a cluster's share goes to the
        # cells that can be explored from.
        n = len(archive)
        live = np.where(archive.terminal[:n], 0.0, super().weights(archive))
        if self.by_score:
            cluster = self._split(cluster, archive.score[:n])
        share = _within(cluster, live)
        if self.top > 0:
            score = archive.score[:n]
            best = np.full(cluster.max() + 1, -np.inf)
            np.maximum.at(best, cluster[live > 0], score[live > 0])
            top = np.where(score == best[cluster], live, 0.0)
            share = (1 - self.top) * share + self.top * _within(cluster, top)
        return share


def _within(cluster: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Each entry's share of its cluster's total weight (0 in a cluster with none)."""
    total = np.bincount(cluster, weights=w)[cluster]
    return np.divide(w, total, out=np.zeros_like(w), where=total > 0)
