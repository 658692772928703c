"""The goals of Gymnasium environment families that define one but do not report it.

Each test reads the environment's own success condition from its source, so that a run's
success means what the environment's authors meant, not "the episode ended":

* FrozenLake: standing on the ``G`` tile (``frozen_lake.py``: ``terminated`` is also true on a
  hole, ``H``).
* MountainCar and MountainCarContinuous: termination itself, which both define as
  ``position >= goal_position and velocity >= goal_velocity`` (the flag); the 200-step limit
  is a truncation.
* Acrobot: termination, which ``acrobot.py`` defines as the free end above the bar
  (``_terminal``: ``-cos(s[0]) - cos(s[1] + s[0]) > 1.0``); the 500-step limit is a truncation.
* CliffWalking and Taxi: termination, which ``cliffwalking.py`` sets only on the goal square (a
  fall sends the agent back to the start without ending) and ``taxi.py`` only on dropping the
  passenger at the destination (``_dropoff``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import gymnasium as gym


def _frozen_lake(adapter: Any) -> bool:
    u = adapter.env.unwrapped
    row, col = divmod(int(u.s), u.ncol)
    return bytes(u.desc[row, col]) == b"G"


def _terminated(adapter: Any) -> bool:
    return adapter.terminated


def goal_test(env: gym.Env) -> tuple[Callable[[Any], bool], str] | None:
    """The goal test of ``env``'s family (called with the adapter) and the goal in words (the
    report says what "the environment's own" goal is), or None if unknown."""
    from gymnasium.envs.classic_control import (
        AcrobotEnv,
        Continuous_MountainCarEnv,
        MountainCarEnv,
    )
    from gymnasium.envs.toy_text import CliffWalkingEnv, FrozenLakeEnv, TaxiEnv

    u = env.unwrapped
    if isinstance(u, FrozenLakeEnv):
        return _frozen_lake, "standing on the G tile"
    words = {
        MountainCarEnv: "the flag", Continuous_MountainCarEnv: "the flag",
        AcrobotEnv: "the free end above the bar", CliffWalkingEnv: "the goal square",
        TaxiEnv: "the passenger dropped at the destination",
    }  # fmt: skip
    for family, text in words.items():
        if isinstance(u, family):
            return _terminated, text
    return None
