"""A language model picks the archive entries to return to (Intelligent Go-Explore).

Lu, Hu & Clune 2024, "Intelligent Go-Explore: Standing on the Shoulders of Giant Foundation
Models", let a foundation model choose which archived state to explore from, in place of
Go-Explore's count-based heuristic. As in their code (game_of_24/run.py:
``IGE.select_new_state``; textworld/run_treasure.py: ``IGE.choose_new_state``) the model is
shown the whole archive: every open entry (its text, score, how often it was explored from
and the actions already tried there, textworld/run_treasure.py: "Have tried actions from this
state"), oldest left out first only when the list outgrows ``chars`` (the prompt says so),
with feedback on what the explorations since its last choice found (IGE: "Did not reach
24."), after the run's last exchanges (``memory``, llm/memory.py, shared with the judge). It
reasons, then answers with up to ``n`` numbers, best first; its picks fill the batch in turn.

A reply without a final answer naming a listed entry falls back to count-based selection,
is counted (``llm_select_fallbacks``) and is not cached (IGE falls back to a random state).
Once the run has stopped (``Halted``) the selector asks nothing and counts nothing. The model
is passed in (any object with ``chat`` and ``count``, llm/model.py), and so is ``describe``
(cell, snapshot) -> text for cells that are not text themselves, with its ``action``
(snapshot, action) -> text when it has one (llm/view.py: Describer): no I/O of its own here.
The loop that runs the engine tells the selector each exploration (``observe``).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased

FALLBACKS = "llm_select_fallbacks"


def describe(archive: Archive, i: int, text=str, tried: list[str] | None = None) -> str:
    return (
        f"{text(archive.cells[i], archive.snapshot(i))} (score {float(archive.score[i]):g}, "
        f"explored from {int(archive.times_chosen[i])} times; tried: "
        f"{', '.join(tried) if tried else 'nothing yet'})"
    )


class IGE(Selector):
    uses_model = True

    def __init__(self, model: Any = None, goal: str = "", prompts: Any = None,
                 describe: Any = None, memory: Any = None, chars: int = 12_000):  # fmt: skip
        if model is None:
            raise ConfigError(
                "the ige selector asks a model: give --llm-url and --llm-model "
                "(or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL)"
            )
        from ..llm.prompts import Prompts

        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.memory = memory
        self.chars = chars  # of the archive's listing in a prompt (about 4 per token)
        # (cell, snapshot) -> text; default: the cell itself (llm/view.py: Describer)
        self.text = describe or (lambda cell, snapshot: str(cell))
        self.action_text = getattr(describe, "action", lambda snapshot, a: str(a))
        self.tried: dict[str, list[str]] = {}  # repr(cell) -> first actions explored from it
        self.base = CountBased()
        self.last: tuple[int, float] | None = None  # archive size and best score at the last ask

    def observe(self, task: Any, result: Any) -> None:
        """Note the action an exploration from ``task.cell`` began with."""
        if len(result.actions):
            text = self.action_text(task.snapshot, result.actions[0].item())
            tried = self.tried.setdefault(repr(task.cell), [])
            if text not in tried:
                tried.append(text)

    def weights(self, archive: Archive) -> np.ndarray:
        return self.base.weights(archive)

    def _feedback(self, archive: Archive) -> str:
        size = len(archive)
        best = float(archive.score[:size].max()) if size else 0.0
        last, self.last = self.last, (size, best)
        if last is None:
            return ""
        return (f"Since your last choice, the explorations found {size - last[0]} new states; "
                f"the best score is {best:g} (it was {last[1]:g}). The goal is not reached "
                "yet.\n\n")  # fmt: skip

    def select(self, archive: Archive, n: int, rng: np.random.Generator) -> np.ndarray:
        from ..llm.errors import Halted
        from ..llm.prompts import RESPONSE_FORMAT, final, indices, listing

        size = len(archive)
        open_ = np.flatnonzero(~archive.terminal[:size])
        if open_.size == 0 or self.model.halted():
            return super().select(archive, n, rng)
        texts = [
            describe(archive, int(i), self.text, self.tried.get(repr(archive.cells[i])))
            for i in open_
        ]
        shown, kept = listing(texts, self.chars)
        listed = open_[kept]
        messages = self.prompts.messages(
            "select",
            memory=self.memory.messages() if self.memory is not None else (),
            goal=self.goal,
            feedback=self._feedback(archive),
            entries=shown,
            n=n,
        )
        try:
            reply = self.model.chat(
                messages,
                lambda r: bool(indices(final(r), len(listed))),
                temperature=0,
                response_format=RESPONSE_FORMAT,
            )
        except Halted:
            return super().select(archive, n, rng)
        if self.memory is not None:
            self.memory.add(messages, reply)
        picked = [int(listed[k]) for k in indices(final(reply), len(listed))]
        if not picked:
            self.model.count(FALLBACKS)
            return super().select(archive, n, rng)
        return np.array([picked[k % len(picked)] for k in range(n)], dtype=np.int64)
