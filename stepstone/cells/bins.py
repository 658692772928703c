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
Where every dimension at once leaves most states in cells of their own (a robot's many
joints), the dimensions that score best are taken one at a time and the others ignored.

Observations with parts (dicts, tuples) are cells by their parts: every float dimension of
every part gets its own bits, and every picture part (``base.is_image``: a rendered frame beside
a state vector) a downscaled frame's width, height and levels, all in one shape chosen jointly,
since the objective counts joint cells; other parts (a Discrete position, a string, an integer
grid) are kept as themselves, as ``observation`` cells keep them. (Before ``auto``'s version 4
a picture part was kept as itself too, a cell a frame: ``pictures="exact"`` keeps that.)

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
from collections import Counter
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np

from .. import codec
from .base import AdaptiveCells, CellFn, is_image, to_gray
from .downscale import Downscale, fit, picture_text
from .dynamic import decode_frame, encode_frame, score
from .observation import freeze

# bits of a dimension that is ignored (every value in one bin).
OFF = -128
# Bins of 1/8 until the first choice: about the old default's rounding to one decimal.
START_BITS = 3
# A picture part until the first choice: fixed downscaling's 11 x 8 x 8 (cells/downscale.py).
START_FRAME = (11, 8, 8)
# Float dimensions refined one at a time up to this many; beyond, one resolution for all. A
# sweep tries every dimension: at 1,024 (uniform noise) one choice took 6 s on 500 states,
# and a 64 x 64 x 3 float picture's 12,288 would take hours.
SWEEP_DIMS = 256
# The coarsest resolution searched: bins two to four standard deviations wide (``choose``).
COARSEST = -2
# Dimensions tried at each step of choosing a few (``_fewer_dimensions``); beyond, a random
# subset of this many.
PICK_FROM = 1_024
# A shape's text lists each dimension's bits up to this many, then counts them (``shape_text``).
LISTED = 16
# The sample's float dimensions are kept under this many bytes (``max_samples`` shrinks).
SAMPLE_BYTES = 16 * 2**20
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


def float_parts(obs: Any, name: str = "") -> list[tuple[str, int]]:
    """Each float part of a dict or tuple observation, named by its key (or index) path, with
    its number of dimensions, in ``split``'s order; a plain array is one unnamed part."""
    if isinstance(obs, dict):
        return [p for k in sorted(obs) for p in float_parts(obs[k], f"{name}.{k}" if name else k)]
    if isinstance(obs, (tuple, list)):
        return [p for i, o in enumerate(obs) for p in float_parts(o, f"{name}[{i}]")]
    return [(name, int(np.size(obs)))] if _is_float(obs) else []


def split(obs: Any, pictures: bool = True) -> tuple[np.ndarray, tuple, tuple]:
    """The observation's float dimensions (float64), its pictures (2-D uint8; with
    ``pictures=False`` they are other parts) and its other parts, frozen."""
    if not isinstance(obs, (dict, tuple, list)) and _is_float(obs):  # a Box: the hot path
        return np.asarray(obs, dtype=np.float64).ravel(), (), ()
    floats, frames, fixed = [], [], []
    for leaf in _leaves(obs):
        if _is_float(leaf):
            floats.append(np.asarray(leaf, dtype=np.float64).ravel())
        elif pictures and is_image(leaf):
            frames.append(to_gray(leaf))
        else:
            fixed.append(freeze(leaf, 0))
    vector = np.concatenate(floats) if floats else np.zeros(0, dtype=np.float64)
    return vector, tuple(frames), tuple(fixed)


def dimensions(obs: Any, pictures: bool = True) -> tuple[int, int]:
    """How many float dimensions and pictures an observation has ((0, 0): nothing to cut)."""
    floats, frames, _ = split(obs, pictures)
    return len(floats), len(frames)


def scales(bits: Sequence[int]) -> np.ndarray:
    """2**bits per dimension, 0 where a dimension is ``OFF``."""
    return np.array([0.0 if b == OFF else math.ldexp(1.0, b) for b in bits], dtype=np.float64)


def _mode(pictures: str) -> bool:
    """``pictures``: "downscale" (a shape each, the default) or "exact" (a cell a frame)."""
    if pictures not in ("downscale", "exact"):
        raise ValueError(f'pictures is "downscale" or "exact", not {pictures!r}')
    return pictures == "downscale"


