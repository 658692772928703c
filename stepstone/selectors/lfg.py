"""Count-based selection biased by a language model's guesses of which frontier states lead to
the goal, and which do not (Language Frontier Guide).

Shah et al. 2023, "Navigation with Large Language Models: Semantic Guesswork as a Heuristic
for Planning" (arXiv 2310.10103). Section 4: the model is *polled*: asked ``samples`` times
(sampled, with reasoning before its answer) which of a list of frontier subgoals is the most
likely to lead to the goal, and as many times, with a negative prompt, which is the least
likely; the share of votes each subgoal gets estimates the two likelihoods, ``p+`` and ``p-``.
Section 5: the scores are a *heuristic* inside a planner (frontier-based exploration), not
orders to follow: positive scores pull the search toward a frontier, negative ones push it
away. Here the frontier is the archive's open cells, listed ``per_prompt`` at a time, and the
planner is Go-Explore's count-based selection; a cell's weight is

    w_count(cell) * (1 + beta * p+(cell)) / (1 + beta * p-(cell))

(the paper adds its weighted scores to a distance cost; a weight is a product, so here they
multiply and divide it), so a cell the model favours every time is chosen up to ``1 + beta``
times as often and one it always rejects ``1 + beta`` times less, and the visit counts still
wear a favoured cell down if exploring from it finds nothing. Each cell is scored once; the
scores are kept in the run directory, so a resumed run does not ask again. A sample whose
reply names no listed state casts no vote, is counted (``llm_score_fallbacks``) and is not
cached. The model is passed in; no I/O here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector
from .count_based import CountBased

FALLBACKS = "llm_score_fallbacks"
ROLES = {"score": "lfg_positive", "score_negative": "lfg_negative"}  # prompt -> stored scores


class LFG(Selector):
    uses_model = True

    def __init__(self, model: Any = None, goal: str = "", prompts: Any = None,
                 beta: float = 3.0, per_prompt: int = 8, samples: int = 5,
                 temperature: float = 0.7, describe: Any = None):  # fmt: skip
        if model is None:
            raise ConfigError(
                "the lfg selector asks a model: give --llm-url and --llm-model "
                "(or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL)"
            )
        if beta < 0:
            raise ConfigError(f"the lfg weight beta must be >= 0, got {beta}")
        if samples < 1:
            raise ConfigError(f"the lfg polls must be >= 1 sample, got {samples}")
        from ..llm.prompts import Prompts

        self.model = model
        self.goal = goal
        self.prompts = prompts or Prompts()
        self.beta = beta
        self.per_prompt = per_prompt
        self.samples = samples
        self.temperature = temperature
        self.base = CountBased()
        self.scores: dict[str, dict[str, float]] | None = None  # role -> repr(cell) -> p
        self.text = describe or (lambda cell, snapshot: str(cell))  # see selectors/ige.py

    def _poll(self, texts: list[str], prompt: str) -> list[float]:
        """The share of ``samples`` replies that pick each of ``texts`` (section 4)."""
        from ..llm.prompts import RESPONSE_FORMAT, final, indices, numbered

        ask = self.prompts.messages(prompt, goal=self.goal, entries=numbered(texts))
        replies = self.model.chat_many(
            [ask] * self.samples,
            lambda r: bool(indices(final(r), len(texts))),
            each=[{"seed": s} for s in range(self.samples)],  # the polls, asked at once
            temperature=self.temperature,
            response_format=RESPONSE_FORMAT,
        )
        votes = np.zeros(len(texts))
        for reply in replies:
            picked = indices(final(reply), len(texts))
            if picked:
                votes[picked[0]] += 1
            else:
                self.model.count(FALLBACKS)
        return (votes / self.samples).tolist()

    def _score(self, archive: Archive, rows: list[int]) -> None:
        from ..llm.errors import Halted

        step = self.per_prompt
        for k in range(0, len(rows), step):
            batch = rows[k : k + step]
            keys = [repr(archive.cells[i]) for i in batch]
            texts = [self.text(archive.cells[i], archive.snapshot(i)) for i in batch]
            for prompt, role in ROLES.items():
                try:
                    shares = self._poll(texts, prompt)
                except Halted:
                    return
                got = dict(zip(keys, shares, strict=True))
                assert self.scores is not None  # loaded by weights() before any scoring
                self.scores[role].update(got)
                self.model.remember(role, got)

    def weights(self, archive: Archive) -> np.ndarray:
        if self.scores is None:
            self.scores = {role: self.model.recall(role) for role in ROLES.values()}
        pos, neg = self.scores["lfg_positive"], self.scores["lfg_negative"]
        n = len(archive)
        keys = [repr(c) for c in archive.cells[:n]]
        new = [i for i in range(n) if keys[i] not in neg and not archive.terminal[i]]
        if new and not self.model.halted():
            self._score(archive, new)
        p = np.array([pos.get(k, 0.0) for k in keys])
        q = np.array([neg.get(k, 0.0) for k in keys])
        return self.base.weights(archive) * (1.0 + self.beta * p) / (1.0 + self.beta * q)
