"""Per-dimension bins for vector observations, chosen as dynamic downscaling chooses frames.

Dimension ``d`` of an observation falls in bin ``floor(x_d * 2**bits_d)``: ``bits_d`` binary
digits after the point (3: bins of 1/8; -2: bins of 4; ``OFF``: the dimension is ignored).
Rounding to one decimal fits some tasks and not others (CartPole's 34,579 cells in 100k steps,
MountainCar's 43 cells without the velocity), so the bits are re-chosen during the run from a
sample of recent states with Go-Explore's objective for dynamic downscaling ("First return,
then explore", Ecoffet et al. 2021, Methods, "Downscaling on Atari"; the reference code's
``try_split_frames`` in uber-research/go-explore, robustified/goexplore_py/goexplore.py):

    normalised_entropy(p) / sqrt(|n - T| / T + 1),   T = split_factor * len(sample)

(``dynamic.score``). The reference searches (width, height, levels) by a stochastic local
search; here each dimension is first measured in its own spread over the sample and one
resolution is searched for all (as downscaling shrinks width and height together), then each
dimension moves a bit finer or coarser while that scores better: few candidates, no chance
involved, so a resumed run chooses what the uninterrupted one chose from the same sample.

Observations with parts (dicts, tuples) are cells by their parts: every float dimension of
every part gets its own bits, concatenated in the parts' order into one shape and chosen
jointly, since the objective counts joint cells; non-float parts (a Discrete position, a
string, an integer grid) are kept as themselves, as ``observation`` cells keep them.

Schedule (``due``, cells/schedule.py): the reference first re-chooses after 10k frames and
then every 10M (phase1_downscaled.sh), with 1% of frames sampled, a few hundred frames at the
first choice. A vector state costs a few bytes, so here a quarter of the steps is sampled; the
first choice needs ``min_samples`` states, each later one a full sample (``max_samples``), and
re-choices follow a geometric schedule (each after twice the frames of the previous) or come
when the archive has doubled: an early choice from a small sample is soon replaced, later ones
stand longer.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np

from .. import codec
from .base import AdaptiveCells, CellFn
from .dynamic import score
from .observation import freeze

# bits of a dimension that is ignored (every value in one bin).
OFF = -128
# Bins of 1/8 until the first choice: about the old default's rounding to one decimal.
START_BITS = 3
# Odd 64-bit multipliers that fold a row of bin indices into one integer when counting the
# cells of a candidate (a collision only blurs a count, it never reaches a key).
_MIX = np.random.default_rng(20261201).integers(1, 2**63, size=4096, dtype=np.int64) | 1


def _is_float(value: Any) -> bool:
    return isinstance(value, float) or np.asarray(value).dtype.kind == "f"


def _leaves(obs: Any) -> list:
    """The observation's parts in a fixed order (dict keys sorted, tuples in order)."""
    if isinstance(obs, dict):
        return [leaf for k in sorted(obs) for leaf in _leaves(obs[k])]
    if isinstance(obs, (tuple, list)):
        return [leaf for o in obs for leaf in _leaves(o)]
    return [obs]


def split(obs: Any) -> tuple[np.ndarray, tuple]:
    """The observation's float dimensions (float64) and its other parts, frozen."""
    if not isinstance(obs, (dict, tuple, list)) and _is_float(obs):  # a Box: the hot path
        return np.asarray(obs, dtype=np.float64).ravel(), ()
    floats, fixed = [], []
    for leaf in _leaves(obs):
        if _is_float(leaf):
            floats.append(np.asarray(leaf, dtype=np.float64).ravel())
        else:
            fixed.append(freeze(leaf, 0))
    vector = np.concatenate(floats) if floats else np.zeros(0, dtype=np.float64)
    return vector, tuple(fixed)


def dimensions(obs: Any) -> int:
    """How many float dimensions an observation has (0: nothing to bin)."""
    return len(split(obs)[0])