class Bins(CellFn):
    """Cell = the float dimensions' bin indices (``floor(x * 2**bits)``), the pictures
    downscaled and the other parts, as one tuple.

    Args:
        bits: binary digits per float dimension (``OFF`` or None: the dimension is ignored).
        frames: (width, height, levels) per picture part (``Downscale``).
        pictures: "downscale", or "exact": picture parts are other parts.
    """

    def __init__(
        self,
        bits: Sequence[int | None],
        frames: Sequence[Sequence[int]] = (),
        pictures: str = "downscale",
    ):
        self.bits = [_bit(b) for b in bits]
        self._scale = scales(self.bits)
        self.frames = [tuple(int(v) for v in f) for f in frames]
        self._down = [Downscale(*f) for f in self.frames]
        self.downscaled = _mode(pictures)

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> Bins:
        """``bits`` pinned; picture parts at fixed downscaling's 11 x 8 x 8."""
        pictures = params.pop("pictures", "downscale")
        n, k = dimensions(env.observe(), _mode(pictures))
        return cls(_pinned(params.pop("bits"), n), [START_FRAME] * k, pictures, **params)

    def key_of(self, floats: np.ndarray, frames: tuple, fixed: tuple) -> Hashable:
        if len(floats) != len(self._scale) or len(frames) != len(self._down):
            raise ValueError(f"an observation with {len(floats)} float dimensions and "
                             f"{len(frames)} pictures, not {len(self._scale)} and "
                             f"{len(self._down)}")  # fmt: skip
        # A tuple of ints: readable in reports and the archive map, numbers to selectors.
        bins = np.floor(floats * self._scale).astype(np.int64).tolist()
        return (*bins, *(d.key_of(f) for d, f in zip(self._down, frames, strict=True)), *fixed)

    def __call__(self, env: Any) -> Hashable:
        return self.key_of(*split(env.observe(), self.downscaled))


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
    """Per-dimension bins (and picture parts' downscaling) re-chosen during the run from a
    sample of recent states.

    ``--cell-param bits=N`` (or a list) pins the bins instead (``Bins``). The shape is the
    bits per float dimension, then (width, height, levels) per picture part; before the first
    choice, ``START_BITS`` for every dimension and ``START_FRAME`` for every picture. (The
    reference code starts with a single cell; outside Atari that cell's best entry is often
    where an episode ended, and every exploration from it is one step long.)
    """

    def __init__(
        self,
        dims: int,
        picture_parts: int = 0,
        pictures: str = "downscale",
        split_factor: float = 0.125,
        sample_prob: float = 0.25,
        max_samples: int = 4_000,
        min_samples: int = 500,
        first_update: int = 2_000,
        growth: float = 2.0,
        sweeps: int = 8,
    ):
        if dims < 1 and picture_parts < 1:
            raise ValueError(
                "the observation has no float dimensions to bin and no pictures to "
                "downscale; --cells observation keeps it as it is"
            )
        if not (0 < split_factor <= 1 and 0 < sample_prob <= 1 and growth > 1):
            raise ValueError("need 0 < split_factor <= 1, 0 < sample_prob <= 1, growth > 1")
        self.dims, self.picture_parts = dims, picture_parts
        self.split_factor = split_factor
        self.sample_prob = sample_prob
        # A state is 8 bytes a float dimension: a 64 x 64 x 3 float picture's 4,000 would be
        # 390 MB, in memory and in the run directory.
        self.max_samples = max(2, min(max_samples, SAMPLE_BYTES // (8 * max(1, dims))))
        self.min_samples = max(2, min(min_samples, self.max_samples))
        self.first_update = first_update
        self.growth = growth
        self.sweeps = sweeps
        self._bins = Bins([START_BITS] * dims, [START_FRAME] * picture_parts, pictures)
        self.parts: list[tuple[str, int]] = []  # named float parts, for the shape's text

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> CellFn:
        if "bits" in params:
            return Bins.from_env(env, **params)
        obs = env.observe()
        n, k = dimensions(obs, _mode(params.get("pictures", "downscale")))
        cells = cls(n, k, **params)
        cells.parts = [p for p in float_parts(obs) if p[0]]  # PointMaze's achieved_goal...
        return cells

    # -- the cell function (runs in workers) --------------------------------------------------
    @property
    def shape(self) -> tuple[int, ...]:
        return (*self._bins.bits, *(v for f in self._bins.frames for v in f))

    def set_shape(self, shape: tuple[int, ...]) -> None:
        if tuple(shape) == self.shape:
            return
        if len(shape) != self.dims + 3 * self.picture_parts:
            raise ValueError(f"a shape of {len(shape)} values for {self.dims} float dimensions "
                             f"and {self.picture_parts} pictures")  # fmt: skip
        rest = [int(v) for v in shape[self.dims :]]
        frames = [rest[i : i + 3] for i in range(0, len(rest), 3)]
        self._bins = Bins([int(b) for b in shape[: self.dims]], frames,
                          "downscale" if self._bins.downscaled else "exact")  # fmt: skip

    def shape_text(self, shape: tuple[int, ...]) -> str:
        """``bits (5, 2, off); picture shrunk to 11 x 8 pixels, 8 levels``: a float's bin is
        2**-bits wide; a dict's parts by name (``bits achieved_goal (0, 1), observation (3, 3,
        off, off)``). Past ``LISTED`` dimensions (a float picture's thousands), how many take
        each; where at most ``LISTED`` are cut (a robot's few), which, by index (or part and
        index)."""
        name = [("off" if b == OFF else str(b)) for b in shape[: self.dims]]
        cut = [d for d in range(self.dims) if shape[d] != OFF]
        if self.dims > LISTED and len(cut) <= LISTED:
            bits = ", ".join(f"{self._dimension(d)} {name[d]}" for d in cut)
            of = f"bits of {self.dims:,} float dimensions"
            parts = [f"{of}, {len(cut)} cut: {bits}; the others off" if cut else f"{of}: off"]
        elif self.dims > LISTED:
            counts = sorted(Counter(name).items(), key=lambda kv: -kv[1])
            bits = ", ".join(f"{b} for {n:,}" for b, n in counts)
            parts = [f"bits of {self.dims:,} float dimensions: {bits}"]
        elif self.parts and sum(n for _, n in self.parts) == self.dims:  # parts by name
            at = np.cumsum([0, *(n for _, n in self.parts)])
            named = [f"{p} ({', '.join(name[a:b])})" for (p, _), a, b in
                     zip(self.parts, at[:-1], at[1:], strict=True)]  # fmt: skip
            parts = [f"bits {', '.join(named)}"]
        else:
            parts = [f"bits ({', '.join(name)})"] if self.dims else []
        rest = shape[self.dims :]
        parts += [f"picture {picture_text(rest[i : i + 3])}" for i in range(0, len(rest), 3)]
        return "; ".join(parts)

    def _dimension(self, d: int) -> str:
        """Float dimension ``d`` named: ``[7]``, or ``observation[3]`` among named parts."""
        if not self.parts or sum(n for _, n in self.parts) != self.dims:
            return f"[{d}]"
        for part, size in self.parts:
            if d < size:
                return f"{part}[{d}]"
            d -= size
        raise IndexError(d)

    def __call__(self, env: Any) -> Hashable:
        return self._bins.key_of(*split(env.observe(), self._bins.downscaled))

    def source(self, env: Any) -> bytes:
        """The state's float dimensions (their count, then float64 bytes), its pictures (each
        a length, then compressed) and other parts (codec.py, data only): taken at every new
        cell, so kept cheap."""
        floats, frames, fixed = split(env.observe(), self._bins.downscaled)
        parts = [len(floats).to_bytes(4, "little"), floats.tobytes()]
        for f in frames:
            blob = encode_frame(f)
            parts += [len(blob).to_bytes(4, "little"), blob]
        if fixed:
            parts.append(codec.pack(fixed))
        return b"".join(parts)

    def _unpack(self, source: bytes) -> tuple[np.ndarray, tuple, tuple]:
        n = int.from_bytes(source[:4], "little")
        floats = np.frombuffer(source, dtype=np.float64, count=n, offset=4)
        at, frames = 4 + 8 * n, []
        for _ in range(self.picture_parts):
            size = int.from_bytes(source[at : at + 4], "little")
            frames.append(decode_frame(source[at + 4 : at + 4 + size]))
            at += 4 + size
        rest = source[at:]
        return floats, tuple(frames), tuple(codec.unpack(rest)) if rest else ()

    def decode(self, source: bytes) -> tuple[np.ndarray, tuple, tuple]:
        """A sampled state for ``choose``: its pictures no larger than an Atari frame."""
        floats, frames, fixed = self._unpack(source)
        return floats, tuple(fit(f) for f in frames), fixed

    def key_from_source(self, source: bytes) -> Hashable:
        return self._bins.key_of(*self._unpack(source))

    # -- choosing the bins (runs in the driver) -----------------------------------------------
    def due(self, frames: int, last_update: int | None, cells: int) -> bool:
        """Geometric in frames: first at ``first_update``, then each at twice the last
        (cells/schedule.py adds the sample's minimum and the archive's growth)."""
        if last_update is None:
            return frames >= self.first_update
        return frames >= max(2 * last_update, self.first_update)

    def choose(self, sources: list, rng: np.random.Generator) -> tuple[int, ...]:
        """The shape that scores best on the sampled states (``sources``: ``decode``'s).

        Each float dimension is measured in its own spread over the sample (bits ``r - e_d``
        where ``2**e_d`` is the largest power of two up to its standard deviation), so one
        resolution ``r`` is searched for all of them (as downscaling scales a frame's width and
        height together); then each picture's width and height, scaled together, and its
        levels (and every picture's at once, when there are several, as they may show the
        same); the two in turn while that helps (a noisy picture beside a telling float is
        coarsened first, then the float cut). Then each value of the shape (a dimension's bits,
        a picture's width, height or levels) moves a step finer or coarser (for a picture also
        half or twice) while that scores better (a float dimension only when there are at most
        ``SWEEP_DIMS``). A dimension constant in the sample is ``OFF``: nothing says how to
        cut it. When every dimension at once leaves most sampled states alone in a cell,
        dimensions are taken one at a time instead (``_fewer_dimensions``), if that scores
        better, before the sweep.
        """
        if len(sources) < 2:
            return self.shape
        n, k = self.dims, self.picture_parts
        x = np.stack([s[0] for s in sources]).reshape(len(sources), -1)
        if x.shape[1] != n or any(len(s[1]) != k for s in sources):
            raise ValueError(f"sampled states have {x.shape[1]} float dimensions and "
                             f"{len(sources[0][1])} pictures, not {n} and {k}")  # fmt: skip
        ids: dict[tuple, int] = {}
        fixed = np.array([ids.setdefault(s[2], len(ids)) for s in sources], dtype=np.int64)
        target = max(1.0, self.split_factor * len(sources))
        pictures = [[s[1][j] for s in sources] for j in range(k)]
        counts = _counts(x, pictures, fixed)

        def evaluate(shape: list[int]) -> float:
            return score(counts(shape).astype(np.float64), target)

        exponents = [_exponent(x[:, d]) for d in range(n)]
        if k == 0 and all(e is None for e in exponents):
            return self.shape
        bounds = [(1, pictures[j][0].shape[1 - a]) if a < 2 else (2, 255)  # width, height
                  for j in range(k) for a in range(3)]  # fmt: skip

        def clip(i: int, v: float) -> int:
            lo, hi = bounds[i - n]
            return max(lo, min(hi, round(v)))

        def at(r: int, frames: list[int]) -> list[int]:
            return [OFF if e is None else _bits(r, e) for e in exponents] + frames

        best = at(-3, list(self.shape[n:]))
        best_score = evaluate(best)
        for _ in range(3):  # the floats' resolution, then each picture's, while that helps
            before = best_score
            cands = []
            if any(e is not None for e in exponents):
                cands += [
                    at(r, best[n:]) for r in range(COARSEST, math.ceil(math.log2(len(sources))) + 4)
                ]
            starts = list(range(n, n + 3 * k, 3))
            for group in [[j] for j in starts] + ([starts] if k > 1 else []):  # each, and all
                for f in range(-8, 5):  # width and height scaled together by sqrt(2) steps
                    for levels in (2, 4, 8, 16, 32):
                        cand = best.copy()
                        for j in group:
                            w, h = (
                                clip(j, best[j] * 2 ** (f / 2)),
                                clip(j + 1, best[j + 1] * 2 ** (f / 2)),
                            )
                            cand[j : j + 3] = w, h, levels
                        cands.append(cand)
            for cand in cands:
                if (s := evaluate(cand)) > best_score + 1e-12:
                    best, best_score = cand, s
            if best_score <= before + 1e-12:
                break
        if n and _alone(counts(best)) > len(sources) / 2:
            fewer = _fewer_dimensions(best, n, exponents, evaluate, rng)
            if (s := evaluate(fewer)) > best_score + 1e-12:
                best, best_score = fewer, s
        for _ in range(self.sweeps):
            changed = False
            for i, v in enumerate(list(best)):
                if i < n:
                    steps = [] if v == OFF or n > SWEEP_DIMS else [
                        b for b in (v - 1, v + 1) if -60 <= b <= 60]  # fmt: skip
                else:
                    lo, hi = bounds[i - n]
                    steps = [b for b in dict.fromkeys((v - 1, v + 1, v // 2, 2 * v))
                             if lo <= b <= hi and b != v]  # fmt: skip
                for b in steps:
                    cand = best.copy()
                    cand[i] = b
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


def _bits(resolution: int, exponent: int) -> int:
    """A dimension's bits at a resolution relative to its spread (``2**exponent``), kept
    within the -60 to 60 the sweep keeps to."""
    return max(-60, min(60, resolution - exponent))


def _alone(counts: np.ndarray) -> int:
    """How many sampled states are alone in their cells."""
    return int((counts == 1).sum())


def _fewer_dimensions(
    best: list[int], n: int, exponents: list, evaluate: Callable, rng: np.random.Generator
) -> list[int]:
    """Float dimensions taken one at a time at the coarsest resolution, each the one that
    scores best, while the score rises; ``best``'s pictures kept.

    For when every dimension at once leaves most sampled states alone in a cell, whatever
    the resolution (bins are anchored at 0, so even the coarsest splits a dimension's values
    by sign): many dimensions varying apart, as a robot's joints and velocities (Ant-v5's
    105 left 2,503 of 2,831 sampled states alone, Humanoid-v5's 348 2,593 of 2,599). The
    objective picks the dimensions that spread the sample most evenly, which need not be the
    ones that matter: on Humanoid-v5 mostly actuator forces, which follow the repeated
    actions (bench/README.md, "Many joints").
    """
    shape = [OFF] * n + best[n:]
    now = evaluate(shape)
    while True:
        free = [d for d in range(n) if shape[d] == OFF and exponents[d] is not None]
        if len(free) > PICK_FROM:
            free = sorted(rng.choice(free, PICK_FROM, replace=False).tolist())
        top, pick = now, None
        for d in free:
            cand = shape.copy()
            cand[d] = _bits(COARSEST, exponents[d])
            if (s := evaluate(cand)) > top + 1e-12:
                top, pick = s, cand
        if pick is None:
            return shape
        shape, now = pick, top


def _counts(x: np.ndarray, pictures: list[list[np.ndarray]], fixed: np.ndarray) -> Callable:
    """How many sampled states fall in each cell under a shape: bits for ``x``'s columns,
    then (width, height, levels) for each of ``pictures`` (``dynamic.score`` scores them)."""
    n = x.shape[1]
    base = fixed * _MIX[-1]
    cache: dict[tuple, np.ndarray] = {}

    def column(d: int, b: int) -> np.ndarray:
        if (d, b) not in cache:
            with np.errstate(invalid="ignore", over="ignore"):
                cache[d, b] = np.floor(x[:, d] * scales([b])[0]).astype(np.int64)
        return cache[d, b]

    def picture(j: int, shape: tuple[int, ...]) -> np.ndarray:
        if (n + j, shape) not in cache:
            down = Downscale(*shape)
            codes: dict[bytes, int] = {}
            cache[n + j, shape] = np.array(
                [codes.setdefault(down.key_of(f), len(codes)) for f in pictures[j]], np.int64
            )
        return cache[n + j, shape]

    def counts(shape: list[int]) -> np.ndarray:
        h = base.copy()
        for d, b in enumerate(shape[:n]):
            if b != OFF:
                h += column(d, b) * _MIX[d % (len(_MIX) - 1)]
        for j in range(len(pictures)):
            h += (
                picture(j, tuple(shape[n + 3 * j : n + 3 * j + 3]))
                * _MIX[(n + j) % (len(_MIX) - 1)]
            )
        return np.unique(h, return_counts=True)[1]

    return counts
