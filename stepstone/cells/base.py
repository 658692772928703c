"""What a cell function is: a map from the environment's current state to a hashable key.

Cell functions receive the environment, not an observation, so each reads only what it needs:
RAM cells read 128 bytes, frame cells the grayscale screen, generic cells ``env.observe()``.
Three contracts, each a base class checked with ``isinstance``:

* ``CellFn``: every cell kind; the key is the cell, computed in the worker.
* ``AdaptiveCells``: a cell function whose parameters the driver re-chooses during the run
  from a sample of states (dynamic downscaling); each cell keeps the state it was computed
  from (``source``) so the archive can be re-keyed.
* ``DriverDecidedCells``: workers report a fine key and a ``CellRule`` in the driver, which
  alone sees the archive, decides which cell it belongs to (novelty, learned cells).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Hashable
from typing import Any

import numpy as np

from ..engine import CellRule  # the engine's side of driver-decided cells
from ..errors import ConfigError


class CellFn(ABC):
    """Base class of cell kinds; a subclass is registered by name in ``cells.REGISTRY``.

    A key must be something ``codec.py`` can store (ints, floats, strings, bytes, tuples and
    frozensets of them, numeric numpy arrays): run directories keep cells as data.
    """

    @classmethod
    def from_env(cls, env: Any, **params: Any) -> CellFn:
        """The cell function for ``env`` with the user's ``--cell-param`` values.

        Args:
            env: the adapter the cells will be computed on; most kinds ignore it, RAM cells
                read the game's RAM layout from it.
            **params: the kind's parameters (``--cell-param NAME=VALUE``).

        Returns:
            The cell function.

        Raises:
            ConfigError: the parameters or the environment do not suit this kind (``TypeError``
                and ``ValueError`` are turned into one by ``cells.make``).
        """
        return cls(**params)

    @abstractmethod
    def __call__(self, env: Any) -> Hashable:
        """The cell of ``env``'s current state.

        Args:
            env: the adapter (``envs.base.Explorable``), after a reset, restore or step.

        Returns:
            A hashable key that ``codec.py`` can store; equal keys are the same cell.
        """


class AdaptiveCells(CellFn):
    """A cell function whose parameters (``shape``) the driver re-chooses during a run.

    Workers compute keys with the shape the task carries; the driver samples the ``source``
    of a state now and then (each step with probability ``sample_prob``, keeping at most
    ``max_samples``), and when ``due``, ``choose``s a new shape from the sample and re-keys the
    archive with ``key_from_source`` (cells/schedule.py; dynamic downscaling's own schedule is
    in cells/dynamic.py). Kinds: dynamic downscaling (frames), per-dimension bins (cells/bins.py).

    Attributes:
        sample_prob: the chance a step's source is sampled for the next choice.
        max_samples: how many sampled sources the driver keeps.
        first_sample: steps of exploration from the start at most (``first_sample`` /
            ``explore_steps`` explorations), every step sampled, from which a new run's first
            shape is chosen before it explores on (runner.first_choice); 0: the shape given is
            kept until the first ``due``.
    """

    sample_prob: float
    max_samples: int
    first_sample: int = 0

    @property
    @abstractmethod
    def shape(self) -> tuple[int, ...]:
        """The current parameters, stored with the run and sent with each task."""

    @abstractmethod
    def set_shape(self, shape: tuple[int, ...]) -> None:
        """Compute keys with ``shape`` from now on."""

    @abstractmethod
    def source(self, env: Any) -> bytes:
        """What the current state's key is computed from (a compressed frame), as bytes."""

    @abstractmethod
    def key_from_source(self, source: bytes) -> Hashable:
        """The key of a stored ``source`` under the current shape (re-keying the archive)."""

    def decode(self, source: bytes) -> Any:
        """A sampled ``source`` as ``choose`` takes it (cells/schedule.py); here the bytes."""
        return source

    @abstractmethod
    def due(self, frames: int, last_update: int | None, cells: int) -> bool:
        """Whether to re-choose the shape now.

        Args:
            frames: frames the run has taken.
            last_update: frames at the last re-choice, or None before the first.
            cells: cells in the archive.
        """

    def shape_text(self, shape: tuple[int, ...]) -> str:
        """``shape`` for people (the report): what each value is, where a bare tuple mixes
        kinds (a float's bits beside a picture's width)."""
        return str(tuple(shape))

    @abstractmethod
    def choose(self, sources: list[Any], rng: np.random.Generator) -> tuple[int, ...]:
        """The best shape for the sampled states.

        Args:
            sources: the decoded sample (frames; ``decode``'s values).
            rng: a generator seeded from the run's progress, so that a resumed run chooses
                the same.

        Returns:
            The shape to use; the current one when the sample is too small to judge.
        """


