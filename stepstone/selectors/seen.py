"""Times-seen-only weights: the selection of Go-Explore's released no-domain-knowledge runs.

The released code of "First return, then explore" (uber-research/go-explore,
``robustified/goexplore_py/randselectors.py``, ``WeightedSelector.compute_weight``) weighs a
counter v as ``weight / (v + 1) ** power``. Its downscaled-frame script
(``robustified/phase1_downscaled.sh``) sets ``--seen_weight=1.0 --high_score_weight=0.0`` and
leaves every other weight at ``main.py``'s default of 0 and ``--seen_power`` at 0.5, so a
cell's weight is

    1 / sqrt(times_seen + 1)

with no constant: a cell seen 99 times is chosen a tenth as often as a new one, where the
2019 paper's count weights (selectors/count_based.py) add 1 to every cell and so flatten the
choice towards uniform as an archive grows. The script pairs it with
``--reset_cell_on_update`` (``--reset-on-update`` here, engine.py), which makes an improved
cell count as new again. Nothing here reads the cell: any cell kind can use it.
"""

from __future__ import annotations

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from .base import Selector


class TimesSeen(Selector):
    """``weight / (times_seen + 1) ** power``; the defaults are the released script's."""

    shardable = True  # a cell's weight is its own count's

    def __init__(self, weight: float = 1.0, power: float = 0.5):
        if not (weight > 0 and power >= 0):
            raise ConfigError(
                f"the seen selector's weight must be > 0 and power >= 0, not {weight}, {power}"
            )
        self.weight, self.power = float(weight), float(power)

    def weights(self, archive: Archive) -> np.ndarray:
        seen = archive.times_seen[: len(archive)]
        return self.weight / (seen + 1.0) ** self.power
