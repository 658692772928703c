"""Environment adapters and the one function that builds the right one from a name.

``EnvSpec`` is the picklable recipe a worker process uses to build its own copy of the
environment: the id, the seed, how to return to states, and the user modules to import first
(``--import mymodule``) so that ids those modules register resolve in every process.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import os
import sys
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym

from ..errors import EnvironmentNotFound
from .base import Explorable, place, success
from .generic import METHODS, GymEnv

ALIASES = {
    "montezuma": "ALE/MontezumaRevenge-v5",
    "pitfall": "ALE/Pitfall-v5",
}


@dataclass(frozen=True)
class EnvSpec:
    """How to build an Explorable: id (or alias), seed, return method, modules to import,
    and keyword arguments of ``gymnasium.make``."""

    env_id: str
    seed: int = 0
    return_method: str = "auto"
    imports: tuple[str, ...] = ()
    env_args: dict[str, Any] = field(default_factory=dict)

    @property
    def resolved_id(self) -> str:
        return ALIASES.get(self.env_id, self.env_id)


# Ids of environment families whose package is an extra: prefix -> (package, extra).
EXTRAS = {
    "MiniGrid-": ("minigrid", "minigrid"),
    "BabyAI-": ("minigrid", "minigrid"),
    "textworld:": ("textworld", "textworld"),
    "miniwob/": ("miniwob", "web"),
    "web:": ("selenium", "web"),
}


def missing_extra(env_id: str) -> str | None:
    """The pip command that installs what ``env_id`` needs, when its package is missing."""
    for prefix, (package, extra) in EXTRAS.items():
        if env_id.startswith(prefix) and importlib.util.find_spec(package) is None:
            return f"pip install 'stepstone[{extra}]'"
    return None


def import_modules(modules: tuple[str, ...]) -> None:
    """Import the user's modules; the current directory is searched as ``python -m`` would."""
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise EnvironmentNotFound(
                f"cannot import module {name!r} given with --import ({e}); "
                "check it is installed or on PYTHONPATH"
            ) from e
        except Exception as e:  # the module itself failed: say where, not a traceback
            raise EnvironmentNotFound(
                f"module {name!r} given with --import raised {type(e).__name__}: {e}; "
                "fix the module (run 'python -c \"import " + name + "\"' to see where)"
            ) from e


def _register_known() -> None:
    """Register the environment families stepstone knows, where their packages are installed."""
    try:
        import ale_py

        gym.register_envs(ale_py)
    except ImportError:  # ale-py is a core dependency, but keep generic envs usable without it
        pass
    try:
        import minigrid

        gym.register_envs(minigrid)
    except ImportError:  # the minigrid extra
        pass


def is_atari(env_id: str) -> bool:
    _register_known()
    try:
        spec = gym.spec(env_id)
    except Exception:
        return False
    return str(spec.entry_point).startswith("ale_py")


def make(spec: EnvSpec) -> Explorable:
    """Build the adapter for ``spec``; unknown ids raise EnvironmentNotFound with suggestions."""
    import_modules(spec.imports)
    _register_known()
    env_id = spec.resolved_id
    if (install := missing_extra(env_id)) is not None:
        raise EnvironmentNotFound(f"{spec.env_id!r} needs an extra: {install}")
    if spec.env_args and env_id.split(":")[0] in ("game24", "textworld"):
        raise EnvironmentNotFound(f"--env-arg applies to Gymnasium ids, not {spec.env_id!r}")
    if env_id.split(":")[0] == "game24":
        from .game24 import Game24Env, parse_id

        try:
            numbers, integer = parse_id(env_id)
        except ValueError as e:
            raise EnvironmentNotFound(str(e)) from None
        game = Game24Env(numbers, integer=integer)
        return GymEnv(game, method=spec.return_method, seed=spec.seed)
    if env_id.startswith("textworld:"):
        from .textworld import TextWorldEnv

        text_game = TextWorldEnv(env_id.partition(":")[2])
        method = "replay" if spec.return_method == "auto" else spec.return_method
        return GymEnv(text_game, method=method, seed=spec.seed)
    if env_id.startswith(("miniwob/", "web:")):  # pages in a browser (envs/browser.py)
        from . import browser

        return browser.make(env_id, spec.seed, spec.return_method, spec.env_args)
    if spec.return_method not in METHODS:
        raise EnvironmentNotFound(
            f"unknown return method {spec.return_method!r}; use one of {', '.join(METHODS)}"
        )
    if env_id not in gym.registry:
        close = difflib.get_close_matches(
            env_id, [*gym.registry, *ALIASES, "game24", "game24:4,7,8,8", "textworld:PATH"], n=3
        )
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EnvironmentNotFound(
            f"unknown environment id {spec.env_id!r}{hint} "
            "(give a registered Gymnasium id, an alias like 'montezuma', "
            "or register your own with --import MODULE)"
        )
    if is_atari(env_id):
        from .ale import from_gym_id

        return from_gym_id(env_id, seed=spec.seed, overrides=spec.env_args)
    try:
        env = gym.make(env_id, **spec.env_args)
    except Exception as e:
        raise EnvironmentNotFound(f"gymnasium could not make {env_id!r}: {e}") from e
    from .mujoco import MujocoEnv, is_mujoco

    if is_mujoco(env) and spec.return_method == "auto":
        return MujocoEnv(env, seed=spec.seed)
    adapter = GymEnv(env, method=spec.return_method, seed=spec.seed)
    if hasattr(env.unwrapped, "agent_pos") and hasattr(env.unwrapped, "carrying"):
        adapter.default_cells = ("minigrid", {})  # a MiniGrid or BabyAI environment
    return adapter


def gymnasium_env(spec: EnvSpec, **kwargs) -> gym.Env | None:
    """The environment as Gymnasium itself builds it, for what the adapters leave out
    (recording a Minari dataset, drawing frames with ``render_mode="rgb_array"``); sticky
    actions off for Atari, as while exploring. None for games Gymnasium does not register
    (TextWorld, Game of 24)."""
    import_modules(spec.imports)
    _register_known()
    env_id = spec.resolved_id
    if env_id not in gym.registry:
        return None
    if is_atari(env_id):
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stdout
        kwargs = {"repeat_action_probability": 0.0, **kwargs}
    return gym.make(env_id, **kwargs)


__all__ = [
    "ALIASES", "EnvSpec", "Explorable", "GymEnv", "gymnasium_env", "is_atari", "make", "place",
    "success",
]  # fmt: skip
