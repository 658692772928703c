"""Count-based weights plus the domain-knowledge terms of Go-Explore's position cells.

For cells that are (level, room, objects, x, y) tuples (``--cells ram``), the Go-Explore paper's
domain-knowledge runs (Ecoffet et al. 2019, appendix A.5, and the v1 reference script for
Montezuma's Revenge: horizontal 0.3, vertical 0.1, "high score" 10, lower levels 0.1) add to the
count-based weight of a cell

- 0.3 for each missing horizontal neighbour (x +- 1, same level, room and objects) and 0.1 for
  each missing vertical one: cells on the edge of what is known are the frontier;
- 10 when no cell at the same (level, room, x, y) holds more objects: the agent carrying the
  most keys is the one that can open the next door; and 0.5 when none holds fewer (the
  reference code's default "low score" weight): the agent that kept its keys unused;

and multiply it by 0.1 ** (highest level found - the cell's level), so the search moves on once
a new level is reached. Neighbours are looked up inside the cell's own room, so a neighbour
beyond a room's edge always counts as missing: cells at the exits stay attractive, as in the
reference code, which counts a neighbour off the map as missing too (it also follows exits into
the adjacent room, which needs a per-game room map that this module does without).

Nothing here is Atari-specific: any cell function that returns such tuples can use it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .count_based import CountBased, CountWeights


@dataclass(frozen=True)
class DomainWeights:
    horizontal: float = 0.3
    vertical: float = 0.1
    most_objects: float = 10.0
    fewest_objects: float = 0.5
    lower_level: float = 0.1


class DomainKnowledge(CountBased):
    def __init__(self, domain: DomainWeights | None = None):
        super().__init__()
        self.d = domain or DomainWeights()
        # The domain terms depend only on which cells exist: recompute when the set changes.
        self._cached: tuple[int, int, np.ndarray, np.ndarray] | None = None

    def weights(self, archive: Archive) -> np.ndarray:
        additive, level = self._domain_terms(archive)
        return (super().weights(archive) + additive) * level

    def _domain_terms(self, archive: Archive) -> tuple[np.ndarray, np.ndarray]:
        n = len(archive)
        key = (n, id(archive.cells))
        if self._cached is not None and self._cached[:2] == key:
            return self._cached[2], self._cached[3]
        cells = archive.cells
        for cell in cells[:1]:
            _check_shape(cell)
        arr = np.array(cells, dtype=np.int64).reshape(n, 5)
        levels, objects = arr[:, 0], arr[:, 2]
        held = np.array([bin(int(o)).count("1") for o in objects])
        most: dict[tuple, int] = {}
        fewest: dict[tuple, int] = {}
        for (lv, room, _, x, y), h in zip(arr.tolist(), held.tolist(), strict=True):
            pos = (lv, room, x, y)
            most[pos] = max(most.get(pos, -1), h)
            fewest[pos] = min(fewest.get(pos, h), h)
        index = archive.index
        d = self.d
        additive = np.zeros(n)
        for i, (lv, room, obj, x, y) in enumerate(arr.tolist()):
            missing_h = ((lv, room, obj, x - 1, y) not in index) + (
                (lv, room, obj, x + 1, y) not in index
            )
            missing_v = ((lv, room, obj, x, y - 1) not in index) + (
                (lv, room, obj, x, y + 1) not in index
            )
            additive[i] = d.horizontal * missing_h + d.vertical * missing_v
            if held[i] >= most[(lv, room, x, y)]:
                additive[i] += d.most_objects
            if held[i] <= fewest[(lv, room, x, y)]:
                additive[i] += d.fewest_objects
        level = d.lower_level ** (levels.max() - levels) if n else np.ones(0)
        self._cached = (*key, additive, level)
        return additive, level


class DomainReleased(DomainKnowledge):
    """The weights of the reference code's released Montezuma script (robustified/
    phase1_montezuma.sh): only the times-seen count, 1 / sqrt(seen + 1), with no constant
    (the ``seen`` selector's weight, selectors/seen.py);
    horizontal neighbours 0.1, vertical 0, "most objects" 1, lower levels 0.1. Without the
    constant and the +10, rarely seen cells dominate. That script also resets a cell's counts
    when its entry improves: pair this with --reset-on-update. Together, with 4-pixel x bins,
    they solved level 1 of Montezuma's Revenge within 50M frames on 3 of 3 seeds (2 of 3 with
    the paper's 8-pixel bins), where ``domain`` stalls at 22 rooms (bench/README.md)."""

    def __init__(self):
        super().__init__(DomainWeights(0.1, 0.0, 1.0, 0.0, 0.1))
        self.w = CountWeights(chosen=0.0, seen=1.0, e1=1.0, e2=0.0, base=0.0)


def _check_shape(cell: Hashable) -> None:
    if not (isinstance(cell, tuple) and len(cell) == 5 and all(isinstance(v, int) for v in cell)):
        raise ConfigError(
            f"the domain selector needs (level, room, objects, x, y) cells, got {cell!r}; "
            "use --cells ram, or another selector (count, uniform, knapsack)"
        )
