"""stepstone: archive-based exploration (the Go-Explore family) on any environment.

The public names are imported on first use, so that a part that stands apart from the
exploration engine (``stepstone.rlvr``, ``stepstone.errors``) imports without it, and
without gymnasium and the Atari emulator.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .errors import StepstoneError

if TYPE_CHECKING:
    from .archive import Archive, Entry
    from .config import ExploreConfig
    from .engine import Engine, Found, Result, Task
    from .trajectories import TrajectoryTree
    from .worker import Worker

__version__ = "0.1.0"

_HOMES = {
    "Archive": "archive", "Entry": "archive", "ExploreConfig": "config", "Engine": "engine",
    "Found": "engine", "Result": "engine", "Task": "engine", "TrajectoryTree": "trajectories",
    "Worker": "worker",
}  # fmt: skip


def __getattr__(name: str) -> Any:
    """A public name, imported from its module when first asked for (PEP 562)."""
    if name not in _HOMES:
        raise AttributeError(f"module 'stepstone' has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_HOMES[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_HOMES})


__all__ = [
    "Archive",
    "Engine",
    "Entry",
    "ExploreConfig",
    "Found",
    "Result",
    "StepstoneError",
    "Task",
    "TrajectoryTree",
    "Worker",
]
