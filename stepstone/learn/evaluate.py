"""Run the policy ``stepstone robustify`` saved: its success and score under noise, again.

The checkpoint ``D/robustify/policy.pt`` is a state dict, read with
``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only: nothing
in a run directory is executed. ``policy.json`` beside it holds the network's sizes and what
success meant in training (the run's goal, or the demonstration's return).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..store.sqlite import RunStore
from .robustify import (
    POLICY,
    POLICY_INFO,
    RobustifyConfig,
    Runner,
    criterion,
    episode_limit,
    evaluate,
    policy_network,
    success_test,
)  # fmt: skip


def load_policy(path: Path, inputs: int, actions: int, seed: int = 0) -> Any:
    """The actor-critic of robustify.py with the weights in ``path`` (``seed`` seeds torch's
    sampling of actions); ConfigError if the file is not such a state dict."""
    import torch

    try:
        with warnings.catch_warnings():  # torch warns of the odd file before refusing it
            warnings.simplefilter("ignore")
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # weights_only refuses anything but tensors, in its own error types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"{path} is not a policy saved by stepstone robustify ({first}); run robustify again"
        ) from None
    model = policy_network(inputs, actions, seed)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"{path} does not fit this run's policy network ({first}); run robustify again"
        ) from None
    return model


def _info(store: RunStore) -> dict:
    path = store.path / "robustify" / POLICY_INFO
    if not (store.path / "robustify" / POLICY).is_file() or not path.is_file():
        raise ConfigError(f"{store.path} has no policy: run 'stepstone robustify {store.path}'")
    try:
        info = json.loads(path.read_text())
        keys = ("inputs", "actions", "demo_length", "demo_return", "goal", "sticky")
        return {k: info[k] for k in keys}
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is damaged ({e}); run robustify again") from None


def run_policy(
    store: RunStore,
    episodes: int = 20,
    sticky: float | None = None,
    seed: int = 0,
    gif: Path | None = None,
) -> dict:
    """``episodes`` episodes from reset under sticky actions (the training's by default):
    the success rate, the mean score, and with ``gif`` the first episode drawn."""
    info = _info(store)
    cfg = RobustifyConfig(sticky=info["sticky"] if sticky is None else sticky, seed=seed)
    runner = Runner(store, cfg)
    try:
        runner.env.reset(store.config.seed)
        n_in = len(runner.obs())
        if (n_in, runner.n_actions) != (info["inputs"], info["actions"]):
            raise ConfigError(
                f"the saved policy takes {info['inputs']} inputs and {info['actions']} actions, "
                f"this run's environment {n_in} and {runner.n_actions}; run robustify again"
            )
        model = load_policy(store.path / "robustify" / POLICY, n_in, runner.n_actions, seed)
        success = success_test(runner, info["goal"], info["demo_return"])
        first: list = []

        def keep_first(actions: list[int], score: float) -> None:
            if not first:
                first.append((actions, score))

        rate, score = evaluate(
            runner, model, episodes, episode_limit(info["demo_length"]), success,
            on_episode=keep_first if gif is not None else None,
        )  # fmt: skip
    finally:
        runner.worker.close()
    rule = criterion(info["goal"], info["demo_return"])
    result = {"episodes": episodes, "sticky": cfg.sticky, "success_criterion": rule,
              "success": rate, "score": score}  # fmt: skip
    if gif is not None:
        from .. import replay

        actions, total = first[0]
        replay.write_gif(replay.draw(store.config, actions, total), str(gif))
        result["gif"] = str(gif)
        result["gif_frames"] = len(actions) + 1
    return result
