"""Replaying stored trajectories from their seed, to check them and to watch them.

The archive's promise is that every entry's (seed, actions) reaches its cell with its score
from a plain reset, with no snapshot involved. ``check`` verifies that promise entry by entry;
``draw`` shows a trajectory as the environment renders it, for a GIF.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import numpy as np

from . import envs
from .archive import Entry
from .cells import DriverDecidedCells
from .config import ExploreConfig
from .errors import ConfigError
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


def replay(worker: Worker, seed: int, actions: np.ndarray) -> tuple[Any, float]:
    """Reset with ``seed``, take ``actions``; return the final cell and the summed reward."""
    env = worker.env
    env.reset(seed)
    score = 0.0
    for a in actions:
        reward, _, _ = env.step(a)
        score += reward
    return worker.key(worker.cell_fn(env), score), score


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
    cell_fn = worker.cell_fn
    for e in entries:
        cell, score = replay(worker, seed, tree.actions(e.node, e.length))
        expected = e.cell
        if isinstance(cell_fn, DriverDecidedCells) and sources is not None and e.snap in sources:
            expected = cell_fn.state_key(sources[e.snap])
        yield Replayed(e, cell, score, expected)


def draw(config: ExploreConfig, actions: np.ndarray, score: float) -> list[np.ndarray]:
    """The trajectory as the environment draws it: one RGB frame after reset and one after
    each action, from an environment of its own made with ``render_mode="rgb_array"``.

    Why not the observation: it is a picture only on Atari (FrozenLake's is a number,
    MiniGrid's a dict of symbols, CartPole's four floats). Raises ConfigError, in one line,
    when the environment cannot draw, or draws a run other than the archived one.
    """
    name = config.env
    spec = envs.EnvSpec(config.env, config.seed, imports=config.imports)
    try:
        with warnings.catch_warnings():  # gymnasium's warning of a missing mode is said below
            warnings.filterwarnings("ignore", message=".*render_mode")
            env = envs.gymnasium_env(spec, render_mode="rgb_array")
    except Exception as e:  # an environment without a render_mode argument raises TypeError
        raise ConfigError(
            f"{name} cannot draw frames ({_first_line(e)}); replay without --gif"
        ) from None
    if env is None or "rgb_array" not in env.metadata.get("render_modes", ()):
        raise ConfigError(
            f"{name} cannot draw frames (it has no render_mode 'rgb_array'); replay without --gif"
        )
    try:
        env.reset(seed=config.seed)
        frames, total = [env.render()], 0.0
        for a in actions:
            total += float(env.step(a)[1])
            frames.append(env.render())
    except Exception as e:  # renderers fail in many ways: no pygame, no OpenGL context
        raise ConfigError(
            f"{name} could not draw a frame ({_first_line(e)}); replay without --gif"
        ) from None
    finally:
        env.close()
    if not all(isinstance(f, np.ndarray) and f.ndim == 3 for f in frames):
        raise ConfigError(f"{name} returned no RGB frames from render(); replay without --gif")
    if not math.isclose(total, score, rel_tol=1e-9, abs_tol=1e-9):
        raise ConfigError(
            f"{name} made with render_mode='rgb_array' gave a return of {total:g}, not the "
            f"trajectory's {score:g}: its drawing would show another run, so none was written"
        )
    return cast(list[np.ndarray], frames)  # each checked above to be an RGB array


def _first_line(e: Exception) -> str:
    return (str(e).strip().splitlines() or [type(e).__name__])[0]


def write_gif(frames: list[np.ndarray], path: str, fps: int = 25) -> None:
    """Write RGB frames as an animated GIF (Pillow, a core dependency).

    A GIF counts time in hundredths of a second and Pillow merges a frame equal to the one
    before into it (adding the durations), so the default 25 fps (40 ms) keeps every step's
    share of the time exact.
    """
    from PIL import Image

    images = [Image.fromarray(np.asarray(f, dtype=np.uint8)) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=1000 // fps, loop=0)
