"""The slice of the old ``gym`` (0.1x) API that Go-Explore's released Phase 1 calls, on ale-py.

Only for bench/peer_goexplore.py, which runs that code beside ours. ``gym.make(
"<Game>Deterministic-v4")`` was ALE with 4 frames a step, no sticky actions, the minimal
action set and a 100,000-step limit (gym's atari registration); ale-py's ``AtariEnv`` with
the same settings is that environment, and the wrapper gives it the old four-value ``step``,
the ``TimeLimit``'s ``_elapsed_steps`` and ``unwrapped.seed``, which the code uses.
"""

from __future__ import annotations

import re

import ale_py
import gymnasium

gymnasium.register_envs(ale_py)

MAX_STEPS = 100_000  # gym's registration of the Deterministic-v4 games


class _Unwrapped:
    def __init__(self, env):
        self._env = env
        self.ale = env.unwrapped.ale

    def seed(self, seed=None):
        self._env.reset(seed=seed)
        return [seed]

    def clone_state(self):
        return self.ale.cloneState()

    def restore_state(self, state):
        self.ale.restoreState(state)


class _Env:
    def __init__(self, game: str):
        # v5's own cap of 108,000 frames (27,000 steps) lifted: the limit is the step count's
        self._env = gymnasium.make(f"ALE/{game}-v5", frameskip=4, repeat_action_probability=0.0,
                                   full_action_space=False, max_num_frames_per_episode=0,
                                   max_episode_steps=None).unwrapped  # fmt: skip
        self.unwrapped = _Unwrapped(self._env)
        self.action_space = self._env.action_space
        self._elapsed_steps = 0

    def reset(self):
        self._elapsed_steps = 0
        return self._env.reset()[0]

    def step(self, action):
        obs, reward, terminated, truncated, info = self._env.step(action)
        self._elapsed_steps += 1
        done = terminated or truncated or self._elapsed_steps >= MAX_STEPS
        return obs, reward, done, info

    def render(self, *args, **kwargs):
        return self._env.render()


def make(name: str) -> _Env:
    m = re.fullmatch(r"(\w+)Deterministic-v4", name)
    if not m:
        raise ValueError(f"this stand-in makes only <Game>Deterministic-v4, not {name!r}")
    return _Env(m.group(1))