def scales(bits: Sequence[int]) -> np.ndarray:
    """2**bits per dimension, 0 where a dimension is ``OFF``."""
    return np.array([0.0 if b == OFF else math.ldexp(1.0, b) for b in bits], dtype=np.float64)


class Bins(CellFn):
    """Cell = the float dimensions' bin indices (``floor(x * 2**bits)``) and the other parts,
    as one tuple.

    Args:
        bits: binary digits per float dimension (``OFF`` or None: the dimension is ignored).
    """

    def __init__(self, bits: Sequence[int | None]):
        self.bits = [_bit(b) for b in bits]
        self._scale = scales(self.bits)

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> Bins:
        return cls(_pinned(params.pop("bits"), dimensions(env.observe())), **params)

    def key_of(self, floats: np.ndarray, fixed: tuple) -> Hashable:
        if len(floats) != len(self._scale):
            raise ValueError(f"an observation with {len(floats)} float dimensions, not "
                             f"{len(self._scale)}")  # fmt: skip
        # A tuple of ints: readable in reports and the archive map, numbers to selectors.
        return (*np.floor(floats * self._scale).astype(np.int64).tolist(), *fixed)

    def __call__(self, env: Any) -> Hashable:
        return self.key_of(*split(env.observe()))


def _bit(b: int | None) -> int:
    if b is None:
        return OFF
    if not isinstance(b, int) or not (OFF <= b <= 60):
        raise ValueError(f"bits must be integers from -60 to 60 or null, not {b!r}")
    return b


def _pinned(bits: Any, n: int) -> list[int]:
    """The user's ``bits`` (one value, or one per float dimension) as n values."""
    if isinstance(bits, int) or bits is None:
        return [_bit(bits)] * n
    if not isinstance(bits, (list, tuple)) or len(bits) != n:
        raise ValueError(f"bits takes one integer or a list of {n} (one per float dimension), "
                         f"not {bits!r}")  # fmt: skip
    return [_bit(b) for b in bits]


