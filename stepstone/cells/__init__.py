"""Cell functions: state -> key. ``make`` builds one by name for an environment."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import CellFn
from .custom import CustomCells
from .downscale import Downscale
from .observation import ObservationCells
from .ram import RamCells


def resolve_kind(kind: str, atari: bool) -> str:
    """'auto' means downscaled frames on Atari and the observation itself elsewhere."""
    if kind == "auto":
        return "downscale" if atari else "observation"
    return kind


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
        if ":" in kind:
            return CustomCells(kind)
    except TypeError as e:
        raise ConfigError(f"invalid parameters {params} for {kind} cells: {e}") from e
    raise ConfigError(f"unknown cell kind {kind!r}")


__all__ = ["CellFn", "CustomCells", "Downscale", "ObservationCells", "RamCells", "make"]
