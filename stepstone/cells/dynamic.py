"""Dynamic downscaling: the downscaled-frame cell whose width, height and levels adapt.

"First return, then explore" (Ecoffet et al. 2021, Methods, "Downscaling on Atari"): fixed
11 x 8 x 8 cells are too coarse early and too fine later, so the parameters are re-chosen from
a sample of recent frames. A candidate (w, h, d) splits the sample into n cells with frequency
distribution p; its score is

    normalised_entropy(p) / sqrt(|n - T| / T + 1),   T = split_factor * len(sample)

so the chosen representation spreads frames evenly over about T cells. Candidates come from a
stochastic local search around the best so far (geometric proposals, as in the reference
implementation). After a change the archive is re-keyed from each entry's stored frame.

Defaults follow the reference run script for Montezuma (phase1_downscaled.sh): split factor
0.125, first recompute after 10k frames, then every 10M frames or when the archive passes 50k
cells, 10k recent frames sampled with probability 0.01 per step. The search runs 300
iterations instead of 3,000, sized for a 2-core machine (~30 s per recompute).
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from typing import Any

import numpy as np

from .base import AdaptiveCells, grayscale
from .downscale import Downscale


def score(counts: np.ndarray, target: float) -> float:
    """Normalised entropy of the cell distribution, penalised for missing the target count."""
    n = len(counts)
    if n <= 1:
        return 0.0
    p = counts / counts.sum()
    entropy = -float((p * np.log(p)).sum()) / math.log(n)
    return entropy / math.sqrt(abs(n - target) / target + 1)


class DynamicDownscale(AdaptiveCells):
    """Downscaled-frame cells whose parameters are re-chosen during the run."""

    def __init__(
        self,
        width: int = 11,
        height: int = 8,
        levels: int = 8,
        split_factor: float = 0.125,
        iterations: int = 300,
        sample_prob: float = 0.01,
        max_samples: int = 10_000,
        first_update: int = 10_000,
        update_every: int = 10_000_000,
        max_cells: int = 50_000,
    ):
        self._down = Downscale(width, height, levels)
        self.split_factor = split_factor
        self.iterations = iterations
        self.sample_prob = sample_prob
        self.max_samples = max_samples
        self.first_update = first_update
        self.update_every = update_every
        self.max_cells = max_cells

    # -- the cell function (runs in workers) --------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        d = self._down
        return (d.width, d.height, d.levels)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            self._down = Downscale(*shape)

    def __call__(self, env: Any) -> bytes:
        return self._down.key_of(grayscale(env))

    def source(self, env: Any) -> bytes:
        """The frame this cell was computed from, compressed, for re-keying later."""
        frame = grayscale(env)
        return zlib.compress(np.ascontiguousarray(frame).tobytes(), 1) + _shape_tag(frame)

    def key_from_source(self, source: bytes) -> bytes:
        return self._down.key_of(decode_frame(source))

    # -- choosing parameters (runs in the driver) ---------------------------------------------
    def due(self, frames: int, last_update: int | None, cells: int) -> bool:
        if last_update is None:
            return frames >= self.first_update
        return frames - last_update >= self.update_every or cells > self.max_cells

    def choose(self, frames: list[np.ndarray], rng: np.random.Generator) -> tuple[int, int, int]:
        """Stochastic local search for the (width, height, levels) with the best score."""
        if len(frames) < 2:
            return self.shape
        h_max, w_max = frames[0].shape
        target = max(1.0, self.split_factor * len(frames))

        def evaluate(shape: tuple[int, int, int]) -> float:
            down = Downscale(*shape)
            counts = Counter(down.key_of(f) for f in frames)
            return score(np.fromiter(counts.values(), dtype=np.float64), target)

        best = self.shape
        best_score = evaluate(best)
        tried = {best}
        for _ in range(self.iterations):
            w, h, d = best
            cand = (
                _geometric(rng, w, w_max - 1),
                _geometric(rng, h, h_max - 1),
                _geometric_levels(rng, d),
            )
            if cand in tried:
                continue
            tried.add(cand)
            s = evaluate(cand)
            if s >= best_score:
                best, best_score = cand, s
        return best


def _geometric(rng: np.random.Generator, current: int, upper: int) -> int:
    """A size near ``current``: geometric with mean ~current + 1, kept in [1, upper]."""
    p = min(1.0 / (current + 1), 20.0 / upper)
    while True:
        v = int(rng.geometric(p))
        if 1 <= v <= upper:
            return v


def _geometric_levels(rng: np.random.Generator, current: int) -> int:
    p = min(1.0 / current, 1.0 / 12)
    while True:
        v = int(rng.geometric(p))
        if 2 <= v <= 255:
            return v


def _shape_tag(frame: np.ndarray) -> bytes:
    h, w = frame.shape
    return h.to_bytes(2, "little") + w.to_bytes(2, "little")


def decode_frame(source: bytes) -> np.ndarray:
    h = int.from_bytes(source[-4:-2], "little")
    w = int.from_bytes(source[-2:], "little")
    return np.frombuffer(zlib.decompress(source[:-4]), dtype=np.uint8).reshape(h, w)


class RecentFrames:
    """A bounded sample of recent frames: once full, each new frame replaces a random old one."""

    def __init__(self, capacity: int, seed: int = 0):
        self.capacity = capacity
        self.items: list[bytes] = []
        self.rng = np.random.default_rng(seed)

    def extend(self, frames: list[bytes]) -> None:
        for f in frames:
            if len(self.items) < self.capacity:
                self.items.append(f)
            else:
                self.items[int(self.rng.integers(self.capacity))] = f

    def decoded(self) -> list[np.ndarray]:
        return [decode_frame(f) for f in self.items]


class DynamicSchedule:
    """Re-chooses the parameters of dynamic cells during a run, in the driver: samples recent
    frames from results and, when due, picks new parameters and re-keys the engine's archive.

    ``engine`` is an :class:`~stepstone.engine.Engine` built with a ``cell_shape``;
    ``last_update`` the frame count of the previous change (None: none yet).
    """

    def __init__(self, cells: AdaptiveCells, engine: Any, last_update: int | None, seed: int):
        self.cells = cells
        self.engine = engine
        assert engine.cell_shape is not None  # the runner builds the engine with one
        self.cells.set_shape(engine.cell_shape)
        self.last_update = last_update
        self.recent = RecentFrames(self.cells.max_samples, seed=seed)

    def maybe_update(self) -> bool:
        e = self.engine
        if not self.cells.due(e.frames, self.last_update, len(e.archive)):
            return False
        rng = np.random.default_rng([e.frames, len(e.archive)])
        shape = self.cells.choose(self.recent.decoded(), rng)
        self.cells.set_shape(shape)
        e.rekey(shape, self.cells.key_from_source)
        self.last_update = e.frames
        self.recent.items.clear()
        return True

    def describe(self) -> str:
        w, h, d = self.engine.cell_shape
        return f"{w}x{h} with {d} levels, {len(self.engine.archive)} cells"

    def extra(self) -> dict:
        """What the run directory keeps of the schedule (``extra:cell_update_frame``)."""
        return {"cell_update_frame": self.last_update}
