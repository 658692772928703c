"""Count-based selection biased by a language model's guess of which frontier leads to the goal.

Shah et al. 2023, "Navigation with Large Language Models: Semantic Guesswork as a Heuristic
for Planning" (Language Frontier Guide), ask a model to score frontier subgoals by how likely
they lead to the goal, and use the scores as a *heuristic* inside a planner rather than
following the model blindly. Here the frontier is the archive's open cells and the planner is
Go-Explore's count-based selection: a cell's weight is

    w_count(cell) * (1 + beta * score(cell)),    score in [0, 1]

so a cell the model likes is chosen up to (1 + beta) times as often, and the visit counts
still wear it down if exploring from it finds nothing. Each cell is scored once (``per_prompt``
cells per request, requests in parallel); a cell whose score the reply omits counts as 0 and
as a fallback (``llm_score_fallbacks``). The model is passed in; no I/O here.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased

FALLBACKS = "llm_score_fallbacks"


class LFG(Selector):
    name = "lfg"
    uses_model = True

    def __init__(self, model: Any = None, goal: str = "", prompts: Any = None,
                 beta: float = 3.0, per_prompt: int = 8, describe: Any = None):  # fmt: skip
        if model is None:
            raise ConfigError(
                "the lfg selector asks a model: give --llm-url and --llm-model "
                "(or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL)"
            )
        if beta < 0:
            raise ConfigError(f"the lfg weight beta must be >= 0, got {beta}")
        from ..llm.prompts import Prompts

        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.beta = beta
        self.per_prompt = per_prompt
        self.base = CountBased()
        self.scores: dict[Hashable, float] = {}
        self.text = describe or (lambda cell, snapshot: str(cell))  # see selectors/ige.py

    def _score(self, archive: Archive, rows: list[int]) -> None:
        from ..llm.prompts import numbered, scores
        from .ige import snapshot_of

        cells = [archive.cells[i] for i in rows]
        texts = [self.text(archive.cells[i], snapshot_of(archive, i)) for i in rows]
        step = self.per_prompt
        batches = [cells[k : k + step] for k in range(0, len(cells), step)]
        asks = [
            self.prompts.messages("score", goal=self.goal, entries=numbered(texts[k : k + step]))
            for k in range(0, len(cells), step)
        ]
        for batch, reply in zip(batches, self.model.chat_many(asks, temperature=0), strict=True):
            got = scores(reply, len(batch))
            missing = len(batch) - len(got)
            if missing:
                self.model.count(FALLBACKS, missing)
            for k, cell in enumerate(batch):
                self.scores[cell] = got.get(k, 0.0)

    def weights(self, archive: Archive) -> np.ndarray:
        n = len(archive)
        new = [
            i for i, c in enumerate(archive.cells[:n])
            if c not in self.scores and not archive.terminal[i]
        ]  # fmt: skip
        if new:
            self._score(archive, new)
        bias = np.array([self.scores.get(c, 0.0) for c in archive.cells[:n]])
        return self.base.weights(archive) * (1.0 + self.beta * bias)
