"""The observation itself as the cell, for small discrete or low-dimensional environments.

The default for non-Atari Gymnasium environments: a grid position or a small state vector is
already a good cell. Floats are rounded to ``decimals`` so that nearby states share a cell.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np

from .base import CellFn


def freeze(obs: Any, decimals: int) -> Hashable:
    """A hashable, exactly-comparable copy of an observation."""
    if isinstance(obs, dict):
        return tuple((k, freeze(obs[k], decimals)) for k in sorted(obs))
    if isinstance(obs, (tuple, list)):
        return tuple(freeze(o, decimals) for o in obs)
    if isinstance(obs, str):
        return obs
    arr = np.asarray(obs)
    if arr.dtype.kind == "f":
        arr = np.round(arr, decimals) + 0.0  # + 0.0 folds -0.0 into 0.0
    return (arr.dtype.str, arr.shape, arr.tobytes())


class ObservationCells(CellFn):
    """Cell = the observation, floats rounded to ``decimals``."""

    def __init__(self, decimals: int = 1):
        self.decimals = decimals

    def __call__(self, env: Any) -> Hashable:
        return freeze(env.observe(), self.decimals)
