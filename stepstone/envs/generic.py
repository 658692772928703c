"""Any Gymnasium environment made explorable, by pickling it or by replaying from the seed.

Two ways back to a state when the environment offers no state cloning of its own:

* ``deepcopy``: the snapshot is the pickled environment (the bytes form of ``copy.deepcopy``),
  RNG included. Fast to restore; needs a picklable environment.
* ``replay``: the snapshot is (seed, actions so far); restoring resets with the seed and
  replays. Works for any environment that is deterministic given ``reset(seed=...)``, at the
  price of re-simulating the prefix (those steps are counted as frames).

``auto`` picks ``deepcopy`` when a pickle round trip works, else ``replay`` when two replays
of the same actions agree, else refuses with the ways to make the environment explorable.

A Gymnasium environment may answer the Explorable's questions itself, by defining methods of
the same names (``describe``, ``task``, ``admissible``, ``goal``, ``metrics``): stepstone's own
text games do (game24.py, textworld.py), and so can a user's environment registered with
``--import``. Otherwise the answers are the defaults of ``base.Adapter``, except ``goal``,
which the families of goals.py answer, and ``life_lost``, read from ``info["lives"]``.
"""

from __future__ import annotations

import pickle
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np

from .. import codec
from ..errors import EnvironmentNotFound
from .base import Adapter
from .goals import goal_test

if TYPE_CHECKING:
    from . import EnvSpec

METHODS = ("auto", "deepcopy", "replay")
# Actions tried when choosing a method: enough that a non-deterministic environment is caught.
_PROBE_STEPS = 50
# Adapters of simulators that copy their own state (envs/mujoco.py) use a method of their own.
NATIVE = "physics"
# info keys that say an environment's own success (Gymnasium's convention, Gymnasium-Robotics')
INFO_GOALS = ("is_success", "success")

HOW_TO_MAKE_EXPLORABLE = (
    "make it explorable in one of three ways: (1) give it snapshot()/restore() methods "
    "(the Explorable protocol in stepstone.envs.base), (2) make it picklable so it can be "
    "deep-copied (--return deepcopy), or (3) make it deterministic given reset(seed=...) so "
    "trajectories can be replayed (--return replay)"
)


def same(a: Any, b: Any) -> bool:
    """Structural equality of observations (arrays, dicts, tuples, scalars, strings)."""
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)):
        return type(a) is type(b) and len(a) == len(b) and all(map(same, a, b))
    return bool(np.array_equal(np.asarray(a), np.asarray(b)))


