"""What an explorer is: the actions taken after returning to a cell.

``actions(env, rng, steps)`` yields at most ``steps`` actions; the worker steps the environment
between yields, so a closed-loop explorer (a policy, a language model) may look at ``env``
before choosing, while an open-loop one (random) can draw all its actions up front.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol

import numpy as np


class Explorer(Protocol):
    name: str

    def actions(self, env: Any, rng: np.random.Generator, steps: int) -> Iterable[Any]: ...
