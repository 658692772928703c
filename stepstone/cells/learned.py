"""Learned cells: an autoencoder trained on the states found, its latent code cut into cells.

TAXONS (Paolo et al. 2020, "Unsupervised Learning and Exploration of Reachable Outcome Space")
and STAX (Paolo et al. 2021, "Sparse Reward Exploration via Novelty Search and Emitters") learn
the space in which to measure novelty with an autoencoder trained online on the observations
met, instead of hand-designing it. Here the autoencoder's low-dimensional code is discretised:
each latent dimension is cut into ``levels`` bins at the quantiles of the training codes, and a
cell is the tuple of bin numbers.

As with novelty cells, the work is split: workers name states by a fine, fixed key (the
downscaled frame for images, the rounded observation otherwise), which is also what replays
are checked against, and the driver maps that key to the learned cell. Every ``every``
iterations (the first after ``first``) the autoencoder is retrained on the keys of the
archive's entries and of recently reported states, and the archive is re-keyed; entries that
now share a cell merge by the usual rule. Until the first training the fine key is the cell.
Training uses PyTorch (the torch extra); the driver encodes with NumPy copies of the weights.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Hashable
from typing import Any

import numpy as np

from .. import codec
from ..errors import ConfigError
from ..selectors.vectors import vector
from .base import DriverDecidedCells
from .downscale import Downscale
from .observation import ObservationCells


class LearnedCells(DriverDecidedCells):
    def __init__(
        self,
        latent: int = 4,
        levels: int = 6,
        first: int = 10,
        every: int = 50,
        epochs: int = 30,
        samples: int = 10_000,
        seed: int = 0,
    ):
        try:
            import torch  # noqa: F401
        except ImportError:
            raise ConfigError("learned cells need torch: pip install 'stepstone[torch]'") from None
        if latent < 1 or levels < 2 or first < 1 or every < 1:
            raise ConfigError("learned cells need latent >= 1, levels >= 2, first, every >= 1")
        self.latent, self.levels, self.first, self.every = latent, levels, first, every
        self.epochs, self.samples, self.seed = epochs, samples, seed
        self._fine: Any = None

    def __call__(self, env: Any) -> Hashable:
        if self._fine is None:  # frames when the environment has a screen, else observations
            image = hasattr(env, "gray") or np.asarray(env.observe()).ndim >= 2
            self._fine = Downscale() if image else ObservationCells(decimals=2)
        return self._fine(env)

    @staticmethod
    def state_key(source: bytes) -> Hashable:
        return _decode_key(source)

    def rule(self, saved: dict | None = None) -> LearnedRule:
        rule = LearnedRule(self)
        if saved:
            rule.load(saved)
        return rule


def _encode_key(key: Hashable) -> bytes:
    return codec.pack(key)  # data only: sources are read back from run directories


def _decode_key(source: bytes) -> Hashable:
    return codec.unpack(source)


class LearnedRule:
    """The driver's half: the current encoder, its bins, and the retraining schedule."""

    def __init__(self, cells: LearnedCells):
        self.cells = cells
        self.version = 0  # trainings so far
        self.iterations = 0
        self._weights: list[np.ndarray] | None = None  # encoder: w1, b1, w2, b2
        self._mean = self._std = None
        self._edges: np.ndarray | None = None  # latent x (levels - 1) bin edges
        self._recent: list[Hashable] = []
        self._rng = np.random.default_rng(cells.seed)
        self._changed = False

    # -- mapping -------------------------------------------------------------------------------
    def encode(self, keys: list[Hashable]) -> np.ndarray:
        assert self._weights is not None and self._mean is not None
        x = (np.array([vector(k) for k in keys]) - self._mean) / self._std
        w1, b1, w2, b2 = self._weights
        return np.maximum(x @ w1 + b1, 0) @ w2 + b2

    def cell_of(self, keys: list[Hashable]) -> list[Hashable]:
        if self._weights is None:
            return list(keys)
        z = self.encode(keys)
        assert self._edges is not None
        bins = [np.searchsorted(self._edges[j], z[:, j]) for j in range(z.shape[1])]
        return [tuple(int(b[i]) for b in bins) for i in range(len(keys))]

    def key_for(self, cell: Hashable, archive: Any, goal: bool = False) -> Hashable:
        if not archive:  # the first state: refuse keys that have no vector before the run
            vector(cell)
        self._remember(cell)
        return self.cell_of([cell])[0]

    def nearest(self, cells: list[Hashable], archive: Any) -> list[Hashable]:
        return self.cell_of(cells) if cells else []

    @staticmethod
    def source(cell: Hashable) -> bytes:
        return _encode_key(cell)

    def _remember(self, key: Hashable) -> None:
        """A reservoir of recently reported keys, the training set beside the archive's."""
        if len(self._recent) < self.cells.samples:
            self._recent.append(key)
        else:
            self._recent[int(self._rng.integers(len(self._recent)))] = key

    # -- learning ------------------------------------------------------------------------------
    def adapt(self, new_cells: int, archive: Any) -> None:
        self.iterations += 1
        c = self.cells
        due = self.iterations == c.first or (
            self.iterations > c.first and (self.iterations - c.first) % c.every == 0
        )
        if not due:
            return
        keys = [_decode_key(archive.sources[int(archive.snap[i])]) for i in range(len(archive))]
        self.train(keys + self._recent)
        archive.rekey(lambda source: self.cell_of([_decode_key(source)])[0])

    def train(self, keys: list[Hashable]) -> None:
        import torch

        c = self.cells
        x = np.array([vector(k) for k in keys])
        self._mean, self._std = x.mean(axis=0), x.std(axis=0) + 1e-6
        data = torch.tensor((x - self._mean) / self._std, dtype=torch.float32)
        torch.manual_seed(c.seed + self.version)
        d, hidden = data.shape[1], 64
        lin1, lin2 = torch.nn.Linear(d, hidden), torch.nn.Linear(hidden, c.latent)
        encoder = torch.nn.Sequential(lin1, torch.nn.ReLU(), lin2)
        decoder = torch.nn.Sequential(
            torch.nn.Linear(c.latent, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, d)
        )
        params = [*encoder.parameters(), *decoder.parameters()]
        opt = torch.optim.Adam(params, lr=1e-3)
        for _ in range(c.epochs):
            for batch in torch.randperm(len(data)).split(256):
                loss = ((decoder(encoder(data[batch])) - data[batch]) ** 2).mean()
                opt.zero_grad()
                loss.backward()
                opt.step()
        self.loss = loss.item()
        self._weights = [
            lin1.weight.detach().numpy().T.copy(), lin1.bias.detach().numpy().copy(),
            lin2.weight.detach().numpy().T.copy(), lin2.bias.detach().numpy().copy(),
        ]  # fmt: skip
        z = self.encode(keys)
        qs = np.linspace(0, 1, c.levels + 1)[1:-1]
        self._edges = np.quantile(z, qs, axis=0).T
        self.version += 1
        self._changed = True

    # -- persistence ---------------------------------------------------------------------------
    def state(self) -> dict | None:
        """The model when it changed since the last call (stored with the commit), else None."""
        if not self._changed:
            return None
        self._changed = False
        arrays: dict[str, Any] = {"mean": self._mean, "std": self._std, "edges": self._edges}
        arrays.update({f"w{i}": w for i, w in enumerate(self._weights or [])})
        buf = io.BytesIO()
        np.savez(buf, **arrays)
        return {"version": self.version, "iterations": self.iterations,
                "model": base64.b64encode(buf.getvalue()).decode()}  # fmt: skip

    def load(self, saved: dict) -> None:
        self.version, self.iterations = saved["version"], saved["iterations"]
        z = np.load(io.BytesIO(base64.b64decode(saved["model"])))
        self._mean, self._std, self._edges = z["mean"], z["std"], z["edges"]
        self._weights = [z[f"w{i}"] for i in range(4)]

    def metrics(self) -> dict:
        return {"learned_version": self.version}