class AdaptiveBins(AdaptiveCells):
    """Per-dimension bins re-chosen during the run from a sample of recent states.

    ``--cell-param bits=N`` (or a list) pins the bins instead (``Bins``). The shape is the
    bits per float dimension; before the first choice, ``START_BITS`` for every dimension.
    (The reference code starts with a single cell; outside Atari that cell's best entry is
    often where an episode ended, and every exploration from it is one step long.)
    """

    def __init__(
        self,
        dims: int,
        split_factor: float = 0.125,
        sample_prob: float = 0.25,
        max_samples: int = 4_000,
        min_samples: int = 500,
        first_update: int = 2_000,
        growth: float = 2.0,
        sweeps: int = 8,
    ):
        if dims < 1:
            raise ValueError("the observation has no float dimensions to bin")
        if not (0 < split_factor <= 1 and 0 < sample_prob <= 1 and growth > 1):
            raise ValueError("need 0 < split_factor <= 1, 0 < sample_prob <= 1, growth > 1")
        self.split_factor = split_factor
        self.sample_prob = sample_prob
        self.max_samples = max_samples
        self.min_samples = max(2, min_samples)
        self.first_update = first_update
        self.growth = growth
        self.sweeps = sweeps
        self._bins = Bins([START_BITS] * dims)

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> CellFn:
        if "bits" in params:
            return Bins.from_env(env, **params)
        return cls(dimensions(env.observe()), **params)

    # -- the cell function (runs in workers) --------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self._bins.bits)

    def set_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) != self.shape:
            self._bins = Bins([int(b) for b in shape])

    def __call__(self, env: Any) -> Hashable:
        return self._bins.key_of(*split(env.observe()))

    def source(self, env: Any) -> bytes:
        """The state's float dimensions (their count, then float64 bytes) and other parts
        (codec.py, data only): taken at every new cell, so kept cheap."""
        floats, fixed = split(env.observe())
        head = len(floats).to_bytes(4, "little") + floats.tobytes()
        return head + codec.pack(fixed) if fixed else head

    def decode(self, source: bytes) -> tuple[np.ndarray, tuple]:
        n = int.from_bytes(source[:4], "little")
        floats = np.frombuffer(source, dtype=np.float64, count=n, offset=4)
        rest = source[4 + 8 * n :]
        return floats, tuple(codec.unpack(rest)) if rest else ()

    def key_from_source(self, source: bytes) -> Hashable:
        return self._bins.key_of(*self.decode(source))

    # -- choosing the bins (runs in the driver) -----------------------------------------------
    def due(self, frames: int, last_update: int | None, cells: int) -> bool:
        """Geometric in frames: first at ``first_update``, then each at twice the last
        (cells/schedule.py adds the sample's minimum and the archive's growth)."""
        if last_update is None:
            return frames >= self.first_update
        return frames >= max(2 * last_update, self.first_update)

    def choose(self, sources: list, rng: np.random.Generator) -> tuple[int, ...]:
        """The bits that score best on the sampled states (``sources``: ``decode``'s pairs).

        Each dimension is measured in its own spread over the sample (bits ``r - e_d`` where
        ``2**e_d`` is the largest power of two up to its standard deviation), so one resolution
        ``r`` is searched first for all dimensions (as downscaling scales a frame's width and
        height together); then each dimension moves a step finer or coarser while that scores
        better. A dimension constant in the sample is ``OFF``: nothing says how to cut it.
        """
        if len(sources) < 2:
            return self.shape
        x = np.stack([s[0] for s in sources])
        if x.shape[1] != len(self.shape):
            raise ValueError(f"sampled states have {x.shape[1]} float dimensions, not "
                             f"{len(self.shape)}")  # fmt: skip
        ids: dict[tuple, int] = {}
        fixed = np.array([ids.setdefault(s[1], len(ids)) for s in sources], dtype=np.int64)
        target = max(1.0, self.split_factor * len(sources))
        evaluate = _objective(x, fixed, target)
        exponents = [_exponent(x[:, d]) for d in range(x.shape[1])]
        if all(e is None for e in exponents):
            return self.shape

        def at(r: int) -> list[int]:
            return [OFF if e is None else max(-60, min(60, r - e)) for e in exponents]

        best, best_score = at(-3), evaluate(at(-3))
        for r in range(-2, math.ceil(math.log2(len(sources))) + 4):  # coarse to fine
            cand = at(r)
            if (s := evaluate(cand)) > best_score + 1e-12:
                best, best_score = cand, s
        for _ in range(self.sweeps):
            changed = False
            for d, b in enumerate(list(best)):
                for step in (-1, 1):
                    if b == OFF or not -60 <= b + step <= 60:
                        continue
                    cand = best.copy()
                    cand[d] = b + step
                    if (s := evaluate(cand)) > best_score + 1e-12:
                        best, best_score, changed = cand, s, True
                        break
            if not changed:
                break
        return tuple(best)


def _exponent(v: np.ndarray) -> int | None:
    """floor(log2(standard deviation)) of the finite values, None when they do not vary."""
    v = v[np.isfinite(v)]
    sd = float(v.std()) if len(v) > 1 else 0.0
    return math.floor(math.log2(sd)) if sd > 0 else None


def _objective(x: np.ndarray, fixed: np.ndarray, target: float):
    """The score (``dynamic.score``) of the cells the sample ``x`` falls into under bits."""
    base = fixed * _MIX[-1]
    cache: dict[tuple[int, int], np.ndarray] = {}

    def column(d: int, b: int) -> np.ndarray:
        if (d, b) not in cache:
            with np.errstate(invalid="ignore", over="ignore"):
                cache[d, b] = np.floor(x[:, d] * scales([b])[0]).astype(np.int64)
        return cache[d, b]

    def evaluate(bits: list[int]) -> float:
        h = base.copy()
        for d, b in enumerate(bits):
            if b != OFF:
                h += column(d, b) * _MIX[d % (len(_MIX) - 1)]
        _, counts = np.unique(h, return_counts=True)
        return score(counts.astype(np.float64), target)

    return evaluate
