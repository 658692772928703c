"""Domain-knowledge cells from console RAM: level, room, objects held, and a coarse position.

Go-Explore's domain-knowledge cell for Montezuma's Revenge and Pitfall (Ecoffet et al. 2019,
sec. 3.1): the level, the room, the objects collected and the agent's (x, y) in bins of
``bin_px`` pixels (16 in the paper's Montezuma runs). The RAM addresses are in envs/ale.py.
"""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError


class RamCells:
    """Cell = (level, room, objects, x // bin, y // bin) read from RAM."""

    name = "ram"

    def __init__(self, layout, bin_px: int = 16):
        if layout is None:
            from ..envs.ale import RAM_LAYOUTS

            raise ConfigError(
                "ram cells need the game's RAM layout; known games: "
                f"{', '.join(sorted(RAM_LAYOUTS))}. Use --cells downscale for other games"
            )
        self.layout = layout
        self.bin_px = bin_px

    @property
    def params(self) -> dict:
        return {"bin_px": self.bin_px}

    def __call__(self, env: Any) -> tuple[int, ...]:
        ram = env.ram()
        lay = self.layout
        return (
            int(ram[lay.level]) if lay.level is not None else 0,
            int(ram[lay.room]),
            int(ram[lay.objects]) if lay.objects is not None else 0,
            int(ram[lay.x]) // self.bin_px,
            int(ram[lay.y]) // self.bin_px,
        )
