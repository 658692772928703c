"""What a cell function is: a map from the environment's current state to a hashable key.

Cell functions receive the environment, not an observation, so each reads only what it needs:
RAM cells read 128 bytes, frame cells the grayscale screen, generic cells ``env.observe()``.
A cell function with parameters that change during a run (dynamic downscaling) also has
``params`` (stored with the archive) and is told about fresh samples through ``adapt``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any, Protocol

import numpy as np


class CellFn(Protocol):
    name: str

    def __call__(self, env: Any) -> Hashable: ...


def grayscale(env: Any) -> np.ndarray:
    """The current frame as a 2-D uint8 array, from ``env.gray()`` or the observation."""
    gray = getattr(env, "gray", None)
    if gray is not None:
        return gray()
    obs = np.asarray(env.observe())
    if obs.ndim == 3 and obs.shape[-1] in (3, 4):
        # ITU-R 601 luma, the weights OpenCV and PIL use for RGB -> gray.
        return (obs[..., :3] @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).astype(np.uint8)
    if obs.ndim == 2:
        return obs.astype(np.uint8, copy=False)
    raise ValueError(f"an observation of shape {obs.shape} is not an image")
