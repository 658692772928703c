"""MiniGrid cells: where the agent is, which way it faces, and what it carries.

The domain-knowledge cell for grid worlds (the analogue of Go-Explore's room/x/y/keys cell):
two states share a cell when the agent stands on the same square, facing the same way, holding
the same kind of object. Read from the unwrapped MiniGrid environment, so it costs nothing
beside the step itself.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class MiniGridCells:
    name = "minigrid"

    def __init__(self, direction: bool = True):
        self.direction = direction

    @property
    def params(self) -> dict:
        return {"direction": self.direction}

    def __call__(self, env: Any) -> tuple:
        u = getattr(getattr(env, "env", None), "unwrapped", None)
        if u is None or not hasattr(u, "agent_pos"):
            raise ConfigError("minigrid cells need a MiniGrid environment (agent_pos, carrying)")
        carrying = u.carrying
        held = (carrying.type, carrying.color) if carrying is not None else None
        x, y = u.agent_pos
        return (int(x), int(y), int(u.agent_dir) if self.direction else 0, held)
