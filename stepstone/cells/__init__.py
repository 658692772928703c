"""Cell functions: state -> key. ``make`` builds one by name for an environment."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import CellFn
from .custom import CustomCells
from .downscale import Downscale
from .observation import ObservationCells
from .ram import RamCells
from .text import TextCells


def resolve(kind: str, params: dict, env: Any, atari: bool) -> tuple[str, dict]:
    """The cell kind and parameters to use: 'auto' means the environment's own default
    (``env.default_cells``), else downscaled frames on Atari and the observation elsewhere."""
    if kind != "auto":
        return kind, params
    default = getattr(env, "default_cells", None)
    if default is not None:
        return default[0], {**default[1], **params}
    return ("downscale" if atari else "observation"), params


def make(kind: str, env: Any, params: dict | None = None) -> CellFn:
    params = dict(params or {})
    try:
        if kind == "downscale":
            return Downscale(**params)
        if kind == "dynamic":
            from .dynamic import DynamicDownscale

            return DynamicDownscale(**params)
        if kind == "ram":
            return RamCells(getattr(env, "layout", None), **params)
        if kind == "observation":
            return ObservationCells(**params)
        if kind == "learned":
            from .learned import LearnedCells

            return LearnedCells(**params)
        if kind == "novelty":
            from .novelty import NoveltyCells

            return NoveltyCells(**params)
        if kind == "text":
            return TextCells(**params)
        if kind == "minigrid":
            from .minigrid import MiniGridCells

            return MiniGridCells(**params)
        if kind == "dom":
            from .dom import DomCells

            return DomCells(**params)
        if ":" in kind:
            return CustomCells(kind)
    except (TypeError, ValueError) as e:
        raise ConfigError(f"invalid parameters {params} for {kind} cells: {e}") from e
    raise ConfigError(f"unknown cell kind {kind!r}")


__all__ = [
    "CellFn",
    "CustomCells",
    "Downscale",
    "ObservationCells",
    "RamCells",
    "TextCells",
    "make",
    "resolve",
]
