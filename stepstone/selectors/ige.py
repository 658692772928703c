"""A language model picks the archive entries to return to (Intelligent Go-Explore).

Lu, Hu & Clune 2024, "Intelligent Go-Explore: Standing on the Shoulders of Giant Foundation
Models", let a foundation model choose which archived state to explore from, in place of
Go-Explore's count-based heuristic. Here the model sees a numbered list of candidate cells
(their text, score and how often they were explored from) and answers with up to ``n``
numbers, best first; its picks fill the batch in turn.

For large archives the list is a sample of ``candidates`` entries drawn by count-based weight
(so the prompt stays short and rarely tried cells keep showing up). A reply that names no
listed entry falls back to count-based selection and is counted (``llm_select_fallbacks``).
The model is passed in (any object with ``chat`` and ``count``, llm/client.py), and so is
``describe`` (cell, snapshot) -> text for cells that are not text themselves: this module does
no I/O of its own.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased

FALLBACKS = "llm_select_fallbacks"


def snapshot_of(archive: Archive, i: int) -> bytes | None:
    snap = int(archive.snap[i])
    return archive.snapshots.get(snap) if snap else None


def describe(archive: Archive, i: int, text=str) -> str:
    return (
        f"{text(archive.cells[i], snapshot_of(archive, i))} (score {float(archive.score[i]):g}, "
        f"explored from {int(archive.times_chosen[i])} times)"
    )


class IGE(Selector):
    name = "ige"
    uses_model = True

    def __init__(self, model: Any = None, goal: str = "", prompts: Any = None,
                 candidates: int = 12, describe: Any = None):  # fmt: skip
        if model is None:
            raise ConfigError(
                "the ige selector asks a model: give --llm-url and --llm-model "
                "(or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL)"
            )
        from ..llm.prompts import Prompts

        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.candidates = candidates
        # (cell, snapshot) -> text; default: the cell itself (llm/view.py: Describer)
        self.text = describe or (lambda cell, snapshot: str(cell))
        self.base = CountBased()
        self.fallbacks = 0

    def weights(self, archive: Archive) -> np.ndarray:
        return self.base.weights(archive)

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        from ..llm.prompts import choices, numbered

        size = len(archive)
        open_ = np.flatnonzero(~archive.terminal[:size])
        if open_.size == 0:
            return super().select(archive, n, rng)
        if open_.size <= self.candidates:
            listed = open_
        else:
            w = self.weights(archive)[open_]
            listed = np.sort(rng.choice(open_, self.candidates, replace=False, p=w / w.sum()))
        reply = self.model.chat(
            self.prompts.messages(
                "select",
                goal=self.goal,
                entries=numbered([describe(archive, int(i), self.text) for i in listed]),
                n=n,
            ),
            temperature=0,
        )
        picked = [int(listed[k]) for k in choices(reply, len(listed))]
        if not picked:
            self.fallbacks += 1
            self.model.count(FALLBACKS)
            return super().select(archive, n, rng)
        return np.array([picked[k % len(picked)] for k in range(n)], dtype=np.int64)
