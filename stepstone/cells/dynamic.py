"""Dynamic downscaling: the downscaled-frame cell whose width, height and levels adapt.

"First return, then explore" (Ecoffet et al. 2021, Methods, "Downscaling on Atari"): a fixed
11 x 8 x 8 cell is too coarse early and too fine later, so the parameters are re-chosen from a
sample of recent frames. What follows is the released code (github.com/uber-research/
go-explore, ``robustified/``), run as ``phase1_downscaled.sh`` for Montezuma's Revenge and
Pitfall without domain knowledge; "steps" there are agent steps of ``{game}Deterministic-v4``,
4 frames each, and the frame counts below are frames (``Result.frames``).

* Sample (``goexplore.py``, ``Explore.run_cycle`` and ``RotatingSet``): each step of an
  exploration adds its frame with probability ``recent_frame_add_prob`` 0.01 to a set of at most
  ``max_recent_frames`` 10,000 *distinct* frames, the oldest leaving when it is full. The sample
  is emptied after each choice, so a choice sees only frames found since the previous one.
* Objective (``Explore.try_split_frames``): a candidate (w, h, d) splits the n sampled frames
  into cells with shares p; its score is ``H(p) / log(#cells) / sqrt(|#cells - T| / T + 1)``
  with ``T = cell_split_factor * n``, factor 0.125: frames spread evenly over about T cells.
* Search (same function): ``split_iterations`` 3,000 distinct candidates, each drawn around the
  best so far, width ~ Geometric(min(1 / (w + 1), 20 / 160)) in [1, 159], height the same with
  210 rows, levels ~ Geometric(min(1 / d, 1 / 12)) in [2, 255]; a candidate that scores at
  least as well becomes the best.
* Schedule (``Explore.maybe_split_dynamic_state``; main.py's arguments): first choice once the
  run passes ``first_compute_dynamic_state`` 10,000 steps (40k frames), then every
  ``recompute_dynamic_state_every`` 10M steps (40M frames) or whenever the archive exceeds
  ``max_archive_size`` 50,000 cells; every archive held so far is then re-keyed.

Departures, the first two for a machine of a few cores, where 40M frames is a whole run:

* **The first choice does not stand for 40M frames.** The reference chooses from the ~100 frames
  sampled in its first 10k steps and keeps that for 10M steps, 2% of its 2B-frame runs. Here
  the shape is re-chosen each time the run's frames double (the sample doubling with them)
  until the interval reaches the reference's 40M frames: a shape chosen after n frames is kept
  for at most n more. (Issue 20: a shape chosen at 16k frames from a reservoir of ~100 frames
  kept Montezuma at 25 cells and 1 room for 10M frames.)
* 300 search iterations instead of 3,000, and the search starts from the current shape, not a
  random one (a random shape such as 159 x 209 costs ~100x a small one to evaluate); each
  candidate is scored on the keys the archive will use (``Downscale.key_of``), ~20 us a frame.
  Measured on 2,000 frames of three 100M-frame Montezuma runs (bench/shape_search.py): the
  reference's search scores 0.02-0.05 higher at 5-16 times the time, and its shapes keep no
  more rooms when the archive is re-keyed to them (bench/README.md).
* The reference keeps every former archive and re-keys them all, so that a finer shape splits
  what a coarser one merged; here the entries that lose their cell at a re-key are kept aside
  (``Archive.rekey``), with their trajectories, and re-keyed with the archive at every later
  choice, without a copy of the archive per choice (an entry improved within its cell is
  replaced, as within one of the reference's archives).
* Frames larger than Atari's 210 x 160 (a rendered 400 x 600 CartPole) are judged at about that
  area (``downscale.fit``): the reference only meets Atari frames, and a full sample of such
  frames would take gigabytes at each choice.

Before the first choice the reference puts every state in one cell and drops what it found.
Here a new run's first shape is chosen before it explores on, with every step sampled, from
``first_sample`` / ``explore_steps`` ordinary explorations from the start (ten: 1,000 steps at
most, fewer where a lost life ends them; runner.first_choice), the schedule above following
from there. A shape fixed in advance (11 x 8 x 8, used until 2026-12-06 and still the start
when ``first_sample=0`` or a width, height or levels is given) put all of Centipede's
near-black frames in one cell, whose best-scoring state was two steps before a lost life:
every later exploration was two steps long and the run stayed at one cell.
Levels are ``Downscale``'s (L bins of width 256 / L), the reference's ``max_pix_value`` d gives
d bins of 255 / d plus one for pure white; the two agree but for that top bin.
"""

from __future__ import annotations

import math
import zlib
from collections import Counter
from typing import Any

import numpy as np

from .base import AdaptiveCells, grayscale, need_picture
from .downscale import Downscale, fit, picture_text
from .schedule import Schedule


