"""A language model picks the next action(s) from the admissible ones (Intelligent Go-Explore).

Lu, Hu & Clune 2024, "Intelligent Go-Explore: Standing on the Shoulders of Giant Foundation
Models", replace Go-Explore's random exploration with a foundation model that, at each step,
reads the state and chooses among the actions available there. Here: the goal, the history
of the episode (each action and what followed, from reset where the environment replays from
its seed, as text games do, else from the return; as IGE's TextWorld agent is shown it,
textworld/run_treasure.py: ``create_history_obs``, oldest steps left out first when it
outgrows ``history_chars``), the state and a numbered list of admissible actions
(llm/view.py) go into the ``act`` prompt, after the exploration's earlier exchanges
(llm/memory.py; game_of_24/run.py keeps the last 5). The model reasons, then its final
answer names one number or up to ``per_call`` numbers to take in order (later ones are taken
only while still admissible, matched by their text), or an action's text.

A model asked at temperature 0 is a deterministic policy: with the reply cache, every
exploration from a cell would repeat the last one. So each decision draws one of ``samples``
variants of the request from the exploration's RNG: variant 0 at temperature 0, the others
sampled at ``temperature`` with the variant as the request's seed. Each variant is cached on
its own, so a state costs at most ``samples`` calls and runs stay reproducible.

A reply with no final answer naming an admissible action is not fatal: the explorer takes a
random admissible action instead and counts it (``llm_act_fallbacks`` in the run's metrics
and report), and the reply is not cached. Once the run has stopped (``Halted``), an
exploration ends where it is instead of asking again.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

from ..llm import view
from ..llm.errors import Halted
from ..llm.memory import TURNS, Memory
from ..llm.prompts import RESPONSE_FORMAT, Prompts, final, indices, numbered
from .base import Explorer

if TYPE_CHECKING:
    from ..config import ExploreConfig

FALLBACKS = "llm_act_fallbacks"


def plan(reply: str, texts: list[str], most: int) -> list[str]:
    """The admissible actions (their texts) the reply's final answer names, in order."""
    answer = final(reply)
    picked = [texts[i] for i in indices(answer, len(texts))[:most]]
    if not picked and isinstance(answer, str):
        picked = [t for t in texts if t.lower() == answer.strip().lower()][:1]
    return picked


def recent(steps: list[str], chars: int) -> str:
    """The latest of ``steps`` that fit in ``chars``, saying how many earlier ones were cut."""
    kept: list[str] = []
    size = 0
    for step in reversed(steps):
        size += len(step) + 1
        if size > chars:
            break
        kept.insert(0, step)
    cut = len(steps) - len(kept)
    return "\n".join(([f"({cut} earlier steps left out)"] if cut else []) + kept) or "none"


def past(env: Any, chars: int) -> list[str]:
    """The steps from reset to the state returned to, where the environment kept them (text
    games replayed from the seed): IGE shows its TextWorld agent the whole episode so far
    (run_treasure.py ``create_history_obs``), not only what followed the return."""
    trail = env.history()
    steps = []
    for command, obs in trail or ():
        text = view.text(obs)[-chars:] if obs is not None else ""
        steps.append(text if command is None else f"> {command}\n{text}")
    return steps


class LLMExplorer(Explorer):
    def __init__(
        self,
        model: Any = None,
        prompts: Prompts | None = None,
        per_call: int = 1,
        connect: Any = None,
        samples: int = 4,
        temperature: float = 0.7,
        state_chars: int = 2000,
        history_chars: int = 8000,
        memory: int = TURNS,
    ):
        """``model``: a chat client (llm/model.py); or ``connect()``, called on first use in
        the process that explores (a worker process builds its own client)."""
        self.model = model
        self.connect = connect
        self.prompts = prompts or Prompts()
        self.per_call = per_call
        self.samples = samples
        self.temperature = temperature
        self.state_chars = state_chars  # the end of a long observation
        self.history_chars = history_chars
        self.memory = memory  # earlier exchanges of the exploration sent with each prompt

    @classmethod
    def from_config(cls, config: ExploreConfig, llm: Any = None) -> LLMExplorer:
        """The run's prompts and model settings; the client connects on first use."""
        return cls(
            prompts=Prompts(config.llm_prompts),
            per_call=config.llm_actions,
            samples=config.llm_samples,
            connect=llm.connect if llm is not None else None,
        )

    def close(self) -> None:
        if self.model is not None:
            self.model.close()

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
        memory = Memory(self.memory)
        history = past(env, self.state_chars)  # "> action" and what followed, since reset
        taken = 0
        while taken < steps:
            here = view.choices(env)
            if not here:
                return
            texts = [t for _, t in here]
            state = view.observation(env)[-self.state_chars :]
            variant = int(rng.integers(self.samples)) if self.samples > 1 else 0
            params = {"temperature": 0} if variant == 0 else {"temperature": self.temperature,
                                                                "seed": variant}  # fmt: skip
            messages = self.prompts.messages(
                "act",
                memory=memory.messages(),
                goal=goal,
                state=state,
                history=recent(history, self.history_chars),
                actions=numbered(texts),
                k=self.per_call,
            )
            try:
                reply = model.chat(
                    messages,
                    accept=lambda r, texts=texts: bool(plan(r, texts, self.per_call)),
                    response_format=RESPONSE_FORMAT,
                    **params,
                )
            except Halted:
                return
            memory.add(messages, reply)
            chosen = plan(reply, texts, self.per_call)
            if not chosen:
                model.count(FALLBACKS)
                chosen = [texts[int(rng.integers(len(texts)))]]
            for text in chosen:
                if taken >= steps:
                    return
                by_text = dict((t, a) for a, t in view.choices(env))
                if text not in by_text:  # no longer admissible after the previous action
                    break
                taken += 1
                yield by_text[text]
                history.append(f"> {text}\n{view.observation(env)[-self.state_chars :]}")
