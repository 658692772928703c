"""Explorers: the actions taken after returning to a cell. ``make`` builds one by name."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .base import Explorer
from .random_repeat import RandomRepeat

NAMES = ("random", "llm")


def make(name: str, repeat_prob: float = 0.95, **model: Any) -> Explorer:
    """``random`` (Go-Explore's repeated random actions) or ``llm`` (a model picks actions;
    ``model`` holds LLMExplorer's arguments: model or connect, prompts, per_call)."""
    if name == "random":
        return RandomRepeat(repeat_prob)
    if name == "llm":
        from .llm import LLMExplorer

        return LLMExplorer(**model)
    raise ConfigError(f"unknown explorer {name!r}; choose one of {', '.join(NAMES)}")


__all__ = ["NAMES", "Explorer", "RandomRepeat", "make"]
