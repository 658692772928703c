"""MiniGrid and BabyAI: the generic adapter plus what grid worlds know of themselves.

Return is the generic adapter's (MiniGrid environments pickle with their state). What this
adds: the goal (a step that ends the episode with ``self._reward()``, which MiniGrid pays only
on success: ``minigrid_env.py`` ``MiniGridEnv.step`` reaching the goal square,
``babyai/core/roomgrid_level.py`` ``RoomGridLevel.step`` the mission verified; its value
``1 - 0.9 * step_count / max_steps`` is > 0, while lava and failed missions end with 0), the
mission as the task, the agent's 7x7 view in words with the seven named actions for a language
model (as BabyAI-Text does: Carta et al. 2023, "Grounding Large Language Models in Interactive
Environments with Online Reinforcement Learning"), and the domain-knowledge cell
(``--cells minigrid``, the default here).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from ..cells.base import CellFn
from ..errors import ConfigError
from .generic import GymEnv

if TYPE_CHECKING:
    from . import EnvSpec

ACTIONS = ("turn left", "turn right", "go forward", "pick up", "drop", "toggle", "done")


def is_minigrid(env: gym.Env, spec: EnvSpec | None = None) -> bool:
    try:
        from minigrid.minigrid_env import MiniGridEnv
    except ImportError:  # the minigrid extra
        return False
    return isinstance(env.unwrapped, MiniGridEnv)


class MiniGridAdapter(GymEnv):
    """GymEnv over a MiniGrid or BabyAI environment."""

    def __init__(self, env: gym.Env, method: str = "auto", seed: int = 0):
        super().__init__(env, method=method, seed=seed)
        self.default_cells = ("minigrid", {})
        self.goal_words = "the mission done, rewarded at the episode's end"

    def goal(self) -> bool:
        return self.terminated and self.last_reward > 0

    def task(self) -> str:
        g: Any = self.env.unwrapped
        return str(g.mission)

    def admissible(self) -> list[tuple[Any, str]]:
        return list(enumerate(ACTIONS))

    def describe(self) -> str:
        """What the agent sees ("you see a red ball 2 steps forward, 1 step left; ...")."""
        from minigrid.core.constants import IDX_TO_COLOR, IDX_TO_OBJECT

        g: Any = self.env.unwrapped
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
        carrying = g.carrying
        parts.append(
            f"you carry a {carrying.color} {carrying.type}" if carrying else "you carry nothing"
        )
        return "; ".join(parts)


def adapter(spec: EnvSpec, env_id: str, env: gym.Env) -> MiniGridAdapter:
    """The adapter of an environment ``is_minigrid`` took (the entry point in envs.FAMILIES)."""
    return MiniGridAdapter(env, method=spec.return_method, seed=spec.seed)


class MiniGridCells(CellFn):
    """Cell = (x, y, direction, carried, doors open): where the agent is, which way it faces,
    what it carries, how many doors are open.

    The domain-knowledge cell for grid worlds (the analogue of Go-Explore's room/x/y/keys
    cell). The doors matter as the keys do in Montezuma's Revenge: without them, opening a
    door leaves the cell unchanged (and the longer trajectory is dropped), so every
    exploration has to open the door and walk through in one go; on MultiRoom-N6 count-based
    selection then stalls at the third room. Read from the unwrapped environment, so it costs
    a scan of the grid beside the step.
    """

    def __init__(self, direction: bool = True, doors: bool = True):
        self.direction = direction
        self.doors = doors

    def __call__(self, env: Any) -> tuple:
        if not isinstance(env, MiniGridAdapter):
            raise ConfigError("minigrid cells need a MiniGrid environment (MiniGrid-*, BabyAI-*)")
        u: Any = env.env.unwrapped
        carrying = u.carrying
        held = (carrying.type, carrying.color) if carrying is not None else None
        x, y = u.agent_pos
        cell = (int(x), int(y), int(u.agent_dir) if self.direction else 0, held)
        if not self.doors:
            return cell
        # how many doors are open, not which: the set would multiply cells by 2^doors where
        # many rooms have doors (KeyCorridor), while doors opened in sequence (MultiRoom) are
        # told apart as well by their number
        grid = u.grid.grid  # row-major list of objects (None for empty floor)
        open_doors = sum(1 for o in grid if o is not None and o.type == "door" and o.is_open)
        return (*cell, open_doors)
