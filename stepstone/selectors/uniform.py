"""Every non-terminal cell equally likely: the baseline the other selectors must beat."""

from __future__ import annotations

import numpy as np

from ..archive import Archive
from .base import Selector


class Uniform(Selector):
    shardable = True

    def weights(self, archive: Archive) -> np.ndarray:
        return np.ones(len(archive))
