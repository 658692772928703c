"""The archive filter of Intelligent Go-Explore: a model decides which new states are kept.

Lu, Hu & Clune 2024 (IGE) keep a new state only when a foundation model, shown the archive,
finds it interestingly new; this replaces the hand-made cell representation's notion of
"new". ``Judge`` is the engine's ``admit`` hook (``Engine(..., admit=Judge(...))``): given the
entries a result would add, it returns those to keep. The engine does not import it; the
runner (or a user's own loop) passes it in.

As in IGE's code (game_of_24/run.py: ``IGE.add_to_archive``): the prompt shows the whole
archive (its open states, the oldest left out first when it outgrows ``chars``) and the new
state, and asks for 0 (do not add) or 1 (add) after the model's reasoning; a reply without
that answer rejects the state (IGE's ``except`` branch returns False), is counted
(``llm_judge_fallbacks``) and not remembered, so the state is judged again when found again;
a rejected state is remembered (IGE's ``ban_list``) and counted (``llm_judge_rejected``).
Verdicts are kept in the run directory, so a resumed run does not ask again. With a
``memory`` (llm/memory.py, shared with the ige selector as IGE shares one history), the
verdicts are asked one after another, each after the exchanges before it.

Only new cells are judged. Entries that improve a cell already archived follow Go-Explore's
merge rule, and a state that reaches the goal or a better score than the archive's best always
enters: the model filters novelty, it does not veto progress.
"""

from __future__ import annotations

from typing import Any

from .errors import Halted
from .prompts import RESPONSE_FORMAT, Prompts, final, listing, verdict

FALLBACKS, REJECTED = "llm_judge_fallbacks", "llm_judge_rejected"
ROLE = "judge"


def readable(reply: str) -> bool:
    return verdict(final(reply)) is not None


class Judge:
    def __init__(self, model: Any, goal: str = "", prompts: Prompts | None = None,
                 describe: Any = None, memory: Any = None, chars: int = 12_000):  # fmt: skip
        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.chars = chars  # of the archive's listing in a prompt (about 4 per token)
        self.memory = memory
        self.verdicts: dict[str, float] | None = None  # repr(cell) -> 1 (add) or 0
        self.text = describe or (lambda cell, snapshot: str(cell))  # see llm/view.py: Describer

    def _archive_text(self, archive: Any) -> str:
        rows = [i for i in range(len(archive)) if not archive.terminal[i]]
        texts = [self.text(archive.cells[i], archive.snapshot(i)) for i in rows]
        return listing(texts, self.chars)[0]

    def __call__(self, found: list, task: Any, archive: Any) -> list:
        if self.verdicts is None:
            self.verdicts = self.model.recall(ROLE)
        n = len(archive)
        best = float(archive.score[:n].max()) if n else 0.0
        keep, ask = [], []
        for f in found:
            if f.cell in archive or f.success or task.score + f.reward > best:
                keep.append(f)
            elif repr(f.cell) in self.verdicts:
                if self.verdicts[repr(f.cell)]:
                    keep.append(f)
            else:
                ask.append(f)
        if not ask or self.model.halted():  # a stopped run asks nothing more
            return keep
        shown = self._archive_text(archive)
        try:
            replies = self._ask(ask, shown)
        except Halted:
            return keep
        judged = {}
        for f, reply in zip(ask, replies, strict=True):
            v = verdict(final(reply))
            if v is None:
                self.model.count(FALLBACKS)
                continue
            judged[repr(f.cell)] = float(v)
            if v:
                keep.append(f)
            else:
                self.model.count(REJECTED)
        self.verdicts.update(judged)
        self.model.remember(ROLE, judged)
        return keep

    def _question(self, f: Any, shown: str) -> list[dict]:
        memory = self.memory.messages() if self.memory is not None else ()
        return self.prompts.messages("judge", memory=memory, goal=self.goal, archive=shown,
                                     state=self.text(f.cell, f.snapshot))  # fmt: skip

    def _ask(self, ask: list, shown: str) -> list[str]:
        params = {"temperature": 0, "response_format": RESPONSE_FORMAT}
        if self.memory is None:
            questions = [self._question(f, shown) for f in ask]
            return self.model.chat_many(questions, readable, **params)
        replies = []
        for f in ask:
            messages = self._question(f, shown)
            replies.append(self.model.chat(messages, readable, **params))
            self.memory.add(messages, replies[-1])
        return replies
