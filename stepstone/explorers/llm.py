"""A language model picks the next action(s) from the admissible ones (Intelligent Go-Explore).

Lu, Hu & Clune 2024, "Intelligent Go-Explore: Standing on the Shoulders of Giant Foundation
Models", replace Go-Explore's random exploration with a foundation model that, at each step,
reads the state and chooses among the actions available there. Here: the goal, the state, the
actions taken since the return and a numbered list of admissible actions (llm/view.py) go into
the ``act`` prompt; the reply names one number or up to ``per_call`` numbers to take in order
(later ones are taken only while still admissible, matched by their text).

A model asked at temperature 0 is a deterministic policy: with the reply cache, every
exploration from a cell would repeat the last one. So each decision draws one of ``samples``
variants of the request from the exploration's RNG: variant 0 at temperature 0, the others
sampled at ``temperature`` with the variant as the request's seed. Each variant is cached on
its own, so a state costs at most ``samples`` calls and runs stay reproducible.

A reply that names no admissible action is not fatal: the explorer takes a random admissible
action instead and counts it (``llm_act_fallbacks`` in the run's metrics and report), so a weak
model slows exploration down without stopping it, and the count shows how often it happened.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from ..llm import view
from ..llm.prompts import Prompts, choices, numbered

FALLBACKS = "llm_act_fallbacks"


class LLMExplorer:
    name = "llm"

    def __init__(
        self,
        model: Any = None,
        prompts: Prompts | None = None,
        per_call: int = 1,
        connect: Any = None,
        history: int = 10,
        samples: int = 4,
        temperature: float = 0.7,
        state_chars: int = 2000,
    ):
        """``model``: a chat client (llm/client.py); or ``connect()``, called on first use in
        the process that explores (a worker process builds its own client)."""
        self.model = model
        self.connect = connect
        self.prompts = prompts or Prompts()
        self.per_call = per_call
        self.history = history
        self.samples = samples
        self.temperature = temperature
        self.state_chars = state_chars  # the end of a long observation (a game's banner)
        self.fallbacks = 0
        self.calls = 0

    def _client(self) -> Any:
        if self.model is None:
            if self.connect is None:
                from ..errors import ConfigError

                raise ConfigError(
                    "the llm explorer asks a model: give --llm-url and --llm-model "
                    "(or set STEPSTONE_LLM_URL and STEPSTONE_LLM_MODEL)"
                )
            self.model = self.connect()
        return self.model

    def actions(self, env: Any, rng: np.random.Generator, steps: int) -> Iterator[Any]:
        model = self._client()
        goal = view.goal(env)
        taken: list[str] = []
        while len(taken) < steps:
            here = view.choices(env)
            if not here:
                return
            texts = [t for _, t in here]
            variant = int(rng.integers(self.samples)) if self.samples > 1 else 0
            params = {"temperature": 0} if variant == 0 else {"temperature": self.temperature,
                                                                "seed": variant}  # fmt: skip
            reply = model.chat(
                self.prompts.messages(
                    "act",
                    goal=goal,
                    state=view.observation(env)[-self.state_chars :],
                    history="; ".join(taken[-self.history :]) or "none",
                    actions=numbered(texts),
                    k=self.per_call,
                ),
                **params,
            )
            self.calls += 1
            plan = [texts[i] for i in choices(reply, len(texts))[: self.per_call]]
            if not plan:
                named = [t for t in texts if t.lower() in reply.lower()]  # named in words
                plan = [max(named, key=len)] if named else []
            if not plan:
                self.fallbacks += 1
                model.count(FALLBACKS)
                plan = [texts[int(rng.integers(len(texts)))]]
            for text in plan:
                if len(taken) >= steps:
                    return
                by_text = dict((t, a) for a, t in view.choices(env))
                if text not in by_text:  # no longer admissible after the previous action
                    break
                taken.append(text)
                yield by_text[text]
