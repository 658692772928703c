"""A language model judges whether a newly reached state should enter the archive (IGE).

Intelligent Go-Explore (Lu, Hu & Clune 2024) keeps a new state only when a foundation model,
shown the archive, finds it interestingly new; this replaces the hand-made cell
representation's notion of "new". ``Judge`` is the engine's ``admit`` hook
(``engine.admit = Judge(...)``): given the entries a result would add, it returns those to
keep. The engine does not import it; the runner (or a user's own loop) passes it in.

Only new cells are judged. Entries that improve a cell already archived follow Go-Explore's
merge rule, and a state that reaches the goal or a better score than the archive's best always
enters: the model filters novelty, it does not veto progress. Verdicts are remembered per
cell for the rest of the process. A reply that is neither yes nor no admits the state and is
counted (``llm_judge_fallbacks``); rejections are counted as ``llm_judge_rejected``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from .prompts import Prompts, numbered, yes_no

FALLBACKS, REJECTED = "llm_judge_fallbacks", "llm_judge_rejected"


class Judge:
    def __init__(self, model: Any, goal: str = "", prompts: Prompts | None = None,
                 context: int = 10, describe: Any = None):  # fmt: skip
        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.context = context
        self.verdicts: dict[Hashable, bool] = {}
        self.text = describe or (lambda cell, snapshot: str(cell))  # see llm/view.py: Describer

    def _archive_text(self, archive: Any) -> str:
        """The best entries, then the most recently improved, up to ``context`` of them."""
        n = len(archive)
        best = np.lexsort((archive.length[:n], -archive.score[:n]))[: self.context // 2]
        recent = np.argsort(-archive.found_frame[:n], kind="stable")
        shown = list(dict.fromkeys([*best.tolist(), *recent.tolist()]))[: self.context]
        texts = []
        for i in sorted(shown):
            snap = int(archive.snap[i])
            texts.append(self.text(archive.cells[i], archive.snapshots.get(snap) if snap else None))
        return numbered(texts)

    def __call__(self, found: list, task: Any, archive: Any) -> list:
        n = len(archive)
        best = float(archive.score[:n].max()) if n else 0.0
        keep, ask = [], []
        for f in found:
            if f.cell in archive or f.success or task.score + f.reward > best:
                keep.append(f)
            elif f.cell in self.verdicts:
                if self.verdicts[f.cell]:
                    keep.append(f)
            else:
                ask.append(f)
        if ask:
            shown = self._archive_text(archive)
            replies = self.model.chat_many(
                [
                    self.prompts.messages(
                        "judge", goal=self.goal, archive=shown, state=self.text(f.cell, f.snapshot)
                    )
                    for f in ask
                ],
                temperature=0,
            )
            for f, reply in zip(ask, replies, strict=True):
                verdict = yes_no(reply)
                if verdict is None:
                    self.model.count(FALLBACKS)
                    verdict = True
                elif not verdict:
                    self.model.count(REJECTED)
                self.verdicts[f.cell] = verdict
                if verdict:
                    keep.append(f)
        return keep
