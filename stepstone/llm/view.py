"""How an environment looks to a language model: the task, the state, the admissible actions.

The model reads text and names actions by their text; the environment takes action ids. What
an environment says of itself comes from its adapter (``Explorable.task()``, ``describe()``,
``admissible()``: TextWorld's commands, Game of 24's operations, MiniGrid's view in words and
named actions); this module adds what holds for every environment: a task when it states none,
every action by its number when it lists no admissible ones, and one action per text.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym

from ..envs.base import Explorable, observation_text

NO_TASK = "explore: reach states not seen before and collect as much reward as possible"


def goal(env: Explorable) -> str:
    """The task in words (the model's goal)."""
    return env.task() or NO_TASK


def text(obs: str) -> str:
    """A text observation on one line, ASCII-art banners left out."""
    return observation_text(obs)


def observation(env: Explorable) -> str:
    """The current state in words."""
    return env.describe()


def actions(env: Explorable) -> list[tuple[Any, str]]:
    """(action, text) for every admissible action here; several actions may share a text."""
    listed = env.admissible()
    if listed is not None:
        return listed
    space = env.action_space
    if not isinstance(space, gym.spaces.Discrete):  # nothing to list: a continuous space
        return []
    start = int(space.start)
    return [(start + i, str(start + i)) for i in range(int(space.n))]


def choices(env: Explorable) -> list[tuple[Any, str]]:
    """(action, text) for every admissible action here, without duplicate texts (the first
    action of each text)."""
    seen: set[str] = set()
    out = []
    for action, text in actions(env):
        if text not in seen:
            seen.add(text)
            out.append((action, text))
    return out


class Describer:
    """A cell's text for the model: the cell itself when it is text (TextWorld, Game of 24),
    else the description of its archived state, restored in ``env`` (e.g. a MiniGrid cell
    (x, y, direction, carried) becomes what the agent sees there), followed by the cell, since
    two cells can look the same (facing the same wall from two places). Remembered per cell."""

    def __init__(self, env: Explorable):
        self.env = env
        self.memo: dict[Any, str] = {}

    def __call__(self, cell: Any, snapshot: bytes | None) -> str:
        if isinstance(cell, str) or snapshot is None:
            return str(cell)
        text = self.memo.get(cell)
        if text is None:
            self.env.restore(snapshot)
            seen = " | ".join(observation(self.env).splitlines())  # one line per entry
            text = self.memo[cell] = f"{seen} (cell {cell})"
        return text

    def action(self, snapshot: bytes | None, action: Any) -> str:
        """The text of ``action`` in the state ``snapshot`` (its number if it has none)."""
        if snapshot is not None:
            self.env.restore(snapshot)
            for a, text in actions(self.env):
                if a == action:
                    return text
        return str(action)