def score(counts: np.ndarray, target: float) -> float:
    """Normalised entropy of the cell distribution, penalised for missing the target count
    (reference ``Explore.try_split_frames``, ``get_dist_score``)."""
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
        width: int | None = None,
        height: int | None = None,
        levels: int | None = None,
        first_sample: int | None = None,
        split_factor: float = 0.125,
        iterations: int = 300,
        sample_prob: float = 0.01,
        max_samples: int = 10_000,
        first_update: int = 40_000,
        update_every: int = 40_000_000,
        max_cells: int = 50_000,
    ):
        if not 0 < split_factor <= 1 or not 0 < sample_prob <= 1:
            raise ValueError("split_factor and sample_prob must be in (0, 1]")
        if min(iterations, max_samples, first_update, update_every, max_cells) < 1:
            raise ValueError(
                "iterations, max_samples, first_update, update_every, max_cells must be >= 1"
            )
        given = (width, height, levels) != (None, None, None)
        if first_sample is None:  # a starting shape given is used, not chosen over at once
            first_sample = 0 if given else 1_000
        if first_sample < 0:
            raise ValueError("first_sample must be >= 0")
        self._down = Downscale(  # by default fixed downscaling's 11 x 8 x 8
            11 if width is None else width, 8 if height is None else height,
            8 if levels is None else levels,
        )  # fmt: skip
        self.first_sample = first_sample
        self.split_factor = split_factor
        self.iterations = iterations
        self.sample_prob = sample_prob
        self.max_samples = max_samples
        self.first_update = first_update
        self.update_every = update_every
        self.max_cells = max_cells

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> DynamicDownscale:
        need_picture(env, "dynamic")
        return cls(**params)

    # -- the cell function (runs in workers) --------------------------------------------------
    @property
    def shape(self) -> tuple[int, int, int]:
        d = self._down
        return (d.width, d.height, d.levels)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            self._down = Downscale(*shape)

    def shape_text(self, shape: tuple[int, ...]) -> str:
        return picture_text(shape)

    def __call__(self, env: Any) -> bytes:
        return self._down.key_of(grayscale(env))

    def source(self, env: Any) -> bytes:
        """The frame this cell was computed from, compressed, for re-keying later."""
        return encode_frame(grayscale(env))

    def key_from_source(self, source: bytes) -> bytes:
        return self._down.key_of(decode_frame(source))

    def decode(self, source: bytes) -> np.ndarray:
        return fit(decode_frame(source))

    # -- choosing parameters (runs in the driver) ---------------------------------------------
    def due(self, frames: int, last_update: int | None, cells: int) -> bool:
        """The reference's schedule, with the interval doubling from ``first_update`` up to
        ``update_every`` (see the module's docstring)."""
        if last_update is None:
            return frames >= self.first_update
        interval = min(max(last_update, self.first_update), self.update_every)
        return frames - last_update >= interval or cells > self.max_cells

    def choose(self, frames: list[np.ndarray], rng: np.random.Generator) -> tuple[int, int, int]:
        """Stochastic local search for the (width, height, levels) with the best score."""
        if len(frames) < 2:
            return self.shape
        h_max, w_max = frames[0].shape
        target = self.split_factor * len(frames)

        def evaluate(shape: tuple[int, int, int]) -> float:
            down = Downscale(*shape)
            counts = Counter(down.key_of(f) for f in frames)
            return score(np.fromiter(counts.values(), dtype=np.float64), target)

        best = self.shape
        best_score = evaluate(best)
        tried = {best}
        for _ in range(self.iterations):
            cand = best
            for _ in range(1000):  # the reference draws until the candidate is new
                if cand not in tried:
                    break
                w, h, d = best
                cand = (
                    _geometric(rng, w, w_max),
                    _geometric(rng, h, h_max),
                    _geometric_levels(rng, d),
                )
            else:  # (nearly) every neighbour tried: a tiny frame
                break
            tried.add(cand)
            s = evaluate(cand)
            if s >= best_score:
                best, best_score = cand, s
        return best


def _geometric(rng: np.random.Generator, current: int, size: int) -> int:
    """A size near ``current``: Geometric(min(1 / (current + 1), 20 / size)) in [1, size - 1]
    (the frame is ``size`` pixels along this axis)."""
    p = min(1.0 / (current + 1), 20.0 / size)
    while True:
        v = int(rng.geometric(p))
        if 1 <= v <= size - 1:
            return v


def _geometric_levels(rng: np.random.Generator, current: int) -> int:
    """Levels near ``current``: Geometric(min(1 / current, 1 / 12)) in [2, 255]."""
    p = min(1.0 / current, 1.0 / 12)
    while True:
        v = int(rng.geometric(p))
        if 2 <= v <= 255:
            return v


def encode_frame(frame: np.ndarray) -> bytes:
    """A 2-D uint8 frame, compressed, with its shape (``decode_frame`` reads it back)."""
    h, w = frame.shape
    tag = h.to_bytes(2, "little") + w.to_bytes(2, "little")
    return zlib.compress(np.ascontiguousarray(frame).tobytes(), 1) + tag


def decode_frame(source: bytes) -> np.ndarray:
    h = int.from_bytes(source[-4:-2], "little")
    w = int.from_bytes(source[-2:], "little")
    return np.frombuffer(zlib.decompress(source[:-4]), dtype=np.uint8).reshape(h, w)


class DynamicSchedule(Schedule):
    """Dynamic downscaling's schedule: the cells' own ``due`` and no stored sample.

    The sample (up to 10,000 frames) is not kept across sessions, as the reference's is not:
    a resumed run samples from where it resumed and counts its next interval from there, as
    the reference refills its sample before going on (main.py, the --seed_path branch), so no
    choice comes from a session's first frames.
    """

    def __init__(
        self, cells: AdaptiveCells, engine: Any, saved: dict | None = None, stored: Any = None
    ):
        super().__init__(cells, engine, saved)  # ``stored`` ignored: the sample stays in memory
        self.sampled_from = engine.frames

    def due(self) -> bool:
        e, last = self.engine, self.last_update
        if last is not None and last < self.sampled_from:
            last = self.sampled_from
        return self.cells.due(e.frames, last, len(e.archive))
