"""What Atari games keep in RAM (level, room, keys, position) and the domain-knowledge cell
built from it: Montezuma's Revenge and Pitfall knowledge, kept beside their adapter (ale.py).

Go-Explore's domain-knowledge cell for Montezuma's Revenge and Pitfall (Ecoffet et al. 2019,
sec. 3.1, and its reference code's defaults): the level, the room, the keys held and the
agent's position on a grid of 8 x 16 screen pixels (the code doubles x and bins both axes by
16). Only keys count as objects by default: a sword or a torch picked up would otherwise split
every cell of the rooms after it without telling the search anything about which doors it can
open. RAM x and y map one-to-one onto screen pixels (fitted on Montezuma: slope 0.99 and -0.98),
so the bins are in pixels. Halving the x bin (bin_x=4) solved Montezuma's first level on more
seeds within 50M frames: 8-pixel bins mix the safe ground between room 12's laser beams with
the beams (bench/README.md). The default stays the paper's, so that existing runs keep their
cells.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..cells.base import CellFn
from ..errors import ConfigError


@dataclass(frozen=True)
class RamLayout:
    """RAM addresses of a game's domain facts (Go-Explore's domain-knowledge cells)."""

    room: int
    x: int
    y: int
    level: int | None = None
    objects: int | None = None  # inventory / collected-objects byte
    key_mask: int = 0  # the bits of that byte that are keys (0: no keys known)


# Montezuma: the AtariARI RAM annotations (Anand et al. 2019, "Unsupervised State
# Representation Learning in Atari": room 3, x 42, y 43, level 57) and the inventory byte 65
# read by the Go-Explore reference code, whose keys are bits 1-3 (mask 0b1110). Pitfall: x 97
# and y 105 from AtariARI; byte 1 holds the screen (room) code. Go-Explore's reference code
# derives the same facts from pixels.
RAM_LAYOUTS: dict[str, RamLayout] = {
    "montezuma_revenge": RamLayout(room=3, x=42, y=43, level=57, objects=65, key_mask=0b1110),
    "pitfall": RamLayout(room=1, x=97, y=105),
}

OBJECTS = ("keys", "all")


class RamCells(CellFn):
    """Cell = (level, room, objects, x // bin_x, y // bin_y) read from RAM."""

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> CellFn:
        if not hasattr(env, "layout"):  # not an Atari game: "use downscale" would not fit it
            raise ConfigError(
                f"ram cells read an Atari game's RAM (layouts: {', '.join(sorted(RAM_LAYOUTS))}) "
                "and this environment is not an Atari game; --cells auto chooses cells for it"
            )
        return cls(getattr(env, "layout", None), **params)

    def __init__(self, layout, bin_x: int = 8, bin_y: int = 16, objects: str = "keys"):
        if layout is None:
            raise ConfigError(
                "ram cells need the game's RAM layout; known games: "
                f"{', '.join(sorted(RAM_LAYOUTS))}. Use --cells downscale for other games"
            )
        if objects not in OBJECTS:
            raise ConfigError(f"ram cells: objects must be one of {OBJECTS}, not {objects!r}")
        if min(bin_x, bin_y) < 1:
            raise ConfigError(f"ram cells: bins must be >= 1 pixel, got {bin_x} x {bin_y}")
        self.layout = layout
        self.bin_x, self.bin_y = int(bin_x), int(bin_y)
        self.objects = objects
        self.mask = layout.key_mask if objects == "keys" and layout.key_mask else 0xFF

    def __call__(self, env: Any) -> tuple[int, ...]:
        ram = env.ram()
        lay = self.layout
        return (
            int(ram[lay.level]) if lay.level is not None else 0,
            int(ram[lay.room]),
            int(ram[lay.objects]) & self.mask if lay.objects is not None else 0,
            int(ram[lay.x]) // self.bin_x,
            int(ram[lay.y]) // self.bin_y,
        )
