"""Cells as vectors, for the selectors that measure distances or learn from cells.

Every kind of cell key maps to a float vector: tuples (RAM, MiniGrid, novelty cells) field by
field (a name in a tuple, such as the object carried, as a fixed number), downscaled frames
(bytes) pixel by pixel, rounded observations (see cells/observation.py) by their stored dtype
(a dict observation field by field, text fields left out), and text by a hashed bag of words
(64 buckets; "room: kitchen" lands in fixed places).
"""

from __future__ import annotations

import zlib
from collections.abc import Hashable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ConfigError

TEXT_BUCKETS = 64


def vector(cell: Hashable) -> np.ndarray:
    if isinstance(cell, bytes):
        return np.frombuffer(cell, dtype=np.uint8).astype(np.float64)
    if isinstance(cell, str):
        v = np.zeros(TEXT_BUCKETS)
        for word in cell.lower().split():
            v[zlib.crc32(word.encode()) % TEXT_BUCKETS] += 1.0
        return v
    if isinstance(cell, tuple):
        if len(cell) == 3 and isinstance(cell[0], str) and isinstance(cell[2], bytes):
            dtype, _, raw = cell  # an observation frozen by cells/observation.py
            return np.frombuffer(raw, dtype=np.dtype(dtype)).astype(np.float64).ravel()
        if cell and all(
            isinstance(f, tuple) and len(f) == 2 and isinstance(f[0], str) for f in cell
        ):
            # a frozen dict observation: its fields side by side, text fields left out
            parts = [vector(v) for _, v in cell if not isinstance(v, str)]
            return np.concatenate(parts) if parts else np.zeros(1)
        try:
            return np.array(list(_numbers(cell)), dtype=np.float64)
        except TypeError:
            pass
    raise ConfigError(
        f"this selector needs cells that are numbers, frames or text, not {type(cell).__name__}"
        " keys; use the count, uniform or knapsack selector"
    )


def _numbers(fields: tuple) -> Iterator[float]:
    """A tuple's fields as numbers, nested tuples flattened: a name (the colour of a carried
    key) as a fixed value in [0, 1) and None as -1, so equal fields are at distance 0."""
    for v in fields:
        if isinstance(v, tuple):
            yield from _numbers(v)
        elif v is None:
            yield -1.0
        elif isinstance(v, str):
            yield (zlib.crc32(v.encode()) % 1000) / 1000
        elif isinstance(v, (int, float, np.number)):
            yield float(v)
        elif isinstance(v, bytes):  # a downscaled frame with a score (--score-cells)
            yield from np.frombuffer(v, dtype=np.uint8).astype(np.float64)
        else:
            raise TypeError(type(v).__name__)


def vectors(cells: Sequence[Hashable]) -> np.ndarray:
    """One row per cell; cells of unequal length are zero-padded to the longest."""
    rows = [vector(c) for c in cells]
    width = max((len(r) for r in rows), default=0)
    out = np.zeros((len(rows), width))
    for i, r in enumerate(rows):
        out[i, : len(r)] = r
    return out


class CellVectors:
    """``vectors`` of an archive's cells, each made once: a selector that reads every cell at
    every choice (rnd, rdd, novelty; ~30 choices a second on one Montezuma worker) spent half
    its time remaking them (23 of 45 ms a call for rdd at 6,335 cells). Rows are appended as
    the archive grows; a re-keyed archive (a new cell list) starts again."""

    def __init__(self) -> None:
        self._cells: Any = None
        self._rows = np.zeros((0, 0))
        self._n = 0

    def __call__(self, cells: Sequence[Hashable]) -> np.ndarray:
        if cells is not self._cells:
            self._cells, self._rows, self._n = cells, np.zeros((0, 0)), 0
        n = len(cells)
        if n > self._n:
            new = vectors(cells[self._n : n])
            width = max(new.shape[1], self._rows.shape[1])
            if n > len(self._rows) or width > self._rows.shape[1]:
                grown = np.zeros((max(n, 2 * len(self._rows)), width))
                grown[: self._n, : self._rows.shape[1]] = self._rows[: self._n]
                self._rows = grown
            self._rows[self._n : n, : new.shape[1]] = new
            self._n = n
        return self._rows[:n]
