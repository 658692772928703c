"""Run the policy ``stepstone robustify`` saved: its success and score under noise, again.

``D/robustify/policy.pt`` holds the network's architecture (kind, input and action sizes,
hidden widths, the observation features it reads), what success meant in training (the run's
goal, or the demonstration's return), the training steps behind it (robustify writes it with
every checkpoint, so a training under way can be evaluated) and the weights, read with
``torch.load(weights_only=True)``, which rebuilds tensors and plain containers only: nothing in
a run directory is executed. Policies saved before this format (a bare state dict) are read
with the sizes in ``policy.json`` beside them.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..store.sqlite import RunStore
from .checkpoint import load
from .ppo import HIDDEN, policy_network
from .robustify import (
    BEST,
    POLICY,
    POLICY_INFO,
    RobustifyConfig,
    Runner,
    criterion,
    episode_limit,
    evaluate,
    success_test,
)  # fmt: skip

KEYS = ("inputs", "actions", "demo_length", "demo_return", "goal", "sticky")


def load_policy(path: Path, seed: int = 0) -> tuple[Any, dict]:
    """The network in ``path`` and what policy.pt says of it (``seed`` seeds torch's sampling
    of actions); ConfigError naming the fix if the file is not a policy."""
    data = load(path, "a policy saved by stepstone robustify")
    if "state_dict" in data:  # the format with the architecture
        try:
            arch = data["architecture"]
            info = {k: data[k] for k in KEYS} | {"max_steps": data.get("max_steps", 0),
                                                 "frames": data.get("frames"),
                                                 "features": arch.get("features"),
                                                 "sticky_unit": data.get("sticky_unit",
                                                                         "action")}  # fmt: skip
            hidden = tuple(int(h) for h in arch["hidden"])
            state = data["state_dict"]
        except (KeyError, TypeError) as e:
            raise ConfigError(f"{path} is damaged (no {e}); run robustify again") from None
        if arch.get("kind") != "mlp-tanh":
            raise ConfigError(f"{path} holds a {arch.get('kind')!r} network, which this "
                              "stepstone cannot build; upgrade stepstone")  # fmt: skip
    else:  # a bare state dict, before the architecture was saved with it
        info = _info(path.with_name(POLICY_INFO))
        hidden, state = HIDDEN, data
    model = policy_network(int(info["inputs"]), int(info["actions"]), seed, hidden)
    try:
        model.load_state_dict(state)
    except (RuntimeError, TypeError, AttributeError) as e:
        first = (str(e).strip().splitlines() or [type(e).__name__])[0]
        raise ConfigError(
            f"{path} does not fit this run's policy network ({first}); run robustify again"
        ) from None
    return model, info


def failed(failures: list[dict], limit: int, atari: bool) -> dict:
    """How the failed episodes ended: at the step limit or by the environment, and on Atari
    at which of the policy's actions each one that lost a life lost its first."""
    losses = sorted(f["first_life_lost"] for f in failures if f["first_life_lost"] is not None)
    out = {"episodes": len(failures), "step_limit": limit,
           "at_step_limit": sum(not f["ended"] for f in failures),
           "ended": sum(f["ended"] for f in failures)}  # fmt: skip
    if atari:
        out["first_life_lost"] = losses
    return out


def ram_of(info: dict) -> str:
    """``--ram`` of the policy's training (policies saved before it saw bits)."""
    features = info.get("features") or "ram-bits"
    return features[4:] if features.startswith("ram-") else "bits"


def _info(path: Path) -> dict:
    if not path.is_file():
        raise ConfigError(f"{path} is missing beside the policy; run robustify again")
    try:
        info = json.loads(path.read_text())
        return {k: info[k] for k in KEYS} | {"max_steps": info.get("max_steps", 0),
                                             "frames": info.get("frames"),
                                             "sticky_unit": "action"}  # fmt: skip
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise ConfigError(f"{path} is damaged ({e}); run robustify again") from None


def run_policy(
    store: RunStore,
    episodes: int = 20,
    sticky: float | None = None,
    seed: int = 0,
    gif: Path | None = None,
    max_steps: int = 0,
    sticky_unit: str | None = None,
    best: bool = False,
    greedy: bool = False,
) -> dict:
    """``episodes`` episodes from reset under sticky actions (the training's probability and
    unit by default; policies saved before the unit was recorded drew them per action): the
    success rate, the mean score, how the failures ended, and with ``gif`` the first episode
    drawn. ``best``: the policy robustify's --eval-every kept as the best, not the last;
    ``greedy``: the policy's most probable action at each step, not one sampled."""
    path = store.path / "robustify" / (BEST if best else POLICY)
    if not path.is_file():
        what, how = ("best policy", " --eval-every N") if best else ("policy", "")
        raise ConfigError(
            f"{store.path} has no {what}: run 'stepstone robustify {store.path}{how}'"
        )
    model, info = load_policy(path, seed)
    cfg = RobustifyConfig(sticky=info["sticky"] if sticky is None else sticky, seed=seed,
                          ram=ram_of(info),
                          sticky_unit=sticky_unit or info["sticky_unit"])  # fmt: skip
    runner = Runner(store, cfg)
    try:
        runner.env.reset(store.config.seed)
        n_in = len(runner.obs())
        if (n_in, runner.n_actions) != (info["inputs"], info["actions"]):
            raise ConfigError(
                f"the saved policy takes {info['inputs']} inputs and {info['actions']} actions, "
                f"this run's environment {n_in} and {runner.n_actions}; run robustify again"
            )
        success = success_test(runner, info["goal"], info["demo_return"])
        first: list = []
        failures: list[dict] = []
        # Repeats drawn per frame are not in the actions: such an episode is drawn as it plays.
        screens: list | None = [] if gif is not None and runner.per_frame else None

        def keep_first(actions: list[int], score: float) -> None:
            if not first:
                first.append((actions, score))

        limit = max_steps or info["max_steps"] or episode_limit(info["demo_length"])
        rate, score = evaluate(
            runner, model, episodes, limit, success,
            on_episode=keep_first if gif is not None else None, screens=screens,
            greedy=greedy, failures=failures,
        )  # fmt: skip
    finally:
        runner.worker.close()
    atari = runner.atari  # elsewhere a step is one frame: the unit says nothing
    rule = criterion(info["goal"], info["demo_return"])
    result = {"episodes": episodes, "sticky": cfg.sticky,
              "sticky_unit": cfg.sticky_unit if atari else None, "success_criterion": rule,
              "success": rate, "score": score, "frames": info["frames"], "greedy": greedy,
              "failures": failed(failures, limit, atari)}  # fmt: skip
    if gif is not None:
        from .. import replay

        actions, total = first[0]
        drawn = screens or replay.draw(store.config, actions, total)
        replay.write_gif(drawn, str(gif))
        result["gif"] = str(gif)
        result["gif_frames"] = len(drawn)
    return result
