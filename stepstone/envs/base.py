"""The Explorable protocol: what the engine needs from an environment.

Gymnasium's ``reset``/``step`` plus the one thing exploration needs and Gymnasium lacks: a way
to go back. ``snapshot()`` returns bytes (so it can be stored and sent to another process) and
``restore()`` puts the environment back in exactly that state. How an adapter does it is its
own business: an emulator's state cloning (ALE), pickling the whole environment (deepcopy), or
replaying the actions from the seed (any deterministic environment).

``step`` returns only (reward, terminated, truncated): observations are fetched on demand with
``observe()``, so that a cell function that reads RAM never pays for rendering a frame.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import gymnasium as gym


@runtime_checkable
class Explorable(Protocol):
    """An environment the engine can explore: reset, step, snapshot, restore, observe."""

    action_space: gym.Space
    frames_per_step: int  # emulator frames per step (frame skip); 1 for non-Atari environments

    def reset(self, seed: int) -> None: ...

    def step(self, action: Any) -> tuple[float, bool, bool]: ...

    def snapshot(self) -> bytes: ...

    def restore(self, snapshot: bytes) -> None: ...

    def observe(self) -> Any: ...

    def lives(self) -> int: ...

    def close(self) -> None: ...


def place(env: Explorable) -> tuple[int, int]:
    """(level, room) where the adapter knows them, else (-1, -1). Optional for adapters."""
    fn = getattr(env, "place", None)
    return fn() if fn is not None else (-1, -1)


def success(env: Explorable) -> bool:
    """Whether the environment's own goal is reached (``goal()``, optional for adapters: True,
    False, or None where the environment has no goal). A run's success, which a ``--goal``
    may redefine, is decided in stepstone/goals.py."""
    fn = getattr(env, "goal", None)
    return bool(fn()) if fn is not None else False
