"""MuJoCo environments of Gymnasium, returned to by the simulator's own state vector.

Pickling a Gymnasium MuJoCo environment does not copy its state: like most environments built
on ``EzPickle`` it pickles its constructor arguments and unpickles as a fresh environment. The
physics state, however, is a short vector that MuJoCo reads and writes exactly
(``mj_getState``/``mj_setState`` with ``mjSTATE_INTEGRATION``: positions, velocities,
activations, controls, time...), and stepping from it is deterministic. A snapshot is that
vector plus the time-limit wrapper's step count and the last observation: about a kilobyte.
An observation that holds a picture (``AddRenderObservation``) is kept compressed: a 160 x 160
render made each snapshot 103 kB.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys
import zlib
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from .. import codec
from .generic import GymEnv

if TYPE_CHECKING:
    from . import EnvSpec


# A snapshot's observation is compressed above this size (packed): Hopper's 11 floats are
# ~300 bytes, a 160 x 160 RGB picture beside them 102 kB.
OBS_BYTES = 4096


# One frame of a small MuJoCo task, drawn in a child process (``can_draw``).
_DRAW_ONE = (
    "import gymnasium as g; e = g.make('InvertedPendulum-v5', render_mode='rgb_array'); "
    "e.reset(seed=0); assert e.render() is not None"
)


def headless_gl() -> None:
    """Without a display, MuJoCo draws through EGL, unless ``MUJOCO_GL`` says otherwise
    (Gymnasium's first choice, GLFW, needs a display)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("MUJOCO_GL", "egl")


@functools.cache
def can_draw() -> bool:
    """Whether MuJoCo draws frames here, tried once in a child process: a renderer without
    an OpenGL context can abort the process that asks it, past any exception handler."""
    headless_gl()
    try:
        done = subprocess.run([sys.executable, "-c", _DRAW_ONE], capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def is_mujoco(env: gym.Env) -> bool:
    u = env.unwrapped
    return type(getattr(u, "data", None)).__module__.startswith("mujoco")


def wraps(env: gym.Env, spec: EnvSpec) -> bool:
    """Whether the MuJoCo family takes ``env``: a MuJoCo environment, with ``--return auto``."""
    return spec.return_method == "auto" and is_mujoco(env)


def adapter(spec: EnvSpec, env_id: str, env: gym.Env) -> MujocoEnv:
    """The adapter of an environment ``wraps`` took (the entry point in envs.FAMILIES)."""
    return MujocoEnv(env, seed=spec.seed)


def _time_limit(env: gym.Env) -> Any:
    while isinstance(env, gym.Wrapper):
        if isinstance(env, gym.wrappers.TimeLimit):
            return env
        env = env.env
    return None


class MujocoEnv(GymEnv):
    """GymEnv whose snapshot is the MuJoCo state vector (the return method "physics")."""

    def __init__(self, env: gym.Env, seed: int = 0):
        import mujoco

        self._mj = mujoco
        self._kind = mujoco.mjtState.mjSTATE_INTEGRATION
        u: Any = env.unwrapped  # a MuJoCo environment, which gym.Env does not declare
        self._model, self._data = u.model, u.data
        self._limit = _time_limit(env)
        super().__init__(env, method="physics", seed=seed)

    def snapshot(self) -> bytes:
        state = np.empty(self._mj.mj_stateSize(self._model, self._kind))
        self._mj.mj_getState(self._model, self._data, state, self._kind)
        steps = self._limit._elapsed_steps if self._limit is not None else None
        obs: Any = self._obs
        if (packed := codec.pack(obs)) and len(packed) > OBS_BYTES:  # a rendered picture
            obs = zlib.compress(packed, 1)
        return codec.pack((state, steps, obs, self._info, self._seed))

    def restore(self, snapshot: bytes) -> None:
        state, steps, obs, self._info, self._seed = codec.unpack(snapshot)
        self._obs = codec.unpack(zlib.decompress(obs)) if isinstance(obs, bytes) else obs
        self._mj.mj_setState(self._model, self._data, state, self._kind)
        self._mj.mj_forward(self._model, self._data)
        if self._limit is not None:
            self._limit._elapsed_steps = steps
        self._terminated = self._truncated = False
        self.last_restore_steps = 0
        self._start_lives = self._lives()

    def descriptor(self) -> np.ndarray:
        """Where the body is: the root's first two position coordinates (x and z, or x and y),
        the usual behaviour descriptor of novelty search on locomotion tasks."""
        return np.array(self._data.qpos[:2], dtype=np.float64)
