"""Environment adapters, the registry of their families, and ``make``, which builds the right
adapter from a name.

``EnvSpec`` is the picklable recipe a worker process uses to build its own copy of the
environment: the id, the seed, how to return to states, and the user modules to import first
(``--import mymodule``) so that ids those modules register resolve in every process.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
import importlib.util
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
from gymnasium.envs.registration import load_env_creator

from ..errors import EnvironmentNotFound, StepstoneError, said
from ..options import check_types
from .base import Adapter, Explorable
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
    web_actions: int = 2  # browser worlds' admissible actions (envs/browser.py ACTIONS_VERSION)

    @property
    def resolved_id(self) -> str:
        return ALIASES.get(self.env_id, self.env_id)


def import_modules(modules: tuple[str, ...]) -> None:
    """Import the user's modules; the current directory is searched as ``python -m`` would."""
    if modules and os.getcwd() not in sys.path and "" not in sys.path:
        sys.path.insert(0, os.getcwd())
    for name in modules:
        if name.endswith(".py") or os.sep in name:  # a file where a module name belongs
            path = Path(name)
            where = (
                ""
                if str(path.parent) == "."
                else f", run from {path.parent} (or with it on PYTHONPATH)"
            )
            raise EnvironmentNotFound(
                f"--import takes a module name, not a file: give --import {path.stem}{where}"
            )
        try:
            importlib.import_module(name)
        except ImportError as e:
            raise EnvironmentNotFound(
                f"cannot import module {name!r} given with --import ({e}); "
                "check it is installed or on PYTHONPATH"
            ) from e
        except Exception as e:  # the module itself failed: say where, not a traceback
            raise EnvironmentNotFound(
                f"module {name!r} given with --import raised {said(e)}; "
                "fix the module (run 'python -c \"import " + name + "\"' to see where)"
            ) from e


# Gymnasium's ids for environments of the old gym package; shimmy registers their real entry
# points on import (Gymnasium's own entries only say to install it).
SHIMMY_IDS = ("GymV21Environment-v0", "GymV26Environment-v0")


def _register_known(env_id: str = "") -> None:
    """Register the environment families stepstone knows, where their packages are installed."""
    if env_id in SHIMMY_IDS and importlib.util.find_spec("shimmy") is not None:
        with contextlib.suppress(ImportError):  # then Gymnasium's entry says what to install
            importlib.import_module("shimmy")
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


def is_browser_world(env_id: str) -> bool:
    """Whether ``env_id`` is a page in a browser (envs/browser.py): miniwob/ or web:."""
    return env_id.startswith(("miniwob/", "web:"))


def explore_defaults(env_id: str) -> tuple[int, float]:
    """Actions per exploration and the chance of repeating the previous one, where the user
    gives neither. Go-Explore's Atari choice (100 actions, 95% repeats; Ecoffet et al. 2019,
    sec. 2.1) everywhere but in browser worlds, where a step takes a tenth of a second, tasks
    take a handful of actions, and an action is an index into the page's own list, so
    repeating an index is not repeating an action: 10 actions, no repeats."""
    return (10, 0.0) if is_browser_world(env_id) else (100, 0.95)


def is_atari(env_id: str) -> bool:
    _register_known()
    try:
        spec = gym.spec(env_id)
    except Exception:
        return False
    return str(spec.entry_point).startswith("ale_py")


