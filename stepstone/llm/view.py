"""How an environment looks to a language model: the goal, the state, the admissible actions.

The model reads text and names actions by their text; the environment takes action ids. This
module maps between the two for the text environments stepstone knows, duck-typed on the
game under the adapter (so it needs no change to the adapters):

* an environment with ``admissible() -> list[(action, text)]`` (the general hook);
* TextWorld: the admissible commands, in TextWorld's order (action i is the i-th);
* Game of 24: every operation on an ordered pair of the numbers left, with its result
  ("8 * 3 = 24"); division by zero is not offered (with IGE's integer rule, envs/game24.py:
  the larger number first, and only divisions without a remainder);
* MiniGrid / BabyAI: the agent's 7x7 view described in words ("a red ball 2 steps forward,
  1 step left") with the mission, as BabyAI-Text does (Carta et al. 2023, "Grounding Large
  Language Models in Interactive Environments with Online Reinforcement Learning"), and the
  seven named actions;
* anything else with a discrete action space: the action numbers, the observation as text.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np


def game(env: Any) -> Any:
    """The environment under the adapter and its wrappers."""
    inner = getattr(env, "env", env)
    return getattr(inner, "unwrapped", inner)


def goal(env: Any) -> str:
    g = game(env)
    if hasattr(g, "task"):
        return str(g.task())
    mission = getattr(g, "mission", None)
    if mission:
        return str(mission)
    return "explore: reach states not seen before and collect as much reward as possible"


def _minigrid_words(g: Any) -> str:
    from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

    image = g.gen_obs()["image"]  # (x, y, [object, colour, state]); the agent at (3, 6)
    w, h = image.shape[:2]
    ax, ay = w // 2, h - 1
    seen = []
    for x in range(w):
        for y in range(h):
            kind = IDX_TO_OBJECT.get(int(image[x, y, 0]), "unseen")
            if kind in ("unseen", "empty", "floor", "wall", "agent"):
                continue
            name = f"{IDX_TO_COLOR.get(int(image[x, y, 1]), '')} {kind}".strip()
            if kind == "door":
                name = ("an open ", "a closed ", "a locked ")[int(image[x, y, 2]) % 3] + name
            else:
                name = "a " + name
            ahead, side = ay - y, x - ax
            where = []
            if ahead:
                where.append(f"{ahead} step{'s' * (ahead > 1)} forward")
            if side:
                turn = "right" if side > 0 else "left"
                where.append(f"{abs(side)} step{'s' * (abs(side) > 1)} {turn}")
            seen.append((abs(ahead) + abs(side), f"{name} {', '.join(where) or 'here'}"))
    front = IDX_TO_OBJECT.get(int(image[ax, ay - 1, 0]), "unseen")
    parts = [f"you see {d}" for _, d in sorted(seen)] or ["you see no objects"]
    if front == "wall":
        parts.append("a wall is right in front of you")
    carrying = getattr(g, "carrying", None)
    parts.append(
        f"you carry a {carrying.color} {carrying.type}" if carrying else "you carry nothing"
    )
    return "; ".join(parts)


# Lines drawn only with _ | \\ / $ (TextWorld's ASCII-art title), which IGE strips
# (textworld/run_treasure.py: Agent.init_observe removes the art block).
_BANNER = re.compile(r"^[ \t_|\\/$]*[_|\\/$][ \t_|\\/$]*$", re.M)


def text(obs: str) -> str:
    """A text observation on one line, TextWorld's ASCII-art banner left out."""
    return " ".join(_BANNER.sub("", obs).split())


def observation(env: Any) -> str:
    describe = getattr(env, "describe", None)  # an adapter that says it (web pages)
    if describe is not None:
        return str(describe())
    g = game(env)
    if hasattr(g, "gen_obs") and hasattr(g, "agent_pos"):
        return _minigrid_words(g)
    obs = env.observe()
    if isinstance(obs, str):
        return text(obs)
    if isinstance(obs, dict) and "mission" in obs:
        return str(obs["mission"])
    return np.array2string(np.asarray(obs), threshold=200)


MINIGRID_ACTIONS = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle", "done")


def actions(env: Any) -> list[tuple[Any, str]]:
    """(action, text) for every admissible action here; several actions may share a text."""
    g = game(env)
    if hasattr(g, "admissible"):
        return list(g.admissible())
    if hasattr(g, "_state") and "admissible_commands" in getattr(g, "_state", {}):
        return list(enumerate(g._state["admissible_commands"]))
    if hasattr(g, "values") and hasattr(g, "exprs"):  # Game of 24: the whole action space
        from ..envs.game24 import OPS, _fmt, apply, pairs

        items = []
        integer = getattr(g, "integer", False)  # IGE's rule: the larger number first
        ps = pairs(len(g.values))
        for a in range(g.action_space.n):
            i, j = ps[(a // 4) % len(ps)]
            x, y = g.values[i], g.values[j]
            if integer and x < y:
                x, y = y, x
            r = apply(OPS[a % 4], x, y, integer)
            if r is not None:
                items.append((a, f"{_fmt(x)} {OPS[a % 4]} {_fmt(y)} = {_fmt(r)}"))
        return items
    if hasattr(g, "gen_obs") and hasattr(g, "agent_pos"):
        return list(enumerate(MINIGRID_ACTIONS))
    space = env.action_space
    n = int(getattr(space, "n", 0))
    start = int(getattr(space, "start", 0))
    return [(start + i, str(start + i)) for i in range(n)]


def choices(env: Any) -> list[tuple[Any, str]]:
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
    else the observation of its archived state, restored in ``env`` (e.g. a MiniGrid cell
    (x, y, direction, carried) becomes what the agent sees there), followed by the cell, since
    two cells can look the same (facing the same wall from two places). Remembered per cell."""

    def __init__(self, env: Any):
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
