"""Trajectories of a run as datasets: Minari for RL, JSONL or Parquet for LLM fine-tuning.

Each exported episode is an archive entry's trajectory replayed from the run's seed, so what
is written is what the environment really does, observations included (the archive stores
only actions). ``select`` picks the entries: the best one, the best that reaches the goal,
every cell's, or the k best; ``auto`` the goal's when the run reached it, else the best.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..archive import Archive
from ..errors import ConfigError
from ..store.sqlite import RunStore
from ..trajectories import TrajectoryTree

SELECTIONS = ("auto", "best", "goal", "all-cells", "top-k")


@dataclass(frozen=True)
class Episode:
    """One entry's trajectory: where it ends, its score, and the actions from reset."""

    index: int
    cell: object
    score: float
    actions: np.ndarray


def select(archive: Archive, how: str, k: int = 10) -> list[int]:
    """Entry indices, best first (highest score, then shortest trajectory); the start state,
    with no trajectory, is never one of them."""
    n = len(archive)
    order = np.lexsort((archive.length[:n], -archive.score[:n]))
    order = order[archive.length[order] > 0].tolist()
    if how == "best":
        return order[:1]
    if how == "goal":  # the best entry that reaches the run's goal (Archive.goal_entry)
        reached = archive.goal_entry()
        if reached is None:
            raise ConfigError("no trajectory of this run reaches its goal: --select best")
        return [reached]
    if how == "top-k":
        if k < 1:
            raise ConfigError(f"--k must be at least 1, not {k}")
        return order[:k]
    if how == "all-cells":
        return order
    raise ConfigError(f"unknown selection {how!r}; choose one of {', '.join(SELECTIONS)}")


def start_score(archive: Archive) -> float:
    """The start state's score (the entries with no trajectory), 0 in an empty archive."""
    n = len(archive)
    at_start = archive.score[:n][archive.length[:n] == 0]
    return float(at_start.max()) if len(at_start) else 0.0


def resolve(archive: Archive, how: str) -> str:
    """``auto``: "goal" when an entry reaches the run's goal, else "best". With a cost per
    step (Taxi, MountainCar) the best entry is a first step; what a dataset wants is the
    way to the goal, as replay and robustify take it."""
    if how != "auto":
        return how
    return "best" if archive.goal_entry() is None else "goal"


def episodes(
    store: RunStore, how: str, k: int = 10, archive: Archive | None = None
) -> list[Episode]:
    """The selected entries' trajectories (``how``: a selection, ``resolve``d; ``archive``:
    the store's, when the caller has loaded it)."""
    archive = store.load_archive() if archive is None else archive
    tree = TrajectoryTree(store.nodes)
    return [
        Episode(
            i,
            archive.cells[i],
            float(archive.score[i]),
            tree.actions(int(archive.node[i]), int(archive.length[i])),
        )
        for i in select(archive, how, k)
    ]
