"""TextWorld games (``textworld:PATH``) as a Gymnasium environment with a fixed action space.

TextWorld (Côté et al. 2018) runs a compiled game file (``tw-make`` builds one offline) and
lists, at every step, the commands that make sense there ("admissible commands"). Action ``a``
means the ``a % N``-th of the N admissible commands, in TextWorld's (sorted) order, so the
action space is a plain ``Discrete`` and every random action is a sensible command. The game
cannot be pickled (it runs in a foreign interpreter), but it is deterministic, so the adapter
returns to a state by replaying the commands from reset (GymEnv's ``replay`` method).

The observation is ``"room: R | inventory: I | FEEDBACK"``; the default cell is the room and
the inventory, the part of the state that matters for where the player can get next.
The reward is the change in game score; an episode ends when the game is won or lost.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
from gymnasium import spaces

from ..errors import EnvironmentNotFound

if TYPE_CHECKING:
    from . import EnvSpec
    from .generic import GymEnv

MAX_COMMANDS = 64
_ROOM = re.compile(r"-=\s*(.*?)\s*=-")


class TextWorldEnv(gym.Env):
    metadata = {"render_modes": []}
    # The room and the inventory.
    default_cells = ("text", {"pattern": r"^(room: [^|]*\| inventory: [^|]*) \|"})
    goal_words = "the game won"

    def __init__(self, path: str):
        try:
            import textworld
        except ImportError:
            raise EnvironmentNotFound(
                "textworld games need the textworld package: pip install 'stepstone[textworld]'"
            ) from None
        if not Path(path).is_file():
            raise EnvironmentNotFound(
                f"no TextWorld game at {path!r}; make one with e.g. "
                "`tw-make tw-coin_collector --level 5 --output games/coin.z8`"
            )
        self.path = path
        infos = textworld.EnvInfos(
            admissible_commands=True, inventory=True, description=True, won=True, lost=True,
            score=True, max_score=True, objective=True,
        )  # fmt: skip
        with warnings.catch_warnings():
            # Jericho warns that it cannot track the score of generated games; TextWorld's own
            # "score" info (used here) does.
            warnings.simplefilter("ignore")
            self._env = textworld.start(path, request_infos=infos)
        self.action_space = spaces.Discrete(MAX_COMMANDS)
        self.observation_space = spaces.Text(max_length=100_000)

    def reset(self, seed: int | None = None, options=None):
        super().reset(seed=seed)
        self._state = self._env.reset()
        self._room = "?"
        return self._obs(), self._info()

    def step(self, action: int):
        commands = self._state["admissible_commands"]
        command = commands[int(action) % len(commands)]
        before = self._state["score"]
        self._state, _, done = self._env.step(command)
        reward = float(self._state["score"] - before)
        return self._obs(), reward, bool(done), False, {**self._info(), "command": command}

    def _obs(self) -> str:
        s = self._state
        m = _ROOM.search(s["description"] or "")
        if m:  # the description names the room; after e.g. "inventory" it may not
            self._room = m.group(1)
        inventory = " ".join(str(s["inventory"]).split())
        feedback = " ".join(str(s["feedback"]).split())
        return f"room: {self._room} | inventory: {inventory} | {feedback}"

    def _info(self) -> dict:
        s = self._state
        return {"score": s["score"], "max_score": s["max_score"], "won": bool(s["won"])}

    def goal(self) -> bool:
        return bool(self._state["won"])

    def admissible(self) -> list[tuple[int, str]]:
        """The admissible commands, in TextWorld's order: action i is the i-th."""
        return list(enumerate(self._state["admissible_commands"]))

    def task(self) -> str:
        return " ".join(str(self._state["objective"]).split())

    def achieved(self) -> str:
        """Where the player got and what it holds, as a task of its own (retrospective label)."""
        inventory = " ".join(str(self._state["inventory"]).split())
        return f"Go to the {self._room}. At the end: {inventory}"

    def close(self) -> None:
        self._env.close()


def adapter(spec: EnvSpec, env_id: str, env: Any = None) -> GymEnv:
    """The adapter of ``textworld:PATH``, returned to by replaying the commands (the entry
    point in envs.FAMILIES)."""
    from .generic import GymEnv

    method = "replay" if spec.return_method == "auto" else spec.return_method
    return GymEnv(TextWorldEnv(env_id.partition(":")[2]), method=method, seed=spec.seed)
