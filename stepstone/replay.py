"""Replaying stored trajectories from their seed, to check them and to watch them.

The archive's promise is that every entry's (seed, actions) reaches its cell with its score
from a plain reset, with no snapshot involved. ``check`` verifies that promise entry by entry.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .archive import Entry
from .trajectories import TrajectoryTree
from .worker import Worker


@dataclass
class Replayed:
    entry: Entry
    cell: Any  # what the replayed state's cell function returns
    score: float
    expected: Any  # the entry's cell, or for novelty cells the stored state's own key

    @property
    def ok(self) -> bool:
        # Scores are sums of rewards taken in another order (the stored one adds the return
        # and the exploration parts), so non-integer rewards may differ in the last bits.
        close = math.isclose(self.score, self.entry.score, rel_tol=1e-9, abs_tol=1e-9)
        return self.cell == self.expected and close


def replay(
    worker: Worker,
    seed: int,
    actions: np.ndarray,
    on_step: Callable[[Any], None] | None = None,
) -> tuple[Any, float]:
    """Reset with ``seed``, take ``actions``; return the final cell and the summed reward."""
    env = worker.env
    env.reset(seed)
    if on_step is not None:
        on_step(env)
    score = 0.0
    for a in actions:
        reward, _, _ = env.step(a)
        score += reward
        if on_step is not None:
            on_step(env)
    return worker.cell_fn(env), score


def check(
    worker: Worker,
    seed: int,
    tree: TrajectoryTree,
    entries: Iterable[Entry],
    sources: Mapping[int, bytes] | None = None,
) -> Iterable[Replayed]:
    """Replay each entry; yield what it reached.

    A novelty cell is a region around its first state, and its entry holds the best state in
    that region: that state's own key is stored as the entry's source and is what must recur.
    """
    state_key = getattr(worker.cell_fn, "state_key", None)
    for e in entries:
        cell, score = replay(worker, seed, tree.actions(e.node, e.length))
        expected = e.cell
        if state_key is not None and sources is not None and e.snap in sources:
            expected = state_key(sources[e.snap])
        yield Replayed(e, cell, score, expected)


def write_gif(frames: list[np.ndarray], path: str, fps: int = 30) -> None:
    """Write RGB frames as an animated GIF (with Pillow)."""
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps), loop=0)
