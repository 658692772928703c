"""Explorers: the actions taken after returning to a cell. ``REGISTRY`` names them.

A new explorer is a file here with an ``Explorer`` subclass and one line in ``REGISTRY``; a
user's own is registered from their module (``explorers.register("mine", Mine)``), given
with ``--import``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..registry import Registry
from .base import Explorer

if TYPE_CHECKING:
    from ..config import ExploreConfig

REGISTRY: Registry[type[Explorer]] = Registry("explorer", Explorer, {
    "random": ".random_repeat:RandomRepeat",
    "llm": ".llm:LLMExplorer",
}, __name__)  # fmt: skip
register = REGISTRY.register


def make(config: ExploreConfig, llm: Any = None) -> Explorer:
    """The explorer ``config.explorer`` names, for a worker of that run.

    Args:
        config: the run's configuration.
        llm: ``llm.client.Settings`` of the run's model, for explorers that ask one.

    Raises:
        ConfigError: no explorer has that name.
    """
    return REGISTRY[config.explorer].from_config(config, llm)


__all__ = ["REGISTRY", "Explorer", "make", "register"]