# -- the families ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Family:
    """A kind of environment and where its adapter is built.

    A family claims an id before anything is made (``owns``: Game of 24, TextWorld, Atari),
    or a Gymnasium environment once ``gymnasium.make`` has built it (``wraps``: MiniGrid,
    MuJoCo); the first family that claims one builds its adapter with ``adapter``, a
    ``"module:function"`` imported on first use and called as ``function(spec, env_id, env)``
    (``env`` None for a family that owns its ids). A new family is a module with its adapter
    and that function, and one line in FAMILIES.
    """

    name: str
    adapter: str
    owns: Callable[[str], bool] | None = None
    wraps: str | None = None  # "module:function(env, spec) -> bool"
    prefixes: tuple[str, ...] = ()  # ids of the family, for a missing extra's message
    extra: tuple[str, str] | None = None  # (package, stepstone extra) the family needs
    examples: tuple[str, ...] = ()  # ids suggested when an unknown id is close to one
    env_args: bool = True  # whether --env-arg applies (keywords of gymnasium.make)
    text: bool = False  # observations are text (chat data; no Minari dataset, no robustify)

    def build(self, spec: EnvSpec, env_id: str, env: gym.Env | None = None) -> Explorable:
        return _load(self.adapter)(spec, env_id, env)

    def takes(self, env: gym.Env, spec: EnvSpec) -> bool:
        return self.wraps is not None and bool(_load(self.wraps)(env, spec))


def _load(entry_point: str) -> Any:
    module, _, name = entry_point.partition(":")
    return getattr(importlib.import_module(module), name)


FAMILIES: list[Family] = [
    Family("game24", "stepstone.envs.game24:adapter", owns=lambda i: i.split(":")[0] == "game24",
           examples=("game24", "game24:4,7,8,8"), env_args=False, text=True),
    Family("textworld", "stepstone.envs.textworld:adapter",
           owns=lambda i: i.startswith("textworld:"), prefixes=("textworld:",),
           extra=("textworld", "textworld"), examples=("textworld:PATH",), env_args=False,
           text=True),
    Family("miniwob", "stepstone.envs.miniwob:adapter", owns=lambda i: i.startswith("miniwob/"),
           prefixes=("miniwob/",), extra=("miniwob", "web"), examples=("miniwob/click-test-2-v1",),
           text=True),
    Family("web", "stepstone.envs.web:adapter", owns=lambda i: i.startswith("web:"),
           prefixes=("web:",), extra=("selenium", "web"), examples=("web:http://127.0.0.1:8000/",),
           text=True),
    Family("atari", "stepstone.envs.ale:adapter", owns=is_atari, examples=tuple(ALIASES)),
    Family("minigrid", "stepstone.envs.minigrid:adapter",
           wraps="stepstone.envs.minigrid:is_minigrid", prefixes=("MiniGrid-", "BabyAI-"),
           extra=("minigrid", "minigrid")),
    Family("mujoco", "stepstone.envs.mujoco:adapter", wraps="stepstone.envs.mujoco:wraps"),
    Family("gymnasium", "stepstone.envs.generic:adapter", wraps="stepstone.envs.generic:wraps"),
]  # fmt: skip


def shows_text(env_id: str) -> bool:
    """Whether the id's family observes in text (known before anything is built)."""
    return any(f.text and f.owns is not None and f.owns(env_id) for f in FAMILIES)


def missing_extra(env_id: str) -> str | None:
    """The pip command that installs what ``env_id`` needs, when its package is missing."""
    for family in FAMILIES:
        if family.extra is None or not env_id.startswith(family.prefixes):
            continue
        package, extra = family.extra
        if importlib.util.find_spec(package) is None:
            return f"pip install 'stepstone[{extra}]'"
    return None