class DriverDecidedCells(CellFn):
    """Cells decided in the driver: workers report a fine key, a ``CellRule`` picks the cell.

    ``__call__`` returns the fine key (the state's own), which is also what a replayed
    trajectory must reach; the rule maps it onto the archive's cells (cells/novelty.py,
    cells/learned.py).
    """

    @abstractmethod
    def rule(self, saved: dict | None = None) -> CellRule:
        """The driver's rule, restored from ``saved`` (its last ``state()``) on resume."""

    @staticmethod
    @abstractmethod
    def state_key(source: bytes) -> Hashable:
        """The fine key stored as an entry's source, decoded: what a replay must reach.

        Args:
            source: ``CellRule.source`` of the entry's state, from the run directory.

        Returns:
            The key ``__call__`` returned at that state.
        """


def grayscale(env: Any) -> np.ndarray:
    """The current frame as a 2-D uint8 array, from ``env.gray()`` or the observation."""
    gray = getattr(env, "gray", None)
    if gray is not None:
        return gray()
    return to_gray(np.asarray(env.observe()))


def need_picture(env: Any, kind: str) -> None:
    """Refuse frame cells (``downscale``, ``dynamic``) on an environment with no picture."""
    if getattr(env, "gray", None) is not None or is_image(env.observe()):
        return
    obs = env.observe()
    seen = (f"an array of shape {obs.shape} ({obs.dtype})" if isinstance(obs, np.ndarray)
            else f"a {type(obs).__name__}")  # fmt: skip
    raise ConfigError(
        f"{kind} cells downscale a picture (uint8 rows x columns: colour, gray or stacked "
        f"frames), and this observation is {seen}; --cells auto chooses cells for it (a "
        "dict's or tuple's picture parts are downscaled by --cells bins)"
    )


def is_image(obs: Any) -> bool:
    """A uint8 array of rows x columns, with 1, 3 or 4 channels last or none, or with 2 to 8
    planes first (Gymnasium's FrameStackObservation of gray frames, channels-first RGB) on at
    least 16 x 16: a picture, as ``to_gray`` reads it (Gymnasium's pixel observations and
    AddRenderObservation's)."""
    if not isinstance(obs, np.ndarray) or obs.dtype != np.uint8:
        return False
    if obs.ndim == 2 or (obs.ndim == 3 and obs.shape[-1] in (1, 3, 4)):
        return True
    return obs.ndim == 3 and 2 <= obs.shape[0] <= 8 and min(obs.shape[1:]) >= 16


def to_gray(obs: np.ndarray) -> np.ndarray:
    """A picture (``is_image``) as a 2-D uint8 array: luma of colour, the mean of planes."""
    if obs.ndim == 3 and obs.shape[-1] in (3, 4):
        # ITU-R 601 luma, the weights OpenCV and PIL use for RGB -> gray.
        return (obs[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
    if obs.ndim == 2:
        return obs.astype(np.uint8, copy=False)
    if obs.ndim == 3 and obs.shape[-1] == 1:
        return obs[..., 0].astype(np.uint8, copy=False)
    if obs.ndim == 3 and 2 <= obs.shape[0] <= 8:  # stacked frames: their blend, as one frame
        return obs.mean(axis=0, dtype=np.float32).astype(np.uint8)
    raise ValueError(f"an observation of shape {obs.shape} is not an image")
