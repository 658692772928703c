"""Downscaled frames as cells: shrink the frame to width x height and quantise to a few levels.

The domain-agnostic cell of Go-Explore (Ecoffet et al. 2019, sec. 2.1): frames that look alike
at 11 x 8 pixels and 8 intensity levels share a cell. Shrinking is an area average computed as
two small matrix products (the same box filter as OpenCV's INTER_AREA), ~12 us a frame here.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .base import CellFn, grayscale


def area_matrix(n_in: int, n_out: int) -> np.ndarray:
    """Row o averages the input interval [o, o+1) * n_in / n_out, with fractional edges."""
    scale = n_in / n_out
    m = np.zeros((n_out, n_in), dtype=np.float32)
    for o in range(n_out):
        lo, hi = o * scale, (o + 1) * scale
        for i in range(int(lo), min(n_in, int(np.ceil(hi)))):
            m[o, i] = (min(hi, i + 1) - max(lo, i)) / scale
    return m


class Downscale(CellFn):
    """Cell = the frame shrunk to ``width`` x ``height`` with ``levels`` intensity levels."""

    def __init__(self, width: int = 11, height: int = 8, levels: int = 8):
        if width < 1 or height < 1 or not 2 <= levels <= 256:
            raise ValueError("downscale needs width, height >= 1 and 2 <= levels <= 256")
        self.width, self.height, self.levels = width, height, levels
        self._shape: tuple[int, int] | None = None

    def shrink(self, frame: np.ndarray) -> np.ndarray:
        """The area-averaged frame as float32 in [0, 256)."""
        if frame.shape != self._shape:
            self._rows = area_matrix(frame.shape[0], self.height)
            self._cols = area_matrix(frame.shape[1], self.width).T.copy()
            self._buf = np.empty(frame.shape, dtype=np.float32)  # no allocation per frame
            self._shape = frame.shape
        np.copyto(self._buf, frame)
        return (self._rows @ self._buf) @ self._cols

    def key_of(self, frame: np.ndarray) -> bytes:
        return (self.shrink(frame) * (self.levels / 256.0)).astype(np.uint8).tobytes()

    def __call__(self, env: Any) -> bytes:
        return self.key_of(grayscale(env))
