"""Intrinsic-value selection: return to the cells a learned model finds least familiar.

RND (Burda et al. 2019, "Exploration by Random Network Distillation"): a fixed, randomly
initialised network f maps a state to features; a predictor g is trained to reproduce them on
the states visited. States visited often are predicted well, new ones badly, so the error
||g(x) - f(x)||^2 is an exploration bonus.

RDD (Fang et al. 2025, "Exploration by Random Distribution Distillation", arXiv 2505.11044):
the target is not f(x) but a sample from N(f(x), sigma^2), drawn afresh each time x is trained
on. The predictor then learns the mean of the samples it saw, and its error against f(x)
holds a pseudo-count term (the variance of a mean of n samples, sigma^2 / n) on top of RND's
discrepancy term: the bonus decays with visits as a count-based bonus does, and still
generalises across similar states as a prediction error does.

Applied to cells: a cell's vector (selectors/vectors.py, normalised per dimension as RND
normalises observations) is the state; every visit of a cell (times_seen, times_chosen) is a
training sample, so each call trains on a batch drawn in proportion to visits; a cell's weight
is its current error. The networks are two small layers in NumPy (a few thousand weights: no
framework needed); they are rebuilt and retrained from the archive's counters on resume.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..archive import Archive
from .base import Selector
from .vectors import CellVectors


class _MLP:
    """x -> relu(x W1 + b1) W2 + b2, with a plain SGD step on the squared error."""

    def __init__(self, n_in: int, hidden: int, n_out: int, rng: np.random.Generator):
        self.w1 = rng.normal(0, 1 / np.sqrt(n_in), (n_in, hidden))
        self.b1 = np.zeros(hidden)
        self.w2 = rng.normal(0, 1 / np.sqrt(hidden), (hidden, n_out))
        self.b2 = np.zeros(n_out)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return np.maximum(x @ self.w1 + self.b1, 0) @ self.w2 + self.b2

    def sgd(self, x: np.ndarray, y: np.ndarray, lr: float) -> None:
        h = np.maximum(x @ self.w1 + self.b1, 0)
        grad_out = 2 * (h @ self.w2 + self.b2 - y) / len(x)
        grad_h = (grad_out @ self.w2.T) * (h > 0)
        self.w2 -= lr * h.T @ grad_out
        self.b2 -= lr * grad_out.sum(axis=0)
        self.w1 -= lr * x.T @ grad_h
        self.b1 -= lr * grad_h.sum(axis=0)


class _Inputs(NamedTuple):
    """What ``RND._inputs`` keeps between calls: the statistics were taken at ``n`` cells."""

    target: _MLP
    n: int
    mean: np.ndarray
    spread: np.ndarray
    x: np.ndarray
    f: np.ndarray


class RND(Selector):
    noise = 0.0  # RDD's sigma; 0 is plain RND

    def __init__(self, features=32, hidden=64, lr=0.05, steps=20, batch=64, seed=0) -> None:
        self.features, self.hidden, self.lr = features, hidden, lr
        self.steps, self.batch = steps, batch
        self._rng = np.random.default_rng(seed)
        self._nets: tuple[_MLP, _MLP] | None = None
        self._trained_visits = 0
        self._vectors = CellVectors()
        self._kept: _Inputs | None = None

    def _inputs(self, archive: Archive, target: _MLP) -> tuple[np.ndarray, np.ndarray]:
        """The cells normalised per dimension, and the target's features of them. The mean and
        spread are taken again once the archive has grown by a hundredth (RND whitens by
        running statistics, clipped to [-5, 5]: Burda et al. 2019, section 2.4); in between
        only new cells are normalised and passed through the fixed target. Redone at every
        choice, this was 13 of 21 ms a call at 6,335 cells."""
        x = self._vectors(archive.cells)
        n, k = len(x), self._kept
        if k is None or k.target is not target or n > 1.01 * k.n or x.shape[1] != len(k.mean):
            mean, spread = x.mean(axis=0), x.std(axis=0) + 1e-8
            xn = np.clip((x - mean) / spread, -5, 5)
            k = self._kept = _Inputs(target, n, mean, spread, xn, target(xn))
        elif n > len(k.x):
            new = np.clip((x[len(k.x) :] - k.mean) / k.spread, -5, 5)
            k = self._kept = k._replace(x=np.vstack([k.x, new]), f=np.vstack([k.f, target(new)]))
        return k.x, k.f

    def weights(self, archive: Archive) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore"):
            error = self._error(archive)
            if not np.isfinite(error).all():
                # Plain SGD can diverge (seen once, on Montezuma's 88-value downscaled cells at
                # 1M frames): start the networks afresh, as a resumed run does, not stop.
                self._nets = None
                error = self._error(archive)
        return np.where(np.isfinite(error), error, 0.0) + 1e-6

    def _error(self, archive: Archive) -> np.ndarray:
        """Each cell's prediction error, after training on the visits since the last call."""
        n = len(archive)
        width = self._vectors(archive.cells).shape[1]
        if self._nets is None or self._nets[0].w1.shape[0] != width:
            # Built on first use (and again if the cell space changes, e.g. dynamic cells).
            dims = (width, self.hidden, self.features)
            self._nets = _MLP(*dims, self._rng), _MLP(*dims, self._rng)
            self._trained_visits = 0
        target, predictor = self._nets
        x, f = self._inputs(archive, target)
        visits = archive.times_seen[:n] + archive.times_chosen[:n] + 1
        # Train on as many samples as there were visits since the last call (at least one
        # batch, at most `steps` batches), drawn in proportion to each cell's visits.
        fresh = int(visits.sum()) - self._trained_visits
        self._trained_visits = int(visits.sum())
        steps = int(np.clip(np.ceil(fresh / self.batch), 1, self.steps))
        p = visits / visits.sum()
        for _ in range(steps):
            idx = self._rng.choice(n, size=self.batch, p=p)
            y = f[idx]
            if self.noise:
                y = y + self._rng.normal(0, self.noise, y.shape)
            predictor.sgd(x[idx], y, self.lr)
        return ((predictor(x) - f) ** 2).mean(axis=1)


class RDD(RND):
    noise = 1.0
