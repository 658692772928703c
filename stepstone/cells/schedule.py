"""When adaptive cells are re-chosen, from which states, and the record of each choice.

Runs in the driver (runner.Iterations): results bring a few sampled states (``source`` bytes);
the schedule keeps the most recent distinct ones, and when the cells say it is ``due`` (or the
archive has grown ``growth`` times since the last choice) and the sample is big enough, it
asks the cells to ``choose`` a shape from the sample and re-keys the archive
(Engine.rekey: the best entry per new cell is kept, counters add up, or stay the best
entry's under reset-on-update; the others are kept aside for the next choice). As in the
reference code (uber-research/go-explore, robustified/goexplore_py/goexplore.py: ``RotatingSet``,
``maybe_split_dynamic_state``), the sample is a rotating set of recent states and is emptied
after each choice, so every choice is judged on states found under the previous one.

Everything the next choice depends on (the sample, the record) is stored with each commit, so
a resumed run chooses what the uninterrupted run chose: the record in the run's meta table,
the sample a row a state, each written once (RunStore's ``cell_sample``). Dynamic
downscaling's 10,000 frames a sample are not stored: its DynamicSchedule (cells/dynamic.py)
samples afresh after a resume.
"""

from __future__ import annotations

from collections import deque
from collections.abc import MutableMapping
from typing import Any

import numpy as np

from .base import AdaptiveCells


class RecentSample:
    """The last ``capacity`` distinct sources, oldest dropped first (the reference's
    ``RotatingSet``).

    ``stored``: where the sample is kept between sessions (the run directory's ``cell_sample``
    table, RunStore), read at the start in the order the sources came; each source is written
    to it once, as it enters, and deleted as it leaves. None: kept in memory only.
    """

    def __init__(
        self,
        capacity: int,
        items: list[bytes] | None = None,
        stored: MutableMapping[int, bytes] | None = None,
    ):
        self.items: deque[bytes] = deque()
        self.capacity = capacity
        self._ids: deque[int] = deque()
        self._set: set[bytes] = set()
        self.stored = stored
        self.next_id = 0
        for i in sorted(stored or ()):
            self._add(stored[i], i, write=False)  # type: ignore[index]
        self.extend(items or [])

    def _add(self, source: bytes, key: int, write: bool = True) -> None:
        if source in self._set:
            return
        if len(self.items) == self.capacity:
            self._set.discard(self.items.popleft())
            gone = self._ids.popleft()
            if self.stored is not None:
                del self.stored[gone]
        self.items.append(source)
        self._ids.append(key)
        self._set.add(source)
        self.next_id = key + 1
        if write and self.stored is not None:
            self.stored[key] = source

    def extend(self, sources: list[bytes]) -> None:
        for s in sources:
            self._add(s, self.next_id)

    def clear(self) -> None:
        if self.stored is not None:
            for i in self._ids:
                del self.stored[i]
        self.items.clear()
        self._ids.clear()
        self._set.clear()

    def __len__(self) -> int:
        return len(self.items)


class Schedule:
    """Re-chooses an ``AdaptiveCells``' shape during a run and keeps the record of choices.

    Args:
        cells: the run's adaptive cells (their ``due``, ``choose``, ``decode``).
        engine: the engine, built with a ``cell_shape``.
        saved: what ``extra()`` returned at the last commit (a resumed run), else None.
        stored: the table the sample is kept in (``RecentSample``), else None.
    """

    def __init__(
        self,
        cells: AdaptiveCells,
        engine: Any,
        saved: dict | None = None,
        stored: MutableMapping[int, bytes] | None = None,
    ):
        self.cells = cells
        self.engine = engine
        assert engine.cell_shape is not None  # the runner builds the engine with one
        cells.set_shape(engine.cell_shape)
        saved = saved or {}
        self.last_update: int | None = saved.get("cell_update_frame")
        self.choices: list[dict] = list(saved.get("cell_choices") or [])
        self.recent = RecentSample(cells.max_samples, stored=stored)

    def due(self) -> bool:
        """The cells say so, or the archive grew ``growth`` times, and the sample is big
        enough: ``min_samples`` for the first choice, full (``max_samples``) for the later ones,
        so that every re-choice aims at the same number of cells (the target is
        ``split_factor`` times the sample's size)."""
        e, cells = self.engine, self.cells
        needed = cells.max_samples if self.choices else getattr(cells, "min_samples", 2)
        if len(self.recent) < needed:
            return False
        if cells.due(e.frames, self.last_update, len(e.archive)):
            return True
        growth = getattr(cells, "growth", None)
        return bool(
            self.choices and growth and len(e.archive) >= growth * self.choices[-1]["cells"]
        )

    def maybe_update(self) -> bool:
        """Re-choose now if due; True when a choice was made (the shape may be the same)."""
        if not self.due():
            return False
        self.update()
        return True

    def update(self) -> None:
        """Choose a shape from the sample now, re-key the archive and empty the sample."""
        e = self.engine
        rng = np.random.default_rng([e.frames, len(e.archive)])
        before = len(e.archive)
        shape = tuple(int(v) for v in self.cells.choose(
            [self.cells.decode(s) for s in self.recent.items], rng))  # fmt: skip
        self.cells.set_shape(shape)
        e.rekey(shape, self.cells.key_from_source)
        self.choices.append({
            "frames": e.frames, "shape": list(shape), "text": self.cells.shape_text(shape),
            "samples": len(self.recent),
            "cells_before": before, "cells": len(e.archive), "aside": len(e.archive.retired),
        })  # fmt: skip
        self.last_update = e.frames
        self.recent.clear()

    def describe(self) -> str:
        c = self.choices[-1]
        aside = f", {c['aside']:,} entries kept aside" if c.get("aside") else ""
        return (f"{c.get('text') or tuple(c['shape'])} from {c['samples']:,} sampled states at "
                f"{c['frames']:,} frames; archive {c['cells_before']:,} -> {c['cells']:,} "
                f"cells{aside}")  # fmt: skip

    def extra(self) -> dict:
        """What the run directory keeps of the schedule with each commit (the sample is
        written as it changes, to the table given as ``stored``)."""
        return {"cell_update_frame": self.last_update, "cell_choices": self.choices}

    @classmethod
    def load(cls, cells: AdaptiveCells, engine: Any, store: Any) -> Schedule:
        """The schedule of a run directory (``store``: a RunStore) as its last commit left it."""
        keys = ("cell_update_frame", "cell_choices")
        return cls(cells, engine, {k: store.extra(k) for k in keys}, store.cell_sample)
