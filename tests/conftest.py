from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

# A small deterministic environment written here, not shipped or registered by stepstone: a
# corridor of 40 positions, reward 1 at the far end, episodes cut at 60 steps. A random walk
# needs 39 net steps right within 60 (p ~ 1e-7 per episode); Go-Explore walks there cell by cell.
USER_ENV_MODULE = textwrap.dedent(
    """
    import gymnasium as gym
    from gymnasium import spaces


    class Corridor(gym.Env):
        def __init__(self, length=40):
            self.length = length
            self.observation_space = spaces.Discrete(length)
            self.action_space = spaces.Discrete(2)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            self.pos = 0
            return self.pos, {}

        def step(self, action):
            self.pos = max(0, min(self.length - 1, self.pos + (1 if action == 1 else -1)))
            done = self.pos == self.length - 1
            return self.pos, float(done), done, False, {}


    gym.register("UserCorridor-v0", entry_point=Corridor, max_episode_steps=60)


    class Unreturnable(Corridor):
        # Holds a lock (cannot be pickled) and moves at random, whatever the seed.

        def __init__(self):
            import threading

            super().__init__()
            self.lock = threading.Lock()

        def step(self, action):
            import os

            return super().step(os.urandom(1)[0] % 2)


    gym.register("UserUnreturnable-v0", entry_point=Unreturnable, max_episode_steps=60)


    class LivesCorridor(Corridor):
        # Three lives; one is lost the first time the walker reaches 10, and 24, and it plays on.

        def reset(self, seed=None, options=None):
            self.lives = 3
            return super().reset(seed=seed)[0], {"lives": 3}

        def step(self, action):
            obs, reward, terminated, truncated, _ = super().step(action)
            if (self.pos, self.lives) in ((10, 3), (24, 2)):
                self.lives -= 1
            return obs, reward, terminated, truncated, {"lives": self.lives}


    gym.register("UserLivesCorridor-v0", entry_point=LivesCorridor, max_episode_steps=60)


    class PixelCorridor(Corridor):
        # The corridor seen only as a picture: a 16 x 80 RGB frame, the walker a bright
        # 2-pixel column, the floor speckled anew each step (from the seeded np_random, so a
        # replay draws the same speckles): no two frames alike.

        def __init__(self):
            import numpy as np

            super().__init__()
            self.observation_space = spaces.Box(0, 255, (16, 80, 3), np.uint8)

        def _frame(self):
            frame = self.np_random.integers(0, 4, (16, 80, 3), dtype="uint8")
            frame[:, 2 * self.pos : 2 * self.pos + 2] = 250
            return frame

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return self._frame(), {}

        def step(self, action):
            _, reward, terminated, truncated, info = super().step(action)
            return self._frame(), reward, terminated, truncated, info


    gym.register("UserPixelCorridor-v0", entry_point=PixelCorridor, max_episode_steps=60)


    class PartsPixelCorridor(PixelCorridor):
        # The picture as one part of a dict, beside a part that never changes.

        def __init__(self):
            super().__init__()
            self.observation_space = spaces.Dict(
                {"frame": self.observation_space, "level": spaces.Discrete(3)})

        def reset(self, seed=None, options=None):
            frame, info = super().reset(seed=seed)
            return {"frame": frame, "level": 0}, info

        def step(self, action):
            frame, *rest = super().step(action)
            return {"frame": frame, "level": 0}, *rest


    gym.register("UserPartsPixelCorridor-v0", entry_point=PartsPixelCorridor,
                 max_episode_steps=60)


    class Squares(gym.Env):
        # One step an episode to one of 6 squares, paying 1: soon every entry ends an episode.

        def __init__(self):
            self.observation_space = spaces.Discrete(6)
            self.action_space = spaces.Discrete(6)

        def reset(self, seed=None, options=None):
            super().reset(seed=seed)
            return 0, {}

        def step(self, action):
            return int(action), 1.0, True, False, {}


    gym.register("UserSquares-v0", entry_point=Squares)
    """
)


@pytest.fixture
def user_env_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A module `user_envs` registering UserCorridor-v0, UserUnreturnable-v0,
    UserLivesCorridor-v0, UserPixelCorridor-v0, UserPartsPixelCorridor-v0 and UserSquares-v0,
    importable here and in subprocesses."""
    (tmp_path / "user_envs.py").write_text(USER_ENV_MODULE)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", f"{tmp_path}:{':'.join(sys.path)}")
    return "user_envs"