class GymEnv(Adapter):
    """An Explorable over a ``gymnasium.Env``."""

    def __init__(self, env: gym.Env, method: str = "auto", seed: int = 0):
        if method not in (*METHODS, NATIVE):
            raise EnvironmentNotFound(f"unknown return method {method!r}; use one of {METHODS}")
        self.env = env
        self.action_space = env.action_space
        # An environment may name the cells that suit it (e.g. Game of 24: the numbers left).
        self.default_cells = getattr(env.unwrapped, "default_cells", None)
        self.method = method
        self.last_restore_steps = 0
        family = goal_test(env)
        self._goal_test = family[0] if family else None
        own_words = getattr(env.unwrapped, "goal_words", None)  # Game of 24, TextWorld
        self.goal_words = own_words if isinstance(own_words, str) else family[1] if family else None
        self.reset(seed)
        if self.goal_words is None:  # a key that reset sets already (PointMaze) names the goal
            key = next((k for k in INFO_GOALS if k in self.info), None)
            self.goal_words = f'info["{key}"] true' if key else None
        if method == "auto":
            self.method = self._choose_method(seed)

    def _choose_method(self, seed: int) -> str:
        actions = [self.action_space.sample() for _ in range(_PROBE_STEPS)]
        if self._copy_keeps_state(seed, actions):
            return "deepcopy"
        # Whole paths, not only where they end: two random walks often end in the same place.
        paths = [self._play(seed, actions) for _ in range(2)]
        self.reset(seed)
        if same(paths[0], paths[1]):
            return "replay"
        name = self.env.spec.id if self.env.spec else type(self.env).__name__
        raise EnvironmentNotFound(
            f"{name} cannot be snapshotted (not picklable) and is not deterministic "
            f"(two replays of the same actions differ); {HOW_TO_MAKE_EXPLORABLE}"
        )

    def _ended(self) -> bool:
        return self._terminated or self._truncated

    def _play(self, seed: int | None, actions: list) -> list:
        """(observation, reward) after each action (from reset when ``seed`` is given)."""
        if seed is not None:
            self.reset(seed)
        seen = []
        for a in actions:
            reward, term, trunc = self.step(a)
            seen.append((self._obs, reward))
            if term or trunc:
                break
        return seen

    def _copy_keeps_state(self, seed: int, actions: list) -> bool:
        """Whether a pickled copy continues exactly like the original. Many environments
        pickle only their constructor arguments (gymnasium's EzPickle) and come back fresh."""
        try:
            # Copy one step in (right after reset if that step already ends the episode).
            prefix = 1 if not self._play(seed, actions[:1]) or not self._ended() else 0
            self._play(seed, actions[:prefix])
            copy = pickle.loads(pickle.dumps(self.env))
            ours = self._play(None, actions[prefix:])
            self.env, original = copy, self.env
            theirs = self._play(None, actions[prefix:])
            self.env = original
            copy.close()
        except Exception:
            return False
        finally:
            self.reset(seed)
        return len(ours) == len(theirs) and all(map(same, ours, theirs))

    def reset(self, seed: int) -> None:
        self._obs, self._info = self.env.reset(seed=int(seed))
        self._seed = seed
        self._actions: list[Any] = []
        # Text games keep their episode so far (a language model is shown it, IGE-style).
        self._trail: list[tuple[Any, str]] | None = (
            [(None, self._obs)] if isinstance(self._obs, str) else None
        )
        self._terminated = self._truncated = False
        self._last_reward = 0.0
        self._start_lives = self._lives()

    def step(self, action: Any) -> tuple[float, bool, bool]:
        if isinstance(action, np.integer):
            # Stored trajectories hold the smallest integer type (worker.action_dtype), and
            # environments do arithmetic on actions: MountainCar's ``action - 1`` on a uint8 0
            # is 255, not -1, so a replayed trajectory would go elsewhere.
            action = int(action)
        self._obs, reward, term, trunc, self._info = self.env.step(action)
        if self.method == "replay":
            self._actions.append(action)
        if self._trail is not None:
            command = self._info.get("command", action) if isinstance(self._info, dict) else action
            self._trail.append((command, self._obs))
        self._terminated, self._truncated = bool(term), bool(trunc)
        self._last_reward = float(reward)
        return float(reward), bool(term), bool(trunc)

    @property
    def snapshot_format(self) -> str:
        """How snapshots are stored: pickles with ``deepcopy`` (a run directory holding them is
        resumed only with ``--trust-run-dir``), data with ``replay``."""
        return "pickle" if self.method == "deepcopy" else "data"

    def snapshot(self) -> bytes:
        if self.method == "deepcopy":
            state = (self.env, self._obs, self._info, self._seed, self._trail)
            return pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL)
        return codec.pack((self._seed, self._actions))

    def restore(self, snapshot: bytes) -> None:
        if self.method == "deepcopy":
            env, obs, info, seed, *trail = pickle.loads(snapshot)  # run format 1: no trail
            self.env.close()
            self.env, self._obs, self._info, self._seed = env, obs, info, seed
            self._trail = list(trail[0]) if trail and trail[0] is not None else None
            self._actions = []
            self.last_restore_steps = 0
            self._start_lives = self._lives()
            return
        seed, actions = codec.unpack(snapshot)
        self.reset(seed)
        for a in actions:
            self.step(a)
        self.last_restore_steps = len(actions)
        self._start_lives = self._lives()

    def history(self) -> list[tuple[Any, str]] | None:
        """Every (command, observation) since reset, the first command None, in a text game:
        what IGE's agent is shown of its past. None for other observations."""
        return self._trail

    def observe(self) -> Any:
        return self._obs

    @property
    def info(self) -> dict:
        """The last step's (or reset's) info."""
        return self._info if isinstance(self._info, dict) else {}

    def _lives(self) -> int:
        """Lives left, where the environment reports them (``info["lives"]``, as Gymnasium's
        Atari environments do); 0 elsewhere."""
        return int(self._info.get("lives", 0)) if isinstance(self._info, dict) else 0

    def life_lost(self) -> bool:
        return self._lives() < self._start_lives

    @property
    def terminated(self) -> bool:
        """Whether the last step ended the episode (not by truncation)."""
        return self._terminated

    @property
    def last_reward(self) -> float:
        return self._last_reward

    def _own(self, name: str) -> Any:
        """The wrapped environment's own method ``name`` (see the module's docstring), or
        None. Looked up at each call: a deepcopy restore replaces the environment."""
        fn = getattr(self.env.unwrapped, name, None)
        return fn if callable(fn) else None

    def describe(self) -> str:
        own = self._own("describe")
        return str(own()) if own is not None else super().describe()

    def task(self) -> str | None:
        own = self._own("task")
        return str(own()) if own is not None else None

    def admissible(self) -> list[tuple[Any, str]] | None:
        own = self._own("admissible")
        return list(own()) if own is not None else None

    def metrics(self) -> dict[str, int]:
        own = self._own("metrics")
        return dict(own()) if own is not None else {}

    def goal(self) -> bool | None:
        """Whether the environment's own goal is reached: its ``goal()`` where it has one
        (stepstone's Game of 24 and TextWorld), its family's test (envs/goals.py), else
        Gymnasium's convention of ``info["is_success"]`` where the last step set it, or
        ``info["success"]``, as Gymnasium-Robotics' mazes say it (envs/maze/point_maze.py and
        ant_maze_v5.py, ``reset`` and ``step``: the ball within 0.45 of the goal)."""
        own = self._own("goal")
        if own is not None:
            answer = own()
            return None if answer is None else bool(answer)
        if self._goal_test is not None:
            return self._goal_test(self)
        for key in INFO_GOALS:
            if key in self.info:
                return bool(self.info[key])
        return None

    def close(self) -> None:
        self.env.close()


def wraps(env: gym.Env, spec: EnvSpec) -> bool:
    """The generic family takes every Gymnasium environment (the last line of FAMILIES)."""
    return True


def adapter(spec: EnvSpec, env_id: str, env: gym.Env) -> GymEnv:
    """The adapter of any Gymnasium environment (the entry point in envs.FAMILIES)."""
    return GymEnv(env, method=spec.return_method, seed=spec.seed)
