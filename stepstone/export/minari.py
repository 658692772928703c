"""Minari datasets from a run, written with Minari's own API (``create_dataset_from_buffers``).

Each episode replays an entry's actions in the Gymnasium environment the run explored (sticky
actions off for Atari, as while exploring), from the run's seed, recording observations,
rewards, terminations, truncations and infos; the episode's seed is stored by Minari. An
episode ends where the trajectory ends: when the game did not end there, its last step is
marked truncated. Observation fields Minari cannot store (MiniGrid's mission text) are left
out with Gymnasium's ``FilterObservation``. The replayed return must equal the archived score,
or the export stops: a dataset that does not match the run is worse than none.

Frames are stored exactly: Minari 0.5.4 JPEG-encodes image observations by default
(``create_dataset_from_buffers(jpeg_encoding=True)``, minari/utils.py), which changes pixels, so
export passes ``jpeg_encoding=False``. The metadata Minari asks for is filled rather than its
reminders hidden: ``requirements`` pins the packages that build the environment, and
``code_permalink`` names the stepstone version that wrote the dataset unless a link is given.
"""

from __future__ import annotations

import importlib.metadata
import math
import shutil
from typing import Any

import gymnasium as gym
import numpy as np

from .. import __version__, envs
from ..config import ExploreConfig
from ..envs.mujoco import is_mujoco
from ..errors import ConfigError
from . import Episode


def gym_env(config: ExploreConfig) -> gym.Env:
    """The run's environment as a plain Gymnasium environment, observations Minari can store."""
    env = envs.gymnasium_env(envs.EnvSpec(config.env, imports=config.imports))
    if env is None:
        raise ConfigError(
            f"Minari export needs an environment Gymnasium builds with array observations, and "
            f"{config.env!r} is not one (a text game or a page): export it with --format jsonl "
            "or parquet"
        )
    if isinstance(env.observation_space, gym.spaces.Dict):
        from minari.serialization import serialize_space

        keep = []
        for key, space in env.observation_space.spaces.items():
            try:
                serialize_space(space)
                keep.append(key)
            except NotImplementedError:
                pass
        env = gym.wrappers.FilterObservation(env, filter_keys=keep)
    return env


def _stack(items: list) -> Any:
    """Steps' values as Minari stores a space: a dict or a tuple of arrays for a Dict or Tuple
    space (Blackjack's observation, a Tuple action), else one array."""
    if isinstance(items[0], dict):
        return {k: _stack([x[k] for x in items]) for k in items[0]}
    if isinstance(items[0], tuple):
        return tuple(_stack([x[i] for x in items]) for i in range(len(items[0])))
    return np.stack([np.asarray(x) for x in items])


def _infos(infos: list[dict]) -> dict:
    """Per-step infos as arrays when every step has the same numeric fields, else none."""
    keys = set(infos[0])
    if not keys or any(set(i) != keys for i in infos):
        return {}
    try:
        out = {k: np.stack([np.asarray(i[k]) for i in infos]) for k in sorted(keys)}
    except ValueError:
        return {}
    return storable({k: v for k, v in out.items() if v.dtype.kind in "biuf"})


def storable(infos: dict[str, Any]) -> dict[str, Any]:
    """Per-step info arrays as Minari 0.5.4 reads them back: a 1-D array is written with an
    empty shape that its reader cannot parse (arrow_storage._decode_info), a list is not."""
    return {k: v.tolist() if np.ndim(v) == 1 else v for k, v in infos.items()}


def replay(env: gym.Env, seed: int, episode: Episode, episode_id: int) -> Any:
    from minari.data_collector.episode_buffer import EpisodeBuffer

    obs, info = env.reset(seed=seed)
    observations, infos = [obs], [info]
    rewards, terms, truncs = [], [], []
    for action in episode.actions:
        obs, reward, term, trunc, info = env.step(action)
        observations.append(obs)
        infos.append(info)
        rewards.append(float(reward))
        terms.append(bool(term))
        truncs.append(bool(trunc))
    if terms and not terms[-1]:
        truncs[-1] = True
    total = sum(rewards)
    if not math.isclose(total, episode.score, rel_tol=1e-9, abs_tol=1e-9):
        raise ConfigError(
            f"replaying entry {episode.index} in {env.spec.id if env.spec else env} gave a "
            f"return of {total:g}, not its archived score {episode.score:g}: this environment "
            "does not reproduce the run, so no dataset was written"
        )
    return EpisodeBuffer(
        id=episode_id,
        seed=seed,
        observations=_stack(observations),
        actions=_stack(list(episode.actions)),
        rewards=rewards,
        terminations=terms,
        truncations=truncs,
        infos=_infos(infos),
    )


def requirements(env: gym.Env) -> list[str]:
    """pip requirements that rebuild ``env`` as it was: gymnasium and the installed distribution
    of the module its entry point lives in (ale-py, minigrid, ...), each at its version here."""
    names = {"gymnasium"}
    entry = env.spec.entry_point if env.spec is not None else None
    if isinstance(entry, str):
        module = entry.partition(":")[0].split(".")[0]
        names.update(importlib.metadata.packages_distributions().get(module, ()))
    if is_mujoco(env):
        names.add("mujoco")
    return sorted(f"{n}=={importlib.metadata.version(n)}" for n in names)


def export(
    config: ExploreConfig,
    episodes: list[Episode],
    dataset_id: str,
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
) -> Any:
    """Write the dataset (to Minari's dataset folder) and return it, loaded."""
    import minari

    if not episodes or not all(len(e.actions) for e in episodes):
        raise ConfigError("nothing to export: the selected entries include the empty start state")
    env = gym_env(config)
    check_spec(env)
    buffers = [replay(env, config.seed, e, i) for i, e in enumerate(episodes)]
    try:
        return minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            eval_env=env.spec,  # evaluate where the data was collected (Minari's default, said)
            algorithm_name="stepstone (Go-Explore phase 1)",
            author=author or "stepstone",
            author_email=author_email,
            code_permalink=code_permalink or f"stepstone=={__version__}",
            description=f"Trajectories found by exploring {config.env} with {config.cells} cells",
            requirements=requirements(env),
            data_format="arrow",
            jpeg_encoding=False,
        )
    except BaseException:  # no half-written dataset left under the id (the CLI cleared it)
        from minari.storage.local import get_dataset_path

        shutil.rmtree(get_dataset_path(dataset_id), ignore_errors=True)
        raise


def check_spec(env: gym.Env) -> None:
    """Refuse an environment whose Gymnasium spec cannot be stored: Minari keeps the spec to
    rebuild the environment (``recover_environment``), and Gymnasium cannot store a function
    given as ``entry_point`` (it raised mid-write, leaving a half-written dataset)."""
    spec = env.spec
    entry = spec.entry_point if spec is not None else None
    if spec is not None and callable(entry):
        name = getattr(entry, "__qualname__", repr(entry))
        module = getattr(entry, "__module__", "yourmodule")
        raise ConfigError(
            f"{spec.id} is registered with a function as its entry point ({name}), which "
            "Gymnasium cannot store in a dataset's spec; register it by name instead: "
            f'gym.register({spec.id!r}, entry_point="{module}:{name}")'
        )
