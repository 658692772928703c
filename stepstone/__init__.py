"""stepstone: archive-based exploration (the Go-Explore family) on any environment."""

from .archive import Archive, Entry
from .config import ExploreConfig
from .engine import Engine, Found, Result, Task
from .errors import StepstoneError
from .trajectories import TrajectoryTree
from .worker import Worker

__version__ = "0.1.0"

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
