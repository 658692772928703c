"""MiniGrid cells: where the agent is, which way it faces, what it carries, which doors are open.

The domain-knowledge cell for grid worlds (the analogue of Go-Explore's room/x/y/keys cell):
two states share a cell when the agent stands on the same square, facing the same way, holding
the same kind of object, with as many doors open. The doors matter as the keys do in
Montezuma's Revenge: without them, opening a door leaves the cell unchanged (and the longer
trajectory is dropped), so every exploration has to open the door and walk through in one go;
on MultiRoom-N6 count-based selection then stalls at the third room. Read from the unwrapped
MiniGrid environment, so it costs a scan of the grid beside the step.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import CellFn


class MiniGridCells(CellFn):
    def __init__(self, direction: bool = True, doors: bool = True):
        self.direction = direction
        self.doors = doors

    def __call__(self, env: Any) -> tuple:
        u = getattr(getattr(env, "env", None), "unwrapped", None)
        if u is None or not hasattr(u, "agent_pos"):
            raise ConfigError("minigrid cells need a MiniGrid environment (agent_pos, carrying)")
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