def make(spec: EnvSpec) -> Explorable:
    """Build the adapter for ``spec``: the first family in FAMILIES that claims its id (or,
    for Gymnasium ids, the environment gymnasium.make builds); unknown ids raise
    EnvironmentNotFound with suggestions."""
    import_modules(spec.imports)
    env_id = spec.resolved_id
    _register_known(env_id)
    if (install := missing_extra(env_id)) is not None:
        raise EnvironmentNotFound(f"{spec.env_id!r} needs an extra: {install}")
    if spec.return_method not in METHODS:
        raise EnvironmentNotFound(
            f"unknown return method {spec.return_method!r}; use one of {', '.join(METHODS)}"
        )
    for family in FAMILIES:
        if family.owns is not None and family.owns(env_id):
            if spec.env_args and not family.env_args:
                raise EnvironmentNotFound(
                    f"--env-arg applies to Gymnasium ids, not {spec.env_id!r}"
                )
            return family.build(spec, env_id, None)
    if env_id not in gym.registry:
        if legacy_gym_id(env_id):
            raise EnvironmentNotFound(
                f"{spec.env_id!r} is registered with the old gym package, not Gymnasium; "
                "Gymnasium runs it through shimmy: pip install 'shimmy[gym-v26]', then explore "
                f"GymV26Environment-v0 --env-arg env_id={spec.env_id} with the same --import"
            )
        examples = [e for f in FAMILIES for e in f.examples]
        close = difflib.get_close_matches(env_id, [*gym.registry, *examples], n=3)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise EnvironmentNotFound(
            f"unknown environment id {spec.env_id!r}{hint} "
            "(give a registered Gymnasium id, an alias like 'montezuma', "
            "or register your own with --import MODULE)"
        )
    check_env_args(env_id, spec.env_args)
    given = ", ".join(f"{k}={v!r}" for k, v in spec.env_args.items())
    try:
        env = gym.make(env_id, **spec.env_args)
    except Exception as e:  # a bare KeyError said only '8'
        # the values given, unless Gymnasium's wrapper of a creator's error names them itself
        with_args = f" with --env-arg {given}" if given and "with kwargs" not in str(e) else ""
        raise EnvironmentNotFound(
            f"gymnasium could not make {env_id!r}{with_args}: {said(e)}"
        ) from e
    family = next(f for f in FAMILIES if f.takes(env, spec))
    try:
        return family.build(spec, env_id, env)
    except StepstoneError:
        raise
    except Exception as e:
        if not given:  # no value of the user's to blame: the traceback is ours to see
            raise
        # MiniGrid's agent_start_pos=5 passes gym.make and fails at the first reset
        raise EnvironmentNotFound(
            f"{env_id!r} with --env-arg {given} failed as it started: {said(e)}"
        ) from e


def legacy_gym_id(env_id: str) -> bool:
    """Whether a module the user imported registered ``env_id`` with the old ``gym`` package
    (gym_super_mario_bros, gym_sokoban); gym itself is not imported here."""
    registry = getattr(getattr(sys.modules.get("gym"), "envs", None), "registry", None)
    try:
        return registry is not None and env_id in registry
    except TypeError:  # an older gym's EnvRegistry
        return False


def check_env_args(env_id: str, env_args: dict) -> None:
    """``--env-arg`` values against the types the environment's constructor declares:
    FrozenLake's ``is_slippery=maybe`` was taken as true. Names it does not declare (gym.make's
    own, such as max_episode_steps) are left to Gymnasium."""
    if not env_args:
        return
    entry = gym.spec(env_id).entry_point
    try:
        creator = load_env_creator(entry) if isinstance(entry, str) else entry
    except Exception:  # gym.make says why, in its words
        return
    if callable(creator):
        check_types(creator, env_args, "--env-arg")


def gymnasium_env(spec: EnvSpec, **kwargs) -> gym.Env | None:
    """The environment as Gymnasium itself builds it, for what the adapters leave out
    (recording a Minari dataset, drawing frames with ``render_mode="rgb_array"``); sticky
    actions off for Atari, as while exploring. None for games Gymnasium does not register
    (TextWorld, Game of 24)."""
    import_modules(spec.imports)
    env_id = spec.resolved_id
    _register_known(env_id)
    if env_id not in gym.registry:
        return None
    if is_atari(env_id):
        import ale_py

        ale_py.ALEInterface.setLoggerMode(ale_py.LoggerMode.Error)  # no banner on stdout
        kwargs = {"repeat_action_probability": 0.0, **kwargs}
    return gym.make(env_id, **kwargs)


__all__ = [
    "ALIASES", "FAMILIES", "Adapter", "EnvSpec", "Explorable", "Family", "GymEnv",
    "gymnasium_env", "is_atari", "make", "shows_text",
]  # fmt: skip
